"""Run one submission's probes in the sandbox and write what comes back as artifacts on disk.

The supervisor streams one frame per probe (``harness/protocol.py``); this module reads the stream
with hard caps, writes ``artifacts/<probe>/<file>`` plus a ``status.json`` that merges the
supervisor's claims with what this side observed, enforces the overall wall-clock limit by killing
the whole sandbox (its PID namespace dies with it), and relaunches the sandbox for the probes that
never ran when the sandbox died early, so one fatal function costs only its own points.
"""

from __future__ import annotations

import errno
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
from . import isolation, tiers

MAX_FILE_BYTES = 48 * 1024 * 1024
MAX_FRAME_BYTES = 128 * 1024 * 1024
MAX_TOTAL_BYTES = 384 * 1024 * 1024  # a FrameSink's own cap when no submission budget is given
MAX_STDERR_BYTES = 64 * 1024
MAX_LAUNCHES = 3


class ArtifactBudget:
    """What one submission's sandboxes may send in all: counted across its relaunches and the helper slot
    that runs its parallel checks (one object per submission, shared by their threads)."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Count ``size`` bytes; False once the submission is over its limit."""
        with self._lock:
            self.used += size
            return self.used <= self.limit


class SandboxError(RuntimeError):
    """The sandbox itself could not start (our environment, not the student's code)."""


@dataclass
class ProbeSpec:
    name: str
    timeout_s: float
    params: dict = field(default_factory=dict)
    group: str | None = None  # consecutive probes of one group share a recorder and a student process
    probe: str = ""           # "module:qualname" of the probe function (a version's grader file)
    parallel: bool = False    # may run beside the others in a helper slot (it trains a whole model)
    needs_module: bool = True  # False: runs even when no module was submitted


@dataclass
class SandboxResult:
    statuses: dict[str, dict] = field(default_factory=dict)
    startup_seconds: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    launches: int = 0
    flags: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    # Set when the sandbox failed in a way the submission did not cause (it died without hitting a limit, its
    # stream broke, the whole sandbox ran past its budget): the grader's failure, retried, never a grade.
    failure: str | None = None


# Flags that mean the sandbox machinery failed rather than the submission: a stream that broke off, a
# supervisor that ended early or sent nonsense, a sandbox that outlived its whole budget.
GRADER_SIDE_FLAGS = {"sandbox_exit", "sandbox_wall_clock", "stream_error", "protocol_violation"}


def run_probes(probes: list[ProbeSpec], *, submission_dir: Path, inputs_dir: Path, artifacts_dir: Path,
               work_dir: Path, settings: Settings, slot: int, workers=(), version: str, module: str,
               model: str, budget: ArtifactBudget | None = None) -> SandboxResult:
    """Run ``probes`` for one staged submission; never raises for anything the submission does.

    Args:
        probes: what to run, in order.
        submission_dir: the staged copy (hello_mnist.py, optional model.keras), bound read-only.
        inputs_dir: the grader's input arrays, bound read-only.
        artifacts_dir: where ``<probe>/...`` files and ``status.json`` land (created).
        work_dir: a private folder of the grader for the plan file and logs (created).
        settings: limits and isolation switches.
        slot: the worker slot; picks the sandbox uid and memory cgroup.
        workers: warm zygotes (`pool.WarmWorker`) for this slot and, optionally, a helper slot that runs
            the ``PARALLEL_PROBES`` in its own isolated job at the same time; empty for a cold sandbox.
        version, module, model: the assignment version graded (its inputs folder in a warm worker) and the
            file names of its graded module and model in ``submission_dir``.
        budget: the submission's artifact budget, when this call is part of a larger one (the helper slot's).

    Raises:
        SandboxError: the sandbox itself could not start (before any student code ran).
    """
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    workers = list(workers)
    budget = budget or ArtifactBudget(settings.artifacts_mb * 2**20)
    # A helper worker, when one is free (fewer submissions than cores), runs the probes marked parallel (the
    # retrain, the submitted model: about half of a submission's CPU time in the sandbox) beside the others.
    if len(workers) >= 2 and any(p.parallel for p in probes):
        beside = [p for p in probes if p.parallel]
        main = [p for p in probes if not p.parallel]
        results: list[SandboxResult] = []
        errors: list[BaseException] = []

        def run_beside():
            try:
                results.append(run_probes(beside, submission_dir=submission_dir, inputs_dir=inputs_dir,
                                          artifacts_dir=artifacts_dir, work_dir=work_dir / "beside",
                                          settings=settings, slot=slot, workers=workers[1:2], version=version,
                                          module=module, model=model, budget=budget))
            except BaseException as error:  # re-raised in the caller's thread
                errors.append(error)

        thread = threading.Thread(target=run_beside)
        thread.start()
        merged = run_probes(main, submission_dir=submission_dir, inputs_dir=inputs_dir, artifacts_dir=artifacts_dir,
                            work_dir=work_dir, settings=settings, slot=slot, workers=workers[:1], version=version,
                            module=module, model=model, budget=budget)
        thread.join()
        if errors:
            raise errors[0]
        other = results[0]
        merged.statuses.update(other.statuses)
        merged.flags += other.flags
        merged.startup_seconds += other.startup_seconds
        merged.launches += other.launches
        merged.wall_seconds = max(merged.wall_seconds, other.wall_seconds)
        merged.failure = merged.failure or other.failure
        return merged
    worker = workers[0] if workers else None
    files = {"module": module, "model": model, "version": version}
    result = SandboxResult()
    started = time.perf_counter()
    remaining = list(probes)
    groups = None if settings.unsafe_no_sandbox else isolation.submission_groups(settings)
    while remaining and result.launches < MAX_LAUNCHES:
        result.launches += 1
        sink = FrameSink(remaining, artifacts_dir, result, budget)
        flags_before = len(result.flags)
        # A cgroup of its own for each launch: memory, processes and a CPU share, gone when the launch ends.
        # (in the slot of the worker that runs it: a helper slot's zygote has only its own slot's folders)
        group_slot = worker.slot if worker is not None else slot
        cgroup = groups.submission(group_slot) if groups is not None and groups.available else None
        try:
            if worker is not None and not settings.unsafe_no_sandbox:
                _launch_warm(worker, remaining, submission_dir=submission_dir, settings=settings, sink=sink,
                             files=files, cgroup=cgroup)
            else:
                _launch_cold(remaining, submission_dir=submission_dir, inputs_dir=inputs_dir, work_dir=work_dir,
                             settings=settings, slot=slot, sink=sink, files=files, cgroup=cgroup)
            oom = cgroup is not None and cgroup.oom_kills() > 0
        finally:
            if cgroup is not None:
                _remove_group(cgroup)
        new_flags = set(result.flags[flags_before:])
        if new_flags & GRADER_SIDE_FLAGS and not oom:
            result.failure = result.failure or (
                f"the sandbox failed ({', '.join(sorted(new_flags & GRADER_SIDE_FLAGS))}) without hitting a limit")
        pending = [spec for spec in remaining if spec.name not in sink.received]
        if not pending:
            remaining = []
            break
        if budget.used > budget.limit:  # the submission sent all it may: nothing more of it runs
            for spec in pending:
                result.statuses[spec.name] = {"over_cap": True, "seconds": None}
                _write_status(artifacts_dir, spec.name, result.statuses[spec.name])
            remaining = []
            break
        # The first probe without a frame is the one the sandbox died in: record it, go on after it. When no
        # memory limit was hit, nothing the student's code may do kills the supervisor (PID 1 ignores signals
        # from inside): the death is the grader's, and the submission is graded again.
        culprit = pending[0]
        result.statuses[culprit.name] = {"sandbox_died": True, "seconds": None, "oom": oom}
        _write_status(artifacts_dir, culprit.name, result.statuses[culprit.name])
        if not oom:
            result.failure = result.failure or f"the sandbox died while running {culprit.name} without hitting a limit"
        remaining = pending[1:]
    for spec in remaining:  # only reached when the launch budget ran out
        if spec.name not in result.statuses:
            result.statuses[spec.name] = {"not_run": True, "seconds": None}
            _write_status(artifacts_dir, spec.name, result.statuses[spec.name])
    result.wall_seconds = round(time.perf_counter() - started, 3)
    return result


def _plan(probes, settings: Settings, *, scratch: str, paths: dict, uid, files: dict, hide: list[str]) -> dict:
    return {"probes": [{"name": p.name, "timeout_s": p.timeout_s, "params": p.params, "group": p.group,
                        "probe": p.probe, "needs_module": p.needs_module} for p in probes],
            "scratch": scratch, "work_dir": f"{scratch}/work", "threads": settings.resolved_threads(), "uid": uid,
            "scratch_bytes": settings.scratch_mb * 2**20, "module": files["module"], "model": files["model"],
            "preload": isolation.preload_modules(), "hide": hide, **paths}


def _budget(probes, settings: Settings) -> float:
    return settings.startup_timeout_s + sum(p.timeout_s for p in probes) + 15.0


def _remove_group(cgroup) -> None:
    try:
        cgroup.remove()
    except Exception:  # noqa: BLE001  a group that would not empty: the next run's clean_stale removes it
        pass


def _launch_warm(worker, probes, *, submission_dir: Path, settings: Settings, sink: "FrameSink", files: dict,
                 cgroup=None) -> None:
    if worker.container:
        student_root = tiers.student_root(worker.slot)
        paths = {"inputs": str(worker.inputs_dirs[files["version"]]),
                 **isolation.container_plan(settings, isolation.slot_uid(settings, worker.slot), student_root)}
        plan = _plan(probes, settings, scratch=str(worker.job_scratch), uid=None, files=files, hide=[], paths=paths)
    else:
        student_root = None
        plan = _plan(probes, settings, scratch=isolation.INSIDE_SCRATCH, uid=None, files=files,
                     hide=isolation.hidden_paths(), paths={"inputs": f"{isolation.INSIDE_INPUTS}/{files['version']}"})
    try:
        outcome = worker.serve(plan, submission_dir, budget=_budget(probes, settings), on_frame=sink.accept,
                               cgroup=cgroup)
        if outcome == "broken" and not sink.started:  # a worker that died between jobs: one fresh start
            outcome = worker.serve(plan, submission_dir, budget=_budget(probes, settings), on_frame=sink.accept,
                                   cgroup=cgroup)
    finally:
        if student_root is not None:  # the container tier: nothing of the student's uid outlives the job
            tiers.sweep(isolation.slot_uid(settings, worker.slot), scratch=student_root)
    sink.result.stderr_tail = worker._stderr_tail()
    if outcome == "stopped":  # over the cap or a forged frame: the sink has flagged it, the worker is gone
        return
    if outcome == "timeout":
        sink.result.flags.append("sandbox_wall_clock")
    elif outcome == "broken" and not sink.started:
        raise SandboxError(f"The warm sandbox did not start the submission:\n{sink.result.stderr_tail}")
    elif outcome == "broken":
        sink.result.flags.append("sandbox_exit")


def _launch_cold(probes, *, submission_dir, inputs_dir, work_dir, settings, slot, sink: "FrameSink",
                 files: dict, cgroup=None) -> None:
    result = sink.result
    plan_dir = work_dir / f"plan-{result.launches}"
    shutil.rmtree(plan_dir, ignore_errors=True)
    plan_dir.mkdir()
    if settings.unsafe_no_sandbox:
        scratch = str(work_dir / f"scratch-{result.launches}")
        Path(scratch).mkdir(exist_ok=True)
        plan = _plan(probes, settings, scratch=scratch, uid=None, files=files, hide=[],
                     paths={"submission": str(submission_dir), "inputs": str(inputs_dir)})
        argv = [sys.executable, "-I", "-c",
                f"import sys; sys.path[:0] = [{str(PACKAGE_DIR.parent)!r}]; from autograder.harness.main import main; "
                f"sys.exit(main({str(plan_dir / 'plan.json')!r}))"]
        env = {**{k: v for k, v in os.environ.items() if k.startswith(("PATH", "LANG"))},
               "HOME": scratch, "KERAS_HOME": f"{scratch}/.keras", "KERAS_BACKEND": settings.backend,
               "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": str(settings.resolved_threads())}
    elif tiers.select(settings).container:
        scratch = work_dir / f"scratch-{result.launches}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        student_root = tiers.student_root(slot)
        plan = _plan(probes, settings, scratch=str(scratch), uid=None, files=files, hide=[],
                     paths={"submission": str(submission_dir), "inputs": str(inputs_dir),
                            **isolation.container_plan(settings, isolation.slot_uid(settings, slot), student_root)})
        argv = isolation.container_command(settings, cgroup=cgroup)
        env = isolation.container_environment(settings, scratch, AUTOGRADER_PLAN=str(plan_dir / "plan.json"))
    else:
        plan = _plan(probes, settings, scratch=isolation.INSIDE_SCRATCH, uid=isolation.slot_uid(settings, slot),
                     files=files, hide=isolation.hidden_paths(),
                     paths={"submission": isolation.INSIDE_SUBMISSION, "inputs": isolation.INSIDE_INPUTS})
        argv = isolation.command(settings, slot=slot, cgroup=cgroup, binds=[
            (submission_dir, isolation.INSIDE_SUBMISSION), (inputs_dir, isolation.INSIDE_INPUTS),
            (plan_dir, "/sandbox/plan")])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    (plan_dir / "plan.json").write_text(json.dumps(plan))
    os.chmod(plan_dir, 0o755)
    os.chmod(plan_dir / "plan.json", 0o644)
    stderr_path = work_dir / f"sandbox-stderr-{result.launches}.txt"
    with open(stderr_path, "wb") as stderr_file:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_file,
                                   env=env, start_new_session=True, close_fds=True)
        sink.on_stop = lambda: _kill_group(process, wait=False)  # over the cap or forged: at once
        reader = threading.Thread(target=sink.read_stream, args=(process.stdout,), daemon=True)
        reader.start()
        try:
            process.wait(timeout=_budget(probes, settings))
        except subprocess.TimeoutExpired:
            result.flags.append("sandbox_wall_clock")
        finally:
            _kill_group(process)
            if plan.get("tier") == "container":  # no namespace dies with it: everything of the student's uid
                tiers.sweep(plan["student_uid"], scratch=Path(plan["student_root"]))
        reader.join(timeout=30)
        if reader.is_alive():  # a grandchild holding the pipe open; the kill above took the namespace
            process.stdout.close()
            reader.join(timeout=5)
    with open(stderr_path, "rb") as handle:
        handle.seek(max(0, stderr_path.stat().st_size - MAX_STDERR_BYTES))
        result.stderr_tail = handle.read().decode("utf-8", "replace")
    if sink.disk_error is not None:
        raise sink.disk_error
    if not sink.started and "sandbox_wall_clock" not in result.flags:
        # No student code runs before the supervisor reports its start-up, so this is our failure.
        raise SandboxError(f"The sandbox did not start (exit code {process.returncode}). Its last words:\n"
                           + result.stderr_tail[-2000:])
    if process.returncode not in (0, None) and len(sink.received) < len(probes) and not sink.closed:
        result.flags.append("sandbox_exit")  # (a sandbox the sink stopped, over the cap, was killed by us)


def _kill_group(process: subprocess.Popen, *, wait: bool = True) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if not wait:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


class FrameSink:
    """Turns frames into ``artifacts/<probe>/`` files, refusing unexpected, repeated or oversized ones."""

    def __init__(self, probes, artifacts_dir: Path, result: SandboxResult, budget: ArtifactBudget | None = None):
        self.expected = {p.name for p in probes}
        self.artifacts_dir, self.result = artifacts_dir, result
        self.budget = budget or ArtifactBudget(MAX_TOTAL_BYTES)
        self.received: set[str] = set()
        self.started = False
        self.closed = False
        self.disk_error: OSError | None = None
        self.on_stop = None  # a cold sandbox's kill: called once the sink closes on a violation or the cap

    def read_stream(self, stream) -> None:
        try:
            while not self.closed:
                frame = protocol.read_frame(stream, max_file_bytes=MAX_FILE_BYTES, max_frame_bytes=MAX_FRAME_BYTES)
                if frame is None:
                    return
                self.accept(*frame)
        except protocol.ProtocolError:
            self._violation()
        except OSError as error:
            if error.errno == errno.ENOSPC:
                self.disk_error = error  # the grader's disk, not the student's doing: re-raised by the caller
            else:
                self.result.flags.append("stream_error")
        except ValueError:
            self.result.flags.append("stream_error")
        finally:
            if self.closed and self.on_stop is not None:
                self.on_stop()

    def accept(self, header: dict, files: list) -> bool | None:
        """Take one frame; False means the sandbox must end now (over the cap, or a forged frame)."""
        if self.closed:
            return False
        name = header["probe"]
        if name == "_startup":
            self.started = True
            seconds = header["status"].get("seconds")
            if isinstance(seconds, (int, float)):
                self.result.startup_seconds.append(float(seconds))
            return
        if name not in self.expected or name in self.received:
            self._violation()
            return False
        if not self.budget.take(sum(len(data) for _, data in files)):
            self.result.flags.append("artifacts_too_large")
            self.closed = True
            return False
        probe_dir = self.artifacts_dir / name
        shutil.rmtree(probe_dir, ignore_errors=True)
        probe_dir.mkdir(parents=True)
        for file_name, data in files:
            if file_name != "status.json":  # ours to write
                (probe_dir / file_name).write_bytes(data)
        status = {key: value for key, value in header["status"].items()
                  if key in ("seconds", "timed_out", "exit_code", "signal", "unfinished", "left_behind",
                             "timeout_s", "dropped_files", "cpu_user_seconds", "cpu_system_seconds", "process",
                             "executor_cpu_seconds", "recorder_failed", "protocol_violation", "scratch_full", "memory_limit")}
        if status.get("recorder_failed"):  # the recorder runs no student code: its crash is the grader's
            self.result.failure = self.result.failure or f"the recorder failed while running {name}"
        self.result.statuses[name] = status
        _write_status(self.artifacts_dir, name, status)
        self.received.add(name)

    def _violation(self) -> None:
        self.result.flags.append("protocol_violation")
        self.closed = True


def _write_status(artifacts_dir: Path, name: str, status: dict) -> None:
    probe_dir = artifacts_dir / name
    probe_dir.mkdir(parents=True, exist_ok=True)
    (probe_dir / "status.json").write_text(json.dumps(status))
