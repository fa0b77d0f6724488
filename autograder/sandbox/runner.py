"""Run one submission's probes in the sandbox and write what comes back as artifacts on disk.

The supervisor streams one frame per probe (``harness/protocol.py``); this module reads the stream
with hard caps, writes ``artifacts/<probe>/<file>`` plus a ``status.json`` that merges the
supervisor's claims with what this side observed, enforces the overall wall-clock limit by killing
the whole sandbox (its PID namespace dies with it), and relaunches the sandbox for the probes that
never ran when the sandbox died early, so one fatal function costs only its own points.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..harness import protocol
from ..settings import PACKAGE_DIR, Settings
from . import isolation

MAX_FILE_BYTES = 48 * 1024 * 1024
MAX_FRAME_BYTES = 128 * 1024 * 1024
MAX_TOTAL_BYTES = 384 * 1024 * 1024
MAX_STDERR_BYTES = 64 * 1024
MAX_LAUNCHES = 3


class SandboxError(RuntimeError):
    """The sandbox itself could not start (our environment, not the student's code)."""


@dataclass
class ProbeSpec:
    name: str
    timeout_s: float
    params: dict = field(default_factory=dict)


@dataclass
class SandboxResult:
    statuses: dict[str, dict] = field(default_factory=dict)
    startup_seconds: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    launches: int = 0
    flags: list[str] = field(default_factory=list)
    stderr_tail: str = ""


def run_probes(probes: list[ProbeSpec], *, submission_dir: Path, inputs_dir: Path, artifacts_dir: Path,
               work_dir: Path, settings: Settings, slot: int) -> SandboxResult:
    """Run ``probes`` for one staged submission; never raises for anything the submission does.

    Args:
        probes: what to run, in order.
        submission_dir: the staged copy (hello_mnist.py, optional model.keras), bound read-only.
        inputs_dir: the grader's input arrays, bound read-only.
        artifacts_dir: where ``<probe>/...`` files and ``status.json`` land (created).
        work_dir: a private folder of the grader for the plan file and logs (created).
        settings: limits and isolation switches.
        slot: the worker slot; picks the sandbox uid and memory cgroup.
    """
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    result = SandboxResult()
    started = time.perf_counter()
    remaining = list(probes)
    while remaining and result.launches < MAX_LAUNCHES:
        result.launches += 1
        received = _launch(remaining, submission_dir=submission_dir, inputs_dir=inputs_dir,
                           artifacts_dir=artifacts_dir, work_dir=work_dir, settings=settings, slot=slot,
                           result=result)
        pending = [spec for spec in remaining if spec.name not in received]
        if not pending:
            remaining = []
            break
        # The first probe without a frame is the one the sandbox died in: record it, go on after it.
        culprit = pending[0]
        result.statuses[culprit.name] = {"sandbox_died": True, "seconds": None}
        _write_status(artifacts_dir, culprit.name, result.statuses[culprit.name])
        remaining = pending[1:]
    for spec in remaining:  # only reached when the launch budget ran out
        if spec.name not in result.statuses:
            result.statuses[spec.name] = {"not_run": True, "seconds": None}
            _write_status(artifacts_dir, spec.name, result.statuses[spec.name])
    result.wall_seconds = round(time.perf_counter() - started, 3)
    return result


def _launch(probes, *, submission_dir, inputs_dir, artifacts_dir, work_dir, settings, slot, result) -> set[str]:
    work_dir.mkdir(parents=True, exist_ok=True)
    plan_dir = work_dir / f"plan-{result.launches}"
    shutil.rmtree(plan_dir, ignore_errors=True)
    plan_dir.mkdir()
    sandboxed = not settings.unsafe_no_sandbox
    if sandboxed:
        scratch = isolation.INSIDE_SCRATCH
        paths = {"submission": isolation.INSIDE_SUBMISSION, "inputs": isolation.INSIDE_INPUTS}
    else:
        scratch = str(work_dir / f"scratch-{result.launches}")
        Path(scratch).mkdir(exist_ok=True)
        paths = {"submission": str(submission_dir), "inputs": str(inputs_dir)}
    plan = {
        "probes": [{"name": p.name, "timeout_s": p.timeout_s, "params": p.params} for p in probes],
        "scratch": scratch, "work_dir": f"{scratch}/work", "threads": settings.threads_per_job,
        "uid": isolation.slot_uid(settings, slot) if sandboxed else None, **paths,
    }
    (plan_dir / "plan.json").write_text(json.dumps(plan))
    os.chmod(plan_dir, 0o755)
    os.chmod(plan_dir / "plan.json", 0o644)
    if sandboxed:
        argv = isolation.command(settings, submission_dir=submission_dir, inputs_dir=inputs_dir, slot=slot)
        bind = ["--ro-bind", str(plan_dir), "/sandbox/plan"]
        at = argv.index("--proc")
        argv = argv[:at] + bind + argv[at:]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    else:
        argv = [sys.executable, "-I", "-c",
                f"import sys; sys.path.insert(0, {str(PACKAGE_DIR)!r}); from harness.main import main; "
                f"sys.exit(main({str(plan_dir / 'plan.json')!r}))"]
        env = {**{k: v for k, v in os.environ.items() if k.startswith(("PATH", "LANG"))},
               "HOME": scratch, "KERAS_HOME": f"{scratch}/.keras", "KERAS_BACKEND": settings.backend,
               "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": str(settings.threads_per_job)}
    budget = settings.startup_timeout_s + sum(p.timeout_s for p in probes) + 15.0
    stderr_path = work_dir / f"sandbox-stderr-{result.launches}.txt"
    received: set[str] = set()
    startups_before = len(result.startup_seconds)
    with open(stderr_path, "wb") as stderr_file:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_file,
                                   env=env, start_new_session=True, close_fds=True)
        reader = threading.Thread(target=_read_frames, daemon=True,
                                  args=(process.stdout, probes, artifacts_dir, result, received))
        reader.start()
        try:
            process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            result.flags.append("sandbox_wall_clock")
        finally:
            _kill_group(process)
        reader.join(timeout=30)
        if reader.is_alive():  # a grandchild holding the pipe open; the kill above took the namespace
            process.stdout.close()
            reader.join(timeout=5)
    with open(stderr_path, "rb") as handle:
        handle.seek(max(0, stderr_path.stat().st_size - MAX_STDERR_BYTES))
        result.stderr_tail = handle.read().decode("utf-8", "replace")
    started_ok = len(result.startup_seconds) > startups_before
    if not started_ok and "sandbox_wall_clock" not in result.flags:
        # No student code runs before the supervisor reports its start-up, so this is our failure.
        raise SandboxError(f"The sandbox did not start (exit code {process.returncode}). Its last words:\n"
                           + result.stderr_tail[-2000:])
    if process.returncode not in (0, None) and len(received) < len(probes):
        result.flags.append("sandbox_exit")
    return received


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _read_frames(stream, probes, artifacts_dir: Path, result: SandboxResult, received: set[str]) -> None:
    expected = {p.name for p in probes}
    total = 0
    try:
        while True:
            frame = protocol.read_frame(stream, max_file_bytes=MAX_FILE_BYTES, max_frame_bytes=MAX_FRAME_BYTES)
            if frame is None:
                return
            header, files = frame
            name = header["probe"]
            if name == "_startup":
                seconds = header["status"].get("seconds")
                if isinstance(seconds, (int, float)):
                    result.startup_seconds.append(float(seconds))
                continue
            if name not in expected or name in received:
                result.flags.append("protocol_violation")
                return
            total += sum(len(data) for _, data in files)
            if total > MAX_TOTAL_BYTES:
                result.flags.append("artifacts_too_large")
                return
            probe_dir = artifacts_dir / name
            shutil.rmtree(probe_dir, ignore_errors=True)
            probe_dir.mkdir(parents=True)
            for file_name, data in files:
                if file_name == "status.json":
                    continue  # ours to write
                (probe_dir / file_name).write_bytes(data)
            status = {key: value for key, value in header["status"].items()
                      if key in ("seconds", "timed_out", "exit_code", "signal", "left_behind", "timeout_s",
                                 "dropped_files")}
            result.statuses[name] = status
            _write_status(artifacts_dir, name, status)
            received.add(name)
    except protocol.ProtocolError:
        result.flags.append("protocol_violation")
    except (OSError, ValueError):
        result.flags.append("stream_error")


def _write_status(artifacts_dir: Path, name: str, status: dict) -> None:
    probe_dir = artifacts_dir / name
    probe_dir.mkdir(parents=True, exist_ok=True)
    (probe_dir / "status.json").write_text(json.dumps(status))
