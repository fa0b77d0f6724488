"""A class graded on a real Dask cluster (a `dask scheduler` and two `dask worker` processes on loopback,
started here) gives the same grades as the plain command; the client alone writes the gradebook, and a second
run answers from it without sending anything to the cluster."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

import factory
from conftest import REPO

pytestmark = pytest.mark.slow

CASES = ("last_batch_dropped", "missing_softmax", "corrupt_zip", "notebook_instead", "syntax_error")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                 "--port", str(port), "--no-dashboard"], cwd=REPO, env=env,
                                stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT)]
    for index in range(2):
        started.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                         "--no-dashboard", "--name", f"worker-{index}",
                                         "--local-directory", str(logs / f"worker-{index}")], cwd=REPO, env=env,
                                        stdout=open(logs / f"worker-{index}.log", "w"), stderr=subprocess.STDOUT))
    from distributed import Client
    deadline = time.monotonic() + 120
    while True:
        try:
            with Client(address, timeout="5s") as client:
                if len(client.scheduler_info()["workers"]) == 2:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, (logs / "scheduler.log").read_text()[-2000:]
        time.sleep(1)
    yield address
    for process in started:
        process.terminate()
    for process in started:
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def klass(tmp_path_factory, materialized):
    folder = tmp_path_factory.mktemp("class")
    for name in CASES:
        source = materialized[name]
        shutil.copytree(source, folder / source.name) if source.is_dir() else shutil.copy(source, folder / source.name)
    solution = folder / "solution"
    solution.mkdir()
    (solution / "hello_mnist.py").write_text(factory.student_source())
    shutil.copy(factory.EXAMPLE_MODEL, solution / "model.keras")
    return folder


def autograder(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=1200)


def totals(out) -> dict[str, tuple[str, str]]:
    with open(out / "summary.csv", encoding="utf-8") as handle:
        return {row["key"]: (row["total"], row["max_total"]) for row in csv.DictReader(handle)}


def test_a_class_on_the_cluster_gets_the_grades_of_the_plain_command(cluster, klass, tmp_path):
    plain = autograder("grade", klass, "--out", tmp_path / "plain", "--quiet", "--version", "v1")
    assert plain.returncode == 0, plain.stderr[-3000:]
    on_cluster = autograder("grade", klass, "--out", tmp_path / "cluster", "--quiet", "--version", "v1",
                            "--cluster", cluster, "--jobs", "1")
    assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
    expected = totals(tmp_path / "plain")
    assert totals(tmp_path / "cluster") == expected
    assert expected["solution"] == ("100", "100") and expected["notebook_instead"][1] == "106"
    # the feedback is written by the client, under the submission's own folder
    assert (tmp_path / "cluster" / "submissions" / "solution" / "feedback.md").is_file()
    assert not (tmp_path / "cluster" / "submissions" / "solution" / "artifacts").exists()
    # a second run answers from the client's gradebook: nothing is graded again
    again = autograder("grade", klass, "--out", tmp_path / "cluster", "--version", "v1", "--cluster", cluster)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(CASES) + 1} already graded" in again.stdout
    from autograder.gradebook import open_gradebook
    counts = open_gradebook(None, tmp_path / "cluster").counts()
    assert counts["grading_runs"] == 2 and counts["grades"] == len(CASES) + 1  # the second run added no grade
    assert counts == {**open_gradebook(None, tmp_path / "plain").counts(), "grading_runs": 2}


def test_an_unreachable_scheduler_is_a_clear_refusal(klass, tmp_path):
    done = autograder("grade", klass, "--out", tmp_path / "out", "--cluster", f"tcp://127.0.0.1:{free_port()}")
    assert done.returncode == 2 and "Cannot reach the Dask scheduler" in done.stderr


def _grading_children() -> list[tuple[int, int]]:
    """(pid, parent pid) of every `python -m autograder.cluster` process (a worker's grading)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            status = open(f"/proc/{entry}/status").read()
        except OSError:
            continue
        if b"autograder.cluster" in command and b"-m" in command:
            parent = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
            found.append((int(entry), parent))
    return found


def test_a_worker_killed_mid_task_loses_nothing(cluster, klass, tmp_path):
    """The scheduler runs a lost worker's task again on the other worker (the nanny restarts the dead one);
    nothing of the lost task was recorded, so every submission is graded once, with the plain command's grade."""
    import signal
    command = [sys.executable, "-m", "autograder", "grade", str(klass), "--out", str(tmp_path / "out"), "--quiet",
               "--version", "v1", "--cluster", cluster, "--jobs", "1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not _grading_children():
        assert process.poll() is None and time.monotonic() < deadline, "no worker started grading"
        time.sleep(0.2)
    time.sleep(2)  # mid-task: its sandboxes are running (a task starts Keras in its zygotes first: over 5 s)
    children = _grading_children()
    assert children, "the first task ended within 2 s: nothing left to kill"
    victim, worker = children[0]
    os.kill(worker, signal.SIGKILL)
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=1200)
    assert process.returncode == 0, stderr[-3000:]
    plain = autograder("grade", klass, "--out", tmp_path / "plain", "--quiet", "--version", "v1")
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert totals(tmp_path / "out") == totals(tmp_path / "plain")
    from autograder.gradebook import open_gradebook
    assert open_gradebook(None, tmp_path / "out").counts()["grades"] == len(CASES) + 1
