"""Nothing lost: kill -9 mid-run and the same command grades only what is unfinished; --regrade appends
history; a full output disk stops with a message and leaves no half-written result."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autograder.gradebook import open_gradebook

pytestmark = pytest.mark.slow
CLASS = ("released_stub", "syntax_error", "no_shuffle", "missing_function", "bare_file")


def command(submissions, out, *extra):
    return [sys.executable, "-m", "autograder", "grade", *map(str, submissions), "--out", str(out), "--quiet",
            "--jobs", "2", *extra]


def completed(out):
    return sorted(p.parent.name for p in out.glob("submissions/*/results.json"))


def test_kill_minus_nine_then_rerun_grades_only_the_rest(materialized, tmp_path):
    out = tmp_path / "out"
    paths = [materialized[name] for name in CLASS]
    process = subprocess.Popen(command(paths, out), start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(completed(out)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = completed(out)
    assert 0 < len(done_before) < len(CLASS), "the kill should land mid-run"
    for name in done_before:
        json.loads((out / "submissions" / name / "results.json").read_text())  # complete, valid JSON
    book = open_gradebook(None, out)
    assert {row["submission"] for row in book.history()} <= set(done_before)

    result = subprocess.run(command(paths, out), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    history = book.history()
    assert sorted(row["submission"] for row in history) == sorted(CLASS), "one grade each: none lost, none twice"
    runs = {row["run_id"] for row in history}
    assert len(runs) <= 2
    assert completed(out) == sorted(CLASS)

    result = subprocess.run(command(paths, out, "--regrade"), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0
    history = book.history()
    assert len(history) == 2 * len(CLASS), "a regrade appends; the first grades stay"
    latest = book.latest()
    assert len(latest) == len(CLASS) and len({row["run_id"] for row in latest}) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_output_disk_stops_with_a_clear_message(materialized, tmp_path):
    out = tmp_path / "small"
    out.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(out)], check=True)
    try:
        paths = [materialized[name] for name in ("no_shuffle", "missing_function", "bare_file", "released_stub",
                                                 "syntax_error", "zipped", "renamed_module")]
        result = subprocess.run(command(paths, out), capture_output=True, text=True, timeout=900)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "full" in result.stderr and "run the same command again" in result.stderr
        for path in out.glob("submissions/*/results.json"):
            json.loads(path.read_text())  # whatever was written is whole
        assert not list(out.glob("submissions/*/.results.json.tmp"))
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)
