"""The sandbox supervisor's shared check process, driven directly: small stand-in checks (no Keras) run
under bubblewrap with the supervisor as PID 1 of a private PID namespace, as in grading, and the frames
it streams are read back. Covers what the graded attack suite shows only through scores: which process
ran which check, what a check that hangs, leaves a daemon behind or ends the process is charged with,
and that the checks after it go on in a new process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from autograder.harness import main as supervisor
from autograder.harness import protocol
from autograder.settings import PACKAGE_DIR

CHECKS = textwrap.dedent('''
    import os, signal, sys, time
    sys.path.insert(0, sys.argv[3])
    from harness import main, probes

    def pid(probe):
        probe.record["pid"] = os.getpid()

    def daemon(probe):  # double fork, new session, deaf to SIGTERM: survives its function
        child = os.fork()
        if child == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                while True:
                    time.sleep(0.05)
            os._exit(0)
        os.waitpid(child, 0)
        probe.record["pid"] = os.getpid()

    def census(probe):  # every live process this check can see in its namespace
        probe.record["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        probe.record["pid"] = os.getpid()

    def hang(probe):
        while True:
            time.sleep(0.05)

    def end_process(probe):
        os._exit(0)

    probes.PROBES.update(first=pid, daemon=daemon, census=census, end_process=end_process, after_end=pid,
                         hang=hang, after_hang=pid, alone=pid)
    probes.reset_interpreter_state = lambda: None  # Keras's reset, not needed by these checks
    scratch = sys.argv[2]
    plan = {"scratch": scratch, "work_dir": scratch + "/work", "submission": "/nonexistent", "inputs": "/nonexistent",
            "module": "m.py", "model": "m.keras",
            "probes": [{"name": name, "timeout_s": 0.5 if name == "hang" else 20, "params": {}, "group": group}
                       for name, group in [("first", "g"), ("daemon", "g"), ("census", "g"), ("end_process", "g"),
                                           ("after_end", "g"), ("hang", "g"), ("after_hang", "g"), ("alone", None)]]}
    control = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.exit(main.serve(plan, control, startup_seconds=0.0))
''')


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    folder = tmp_path_factory.mktemp("supervisor")
    script, stream, scratch = folder / "checks.py", folder / "frames.bin", folder / "scratch"
    script.write_text(CHECKS)
    scratch.mkdir()
    argv = ["bwrap", "--dev-bind", "/", "/", "--proc", "/proc", "--unshare-pid", "--as-pid-1", "--die-with-parent",
            sys.executable, "-I", str(script), str(stream), str(scratch), str(PACKAGE_DIR)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = {}
    with open(stream, "rb") as handle:
        while (frame := protocol.read_frame(handle, max_file_bytes=2**20, max_frame_bytes=2**22)) is not None:
            header, files = frame
            found[header["probe"]] = (header["status"], dict(files))
    return found


def _record(frames, name) -> dict:
    return json.loads(frames[name][1]["result.json"])["record"]


def test_checks_of_a_group_share_one_process(frames):
    assert {frames[name][0]["process"] for name in ("first", "daemon", "census", "end_process")} == {1}
    assert _record(frames, "first")["pid"] == _record(frames, "census")["pid"]


def test_what_a_check_leaves_behind_is_killed_before_the_next_one_starts(frames):
    assert frames["daemon"][0]["left_behind"] is True
    assert frames["first"][0]["left_behind"] is False
    # only the supervisor (PID 1) and the shared process itself are left
    census = _record(frames, "census")
    assert census["processes"] == sorted({1, census["pid"]})


def test_a_check_that_ends_the_process_is_unfinished_and_the_rest_go_on_in_a_new_one(frames):
    status, files = frames["end_process"]
    assert status["unfinished"] is True and status["exit_code"] == 0 and "result.json" not in files
    assert frames["after_end"][0]["process"] == 2 and not frames["after_end"][0].get("unfinished")


def test_a_check_that_hangs_is_stopped_at_its_own_limit_and_the_rest_go_on(frames):
    status = frames["hang"][0]
    assert status["timed_out"] is True and status["process"] == 2
    assert 0.5 <= status["seconds"] < 5
    assert frames["after_hang"][0]["process"] == 3 and frames["after_hang"][0]["timed_out"] is False


def test_a_check_outside_any_group_runs_alone(frames):
    assert frames["alone"][0]["process"] == 4
    assert set(frames) == {"_startup", "first", "daemon", "census", "end_process", "after_end", "hang", "after_hang",
                           "alone"}


@pytest.mark.parametrize("shared, expected", [
    (True, [["a", "b"], ["load"], ["c"], ["d", "e"]]),
    (False, [["a"], ["b"], ["load"], ["c"], ["d"], ["e"]]),
])
def test_probe_groups_are_consecutive_runs_of_one_group(shared, expected):
    plan = [{"name": "a", "group": "g"}, {"name": "b", "group": "g"}, {"name": "load", "group": None},
            {"name": "c", "group": "g"}, {"name": "d", "group": "h"}, {"name": "e", "group": "h"}]
    groups = supervisor.probe_groups(plan, shared=shared)
    assert [[spec["name"] for spec in group] for group in groups] == expected


def test_end_markers_are_parsed_strictly_and_with_a_bounded_buffer(tmp_path):
    import os
    read, write = os.pipe()
    reader = supervisor._MarkerReader(read)
    os.write(write, b"D 0 0.5 0.1\nD x 1 1\ngarbage\nD 2 1.0\n" + b"z" * 10000 + b"\nD 3 0.2 0.0\nD 4 0")
    reader.drain()
    assert reader.done == {0, 3} and reader.cpu[0] == (0.5, 0.1)
    os.write(write, b" 0\n")  # a marker split across two reads still counts
    reader.drain()
    assert reader.done == {0, 3, 4} and len(reader.buffer) <= 4096
    os.close(write)
    reader.close()
