"""The sandbox supervisor's recorder and executor pairs, driven directly: stand-in probes (no Keras) run in
the recorder and call a stand-in student module in the executor, under bubblewrap with the supervisor as PID
1 of a private PID namespace, as in grading, and the frames it streams are read back. Covers what the graded
attack suite shows only through scores: which pair ran which check, what the student's process can see and
do (its own PID namespace and uid, the grader's files hidden, signals that reach only itself), what a call
that hangs, leaves a daemon behind or ends the process is charged with, that a recorder failure is the
grader's, and that the checks after each go on with a new pair."""

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

STUDENT = textwrap.dedent('''
    import os, signal, time

    def pid():
        return os.getpid()

    def uid():
        return os.getuid()

    def peek(path):
        try:
            return sorted(os.listdir(path))
        except OSError as error:
            return type(error).__name__

    def daemon():  # double fork, new session, deaf to SIGTERM: survives its function
        child = os.fork()
        if child == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                while True:
                    time.sleep(0.05)
            os._exit(0)
        os.waitpid(child, 0)
        return os.getpid()

    def census():  # every live process the student's code can see
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())

    def kill_group():  # its own process group, then everything it may signal
        for target in (lambda: os.kill(0, signal.SIGKILL), lambda: os.killpg(os.getpgrp(), signal.SIGKILL),
                       lambda: os.kill(-1, signal.SIGKILL)):
            try:
                target()
            except OSError:
                pass
        return "alive"

    def hang():
        while True:
            time.sleep(0.05)

    def end_process():
        os._exit(0)
''')

STANDIN_PROBES = textwrap.dedent('''
    import os

    def _plain(returned):
        return returned.value if returned.kind == "json" else [item.value for item in returned.items()]

    def _calling(function, *args):
        def probe(run):
            run.record["value"] = _plain(run.call(function, *[run.params[a] for a in args]))
            run.record["recorder_pid"] = os.getpid()
        return probe

    first = after_end = after_hang = after_recorder = alone = _calling("pid")
    uid, daemon, kill_group, end_process, hang = (_calling(n) for n in ("uid", "daemon", "kill_group", "end_process",
                                                                           "hang"))
    peek = _calling("peek", "path")

    def census(run):
        run.record["value"] = _plain(run.call("census"))
        run.record["recorder_sees"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())

    def recorder_raises(run):
        run.call("pid")
        raise RuntimeError("a bug in the grader's probe")

    def recorder_dies(run):
        run.call("pid")
        os._exit(3)
''')

CHECKS = textwrap.dedent('''
    import os, sys
    folder, package = sys.argv[2], sys.argv[3]
    sys.path[:0] = [os.path.dirname(package), folder]
    from autograder.harness import executor, isolate, main
    isolate.uncover_proc()  # as grading does (main.prepare) before anything runs
    executor.reset_interpreter_state = lambda: None  # Keras's reset, not needed by these checks
    scratch = folder + "/scratch"
    names = [("first", "g"), ("uid", "g"), ("peek", "g"), ("daemon", "g"), ("census", "g"), ("kill_group", "g"),
             ("end_process", "g"), ("after_end", "g"), ("hang", "g"), ("after_hang", "g"), ("recorder_raises", "g"),
             ("recorder_dies", "g"), ("after_recorder", "g"), ("alone", None)]
    plan = {"scratch": scratch, "work_dir": scratch + "/work", "submission": folder + "/submission",
            "inputs": folder + "/secret", "module": "m.py", "model": "m.keras", "hide": [folder + "/secret"],
            "scratch_bytes": 64 * 2**20,
            "probes": [{"name": name, "probe": f"standin_probes:{name}", "timeout_s": 0.5 if name == "hang" else 20,
                        "params": {"path": folder + "/secret"}, "group": group} for name, group in names]}
    control = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.exit(main.serve(plan, control, startup_seconds=0.0))
''')


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    folder = tmp_path_factory.mktemp("supervisor")
    script, stream = folder / "checks.py", folder / "frames.bin"
    script.write_text(CHECKS)
    (folder / "standin_probes.py").write_text(STANDIN_PROBES)
    (folder / "submission").mkdir()
    (folder / "submission" / "m.py").write_text(STUDENT)
    (folder / "secret").mkdir()
    (folder / "secret" / "answers.npz").write_bytes(b"the grader's inputs")
    (folder / "scratch").mkdir()
    argv = ["bwrap", "--dev-bind", "/", "/", "--proc", "/proc", "--unshare-pid", "--as-pid-1", "--die-with-parent",
            sys.executable, "-I", str(script), str(stream), str(folder), str(PACKAGE_DIR)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    found = {}
    with open(stream, "rb") as handle:
        while (frame := protocol.read_frame(handle, max_file_bytes=2**20, max_frame_bytes=2**22)) is not None:
            header, files = frame
            found[header["probe"]] = (header["status"], dict(files))
    return found


def _record(frames, name) -> dict:
    return json.loads(frames[name][1]["result.json"])["record"]


def _result(frames, name) -> dict:
    return json.loads(frames[name][1]["result.json"])


def test_checks_of_a_group_share_one_pair(frames):
    names = ("first", "uid", "peek", "daemon", "census", "kill_group", "end_process")
    assert {frames[name][0]["process"] for name in names} == {1}
    assert _record(frames, "first")["recorder_pid"] == _record(frames, "uid")["recorder_pid"]


def test_the_students_process_has_a_namespace_and_a_uid_of_its_own(frames):
    # PID 1 of its own PID namespace: the recorder and the supervisor have no number there
    assert _record(frames, "first")["value"] == 1
    assert _record(frames, "census")["value"] == [1]
    assert _record(frames, "first")["recorder_pid"] != 1 and 1 in _record(frames, "census")["recorder_sees"]
    assert _record(frames, "uid")["value"] == 1000


def test_the_graders_files_are_hidden_from_the_students_process(frames):
    assert _record(frames, "peek")["value"] == []  # the folder holds answers.npz, the student sees it empty


def test_signals_from_the_students_code_reach_only_its_own_processes(frames):
    assert _record(frames, "kill_group")["value"] == "alive"
    assert not frames["kill_group"][0].get("unfinished") and frames["kill_group"][0]["process"] == 1


def test_what_a_call_leaves_behind_is_killed_before_the_next_check(frames):
    assert frames["daemon"][0]["left_behind"] is True
    assert frames["first"][0]["left_behind"] is False
    assert _record(frames, "census")["value"] == [1]  # the daemon of the check before is gone


def test_a_call_that_ends_the_process_is_unfinished_and_the_rest_go_on_with_a_new_pair(frames):
    status, files = frames["end_process"]
    assert status["unfinished"] is True and status["exit_code"] == 0 and "result.json" not in files
    assert not status.get("recorder_failed")
    assert frames["after_end"][0]["process"] == 2 and not frames["after_end"][0].get("unfinished")


def test_a_call_that_hangs_is_stopped_at_its_own_limit_and_the_rest_go_on(frames):
    status = frames["hang"][0]
    assert status["timed_out"] is True and status["process"] == 2
    assert 0.5 <= status["seconds"] < 5
    assert frames["after_hang"][0]["process"] == 3 and frames["after_hang"][0]["timed_out"] is False


def test_a_recorder_failure_is_the_graders_and_the_rest_go_on(frames):
    raised = _result(frames, "recorder_raises")
    assert [error["kind"] for error in raised["errors"]] == ["harness"]
    status = frames["recorder_dies"][0]
    assert status["unfinished"] is True and status["recorder_failed"] is True and status["exit_code"] == 3
    assert frames["after_recorder"][0]["process"] == 4 and not frames["after_recorder"][0].get("unfinished")


def test_a_check_outside_any_group_runs_alone(frames):
    assert frames["alone"][0]["process"] == 5
    assert set(frames) == {"_startup", "first", "uid", "peek", "daemon", "census", "kill_group", "end_process",
                           "after_end", "hang", "after_hang", "recorder_raises", "recorder_dies", "after_recorder",
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
    os.close(read)
