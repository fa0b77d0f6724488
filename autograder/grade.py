"""Grade many submissions: stage -> sandbox -> artifacts -> scores -> reports -> gradebook, in parallel.

``grade()`` is what the CLI, the tests, the benchmark and the Gradescope entry point call. Each
submission's stages write under ``out_dir/<name>/`` (``submission/``, ``intake.json``, ``artifacts/``,
``scores.json``, then ``feedback.*`` and ``results.json``), so any stage can be rerun alone. A
submission's mistakes never stop the batch; a failure of the grader's own environment (no sandbox,
no MNIST, a full disk) stops it with a message and exit code 2.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .gradebook import Gradebook, default_url
from .inputs import GradingInputs, build_inputs
from .mnist_data import MnistDataError, check_configured_folder
from .plan import probes
from .reference_scores import REFERENCE_PATH, load_reference, thresholds
from .report import (SubmissionReport, build_report, class_table, pass_rates_csv, results_json, summary_csv,
                     write_atomic, write_submission_files)
from .rubric import Rubric, load_rubric
from .sandbox import isolation
from .scoring import SCORING_TIMEOUT_S, score_in_child
from .scoring import warm_up as scoring_warm_up
from .sandbox.pool import WarmPool, WorkerUnavailable
from .sandbox.runner import SandboxError, run_probes
from .settings import PACKAGE_DIR, Settings
from .artifacts import Artifacts
from .submissions import FORGING, Submission, discover, stage


class GraderError(RuntimeError):
    """The grader cannot run (its environment, not a submission): message for the TA, exit code 2."""


class OutputDiskFull(GraderError):
    pass


@dataclass
class Timing:
    """Where one submission's time went (seconds), for the TA log and the benchmark."""
    stage: float = 0.0
    sandbox_startup: float = 0.0
    probes: dict = field(default_factory=dict)
    probes_cpu: dict = field(default_factory=dict)  # user + system seconds of each probe, as its process reported them
    sandbox_wall: float = 0.0
    scoring: float = 0.0
    total: float = 0.0


@dataclass
class GradeOutcome:
    report: SubmissionReport
    timing: Timing
    skipped: bool = False


def fingerprint(rubric: Rubric, threshold_values: dict) -> str:
    """Identifies everything a verdict depends on; a change means earlier grades are out of date."""
    digest = hashlib.sha256(__version__.encode())
    for folder in ("graders", "harness"):
        for path in sorted((PACKAGE_DIR / folder).glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    for path in (rubric.path, PACKAGE_DIR / "plan.py", PACKAGE_DIR / "numpy_model.py", PACKAGE_DIR / "artifacts.py"):
        digest.update(path.read_bytes())
    digest.update(json.dumps(threshold_values, sort_keys=True).encode())
    return digest.hexdigest()


def grade(submissions: list[Path], *, out_dir: Path, settings: Settings, gradebook_url: str | None = None,
          regrade: bool = False, progress: bool = True, reference_path: Path = REFERENCE_PATH,
          rubric_path: Path | None = None, command: str = "grade") -> list[GradeOutcome]:
    """Grade every submission under ``submissions`` into ``out_dir`` and record them in the gradebook.

    Args:
        submissions: folders, zips, hello_mnist.py files, or folders of those.
        out_dir: results, feedback, summaries and (by default) the SQLite gradebook.
        settings: limits, parallelism and isolation switches.
        gradebook_url: an SQLAlchemy URL; default ``sqlite:///<out_dir>/gradebook.sqlite``.
        regrade: grade again submissions already graded with the same files and graders.
        progress: draw a progress bar with ETA on stderr.

    Returns:
        One outcome per submission, in the order given.

    Raises:
        GraderError: no isolation (without the development flag), no MNIST, bad reference scores or
            rubric, unwritable or full output disk.
    """
    if not settings.unsafe_no_sandbox:
        try:
            isolation.check_available()
        except isolation.IsolationUnavailable as error:
            raise GraderError(f"{error}\n(For development only, --unsafe-no-sandbox runs student code without "
                              "isolation.)") from None
    found = discover(submissions)
    try:  # before any worker starts: a wrong data folder is reported in milliseconds, not after Keras loads
        check_configured_folder()
    except MnistDataError as error:
        raise GraderError(str(error)) from None
    rubric = load_rubric(rubric_path) if rubric_path else load_rubric()
    threshold_values = thresholds(rubric, load_reference(reference_path))
    out_dir = Path(out_dir)
    private = out_dir / ".grader"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        private.mkdir(exist_ok=True)
        os.chmod(private, 0o711)  # sandboxes (other uids) must reach inputs/public, nothing else
    except OSError as error:
        raise GraderError(f"Cannot write to {out_dir}: {error.strerror}.") from None
    stamp = fingerprint(rubric, threshold_values.as_dict())
    settings, uid_lock = claim_uid_range(settings)  # held until this process ends
    # No more parallel jobs than submissions. Slots a small class leaves free become helper slots that run
    # a submission's training checks (runner.PARALLEL_PROBES) beside its other checks (one submission on two
    # cores: both used).
    slots_total = settings.resolved_jobs()
    jobs = min(slots_total, max(1, len(found)))
    helpers = slots_total - jobs if settings.warm_workers and not settings.unsafe_no_sandbox else 0
    threads = settings.threads_per_job or max(1, (os.cpu_count() or 1) // (jobs + helpers))
    settings = dataclasses.replace(settings, jobs=jobs, threads_per_job=threads)
    book = Gradebook(gradebook_url or default_url(out_dir))
    run_id = book.start_run(command=command, fingerprint=stamp, settings=asdict(settings))
    status = "interrupted"
    pool = None
    try:
        scoring_warm_up()  # the scoring server imports pytest and the graders meanwhile
        inputs_root = _empty_inputs(private)
        # The warm workers import Keras (seconds) while the inputs are written into the folder they bind.
        pool = _warm_pool(settings, inputs_root / "public", private)
        if pool is not None:
            pool.prestart(range(jobs + helpers))
        inputs = _build_inputs(inputs_root, rubric)
        write_atomic(private / "thresholds.json", json.dumps(threshold_values.as_dict()))
        outcomes = _grade_all(found, out_dir=out_dir, private=private, inputs=inputs, rubric=rubric,
                              settings=settings, book=book, run_id=run_id, stamp=stamp, regrade=regrade,
                              progress=progress, pool=pool, helpers=helpers)
        reports = [o.report for o in outcomes]
        write_atomic(out_dir / "summary.csv", summary_csv(reports))
        write_atomic(out_dir / "test_pass_rates.csv", pass_rates_csv(reports))
        write_atomic(out_dir / "timings.json", json.dumps(
            {o.report.name: asdict(o.timing) for o in outcomes if not o.skipped}, indent=1))
        status = "finished"
        return outcomes
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise OutputDiskFull(f"The disk holding {out_dir} is full. Every submission graded so far is complete and "
                                 "recorded; free some space and run the same command again to grade the rest.") from None
        raise
    finally:
        if pool is not None:
            pool.close()
        try:
            book.finish_run(run_id, status)
        except Exception:
            pass


UID_BLOCK = 64
LOCK_DIR = Path("/run/lock") if Path("/run/lock").is_dir() else Path(tempfile.gettempdir())


def claim_uid_range(settings: Settings):
    """As root, reserve a block of sandbox uids for this run, so two grading runs on one machine never
    share uids (process limits, signals) or memory cgroups; returns the settings to use and the lock."""
    if not isolation.is_root() or settings.unsafe_no_sandbox:
        return settings, None
    if settings.resolved_jobs() > UID_BLOCK:
        raise GraderError(f"--jobs {settings.resolved_jobs()} exceeds the {UID_BLOCK} sandbox uids of a block.")
    for block in range(64):
        first = settings.first_uid + block * UID_BLOCK
        handle = open(LOCK_DIR / f"autograder-uids-{first}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return dataclasses.replace(settings, first_uid=first), handle
    raise GraderError(f"Every block of sandbox uids from {settings.first_uid} is in use by another grading run.")


def _empty_inputs(private: Path) -> Path:
    root = private / "inputs"
    if root.exists():
        shutil.rmtree(root)
    (root / "public").mkdir(parents=True)
    os.chmod(root, 0o755)
    os.chmod(root / "public", 0o755)
    return root


def _build_inputs(root: Path, rubric: Rubric) -> GradingInputs:
    try:
        return build_inputs(root, retrain=rubric.retrain)
    except MnistDataError as error:
        raise GraderError(str(error)) from None


def _grade_all(found: list[Submission], *, out_dir, private, inputs, rubric, settings, book, run_id, stamp,
               regrade, progress, pool, helpers: int = 0) -> list[GradeOutcome]:
    jobs = settings.resolved_jobs()
    slots: queue.Queue[int] = queue.Queue()
    spare: queue.Queue[int] = queue.Queue()
    for slot in range(jobs):
        slots.put(slot)
    for slot in range(jobs, jobs + helpers):
        spare.put(slot)
    bar = ProgressBar(len(found), enabled=progress)
    results: dict[str, GradeOutcome] = {}

    def work(submission: Submission) -> GradeOutcome:
        slot = slots.get()
        helper = None if spare.empty() else spare.get()
        try:
            workers = [w for w in (_worker(pool, slot), _worker(pool, helper) if helper is not None else None) if w]
            return grade_one(submission, out_dir=out_dir, private=private, inputs=inputs, rubric=rubric,
                             settings=settings, book=book, run_id=run_id, stamp=stamp, regrade=regrade, slot=slot,
                             workers=workers)
        finally:
            slots.put(slot)
            if helper is not None:
                spare.put(helper)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as executor:
            futures = {executor.submit(work, submission): submission for submission in found}
            for future in as_completed(futures):
                outcome = future.result()  # a GraderError here stops the batch: it is ours, not the student's
                results[futures[future].name] = outcome
                bar.advance(outcome)
    finally:
        bar.close()
    return [results[s.name] for s in found]


def _warm_pool(settings: Settings, public_inputs: Path, private: Path) -> WarmPool | None:
    """Warm zygotes (one per slot) unless switched off or running without a sandbox."""
    if not settings.warm_workers or settings.unsafe_no_sandbox:
        return None
    return WarmPool(settings=settings, inputs_dir=public_inputs, root=private / "workers")


def _worker(pool: WarmPool | None, slot: int):
    if pool is None:
        return None
    try:
        return pool.worker(slot)
    except WorkerUnavailable as error:
        print(f"warning: {error}; grading slot {slot} with cold sandboxes", file=sys.stderr)
        return None


def grade_one(submission: Submission, *, out_dir: Path, private: Path, inputs: GradingInputs, rubric: Rubric,
              settings: Settings, book: Gradebook, run_id: int, stamp: str, regrade: bool,
              slot: int, workers=()) -> GradeOutcome:
    """Grade one submission through every stage; its own mistakes end up in its feedback."""
    started = time.perf_counter()
    timing = Timing()
    directory = out_dir / submission.name
    staged = stage(submission, _fresh(directory / "submission"))
    timing.stage = round(time.perf_counter() - started, 3)
    results_path = directory / "results.json"
    if not regrade and results_path.exists() and book.is_graded(submission.name, staged.digest, stamp):
        report = _report_from_results(submission.name, results_path)
        return GradeOutcome(report, timing, skipped=True)
    write_atomic(directory / "intake.json", json.dumps(staged.intake(), indent=1))
    artifacts_dir = _fresh(directory / "artifacts")
    flags = list(staged.flags)
    specs = probes(settings, rubric, has_model_file=bool(staged.model_file.get("accepted")))
    # Without a module only the submitted model can be checked; every other probe explains why not.
    runnable = specs if staged.has_module else [spec for spec in specs if spec.name == "trained_model"]
    reason = staged.problems[0] if staged.problems else "No hello_mnist.py was submitted."
    for spec in specs:
        if spec not in runnable:
            (artifacts_dir / spec.name).mkdir()
            (artifacts_dir / spec.name / "status.json").write_text(json.dumps({"skipped": True, "reason": reason}))
    if runnable:
        work_dir = _fresh(private / "work" / submission.name)
        try:
            sandbox = run_probes(runnable, submission_dir=staged.directory, inputs_dir=inputs.public,
                                 artifacts_dir=artifacts_dir, work_dir=work_dir, settings=settings, slot=slot,
                                 workers=workers)
        except SandboxError as error:
            raise GraderError(f"The sandbox failed before running {submission.name}'s code: {error}") from None
        flags += sandbox.flags
        if any(FORGING.search(Artifacts(artifacts_dir).output(spec.name, limit=65536)) for spec in runnable):
            flags.append("forged_output")  # printed something that looks like a grade: ignored, reported
        timing.sandbox_startup = sandbox.startup_seconds[0] if sandbox.startup_seconds else 0.0
        timing.probes = {name: status.get("seconds") for name, status in sandbox.statuses.items()}
        timing.probes_cpu = {name: _cpu_seconds(status) for name, status in sandbox.statuses.items()}
        timing.sandbox_wall = sandbox.wall_seconds
    tick = time.perf_counter()
    scores = _score(directory, artifacts_dir, inputs, private, rubric)
    timing.scoring = round(time.perf_counter() - tick, 3)
    timing.total = round(time.perf_counter() - started, 3)
    if scores.get("internal_errors"):
        flags.append("grader_error")
        errors_dir = private / "work" / submission.name
        errors_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(errors_dir / "grader-errors.txt", "\n\n".join(scores["internal_errors"]))
    report = build_report(submission.name, scores["tests"], flags=flags, problems=staged.problems,
                          execution_time=timing.total, digest=staged.digest)
    write_submission_files(directory, report)
    book.record(run_id, report, fingerprint=stamp, results=results_json(report))
    return GradeOutcome(report, timing)


def _cpu_seconds(status: dict) -> float | None:
    parts = [status.get("cpu_user_seconds"), status.get("cpu_system_seconds")]
    if not all(isinstance(part, (int, float)) for part in parts):
        return None
    return round(sum(parts), 3)


def _score(directory: Path, artifacts_dir: Path, inputs: GradingInputs, private: Path, rubric: Rubric) -> dict:
    """Run the hidden graders on one submission's artifacts (a fresh fork of the scoring server).

    The graders read nothing but this submission's artifacts, so when they crash or run out of time or
    memory, that costs this submission (every check failed, flagged grader_error for the TA), never the
    batch; only a full disk, which is the grader's own environment, stops the run.
    """
    out = directory / "scores.json"
    log = private / "work" / directory.name / "scoring.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = ["--artifacts", str(artifacts_dir), "--inputs", str(inputs.root), "--intake", str(directory / "intake.json"),
            "--thresholds", str(private / "thresholds.json"), "--out", str(out)]
    exit_code = score_in_child(argv, log=log)
    if exit_code is None:
        return _scoring_failed(rubric, f"scoring {directory.name} took more than {SCORING_TIMEOUT_S} s")
    if exit_code != 0 or not out.exists():
        text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        if "No space left on device" in text:
            raise OSError(errno.ENOSPC, "No space left on device")
        return _scoring_failed(rubric, f"The graders crashed while scoring {directory.name} (exit {exit_code}):\n{text}")
    return json.loads(out.read_text())


def _scoring_failed(rubric: Rubric, reason: str) -> dict:
    tests = [{"rubric_id": item.id, "name": item.name, "function": item.function, "score": 0.0,
              "max_score": item.points, "status": "failed", "question": "", "flags": ["grader_error"],
              "output": "The autograder could not score this submission; your TA has been told."}
             for item in rubric.items]
    return {"tests": tests, "internal_errors": [reason]}


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _report_from_results(name: str, path: Path) -> SubmissionReport:
    """Rebuild the summary of an already graded submission from its results.json."""
    data = json.loads(path.read_text())
    tests = [{"rubric_id": "", "name": t["name"], "function": (t.get("tags") or ["?"])[0], "score": t["score"],
              "max_score": t["max_score"], "status": t["status"], "output": t.get("output", ""), "flags": []}
             for t in data.get("tests", [])]
    extra = data.get("extra_data", {})
    return build_report(name, tests, flags=extra.get("flags", []), problems=[], execution_time=data.get("execution_time", 0),
                        digest=extra.get("digest", ""))


class ProgressBar:
    """``[#####.....] 12/40 graded, 1 skipped, ETA 2m05s`` on stderr; one line per submission when not a TTY."""

    def __init__(self, total: int, *, enabled: bool):
        self.total, self.done, self.skipped = total, 0, 0
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.lock = threading.Lock()

    def advance(self, outcome: GradeOutcome) -> None:
        with self.lock:
            self.done += 1
            self.skipped += outcome.skipped
            if not self.enabled:
                return
            elapsed = time.perf_counter() - self.started
            graded = self.done - self.skipped
            remaining = self.total - self.done
            eta = elapsed / graded * remaining if graded else 0.0
            filled = int(30 * self.done / max(1, self.total))
            text = (f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} graded"
                    f"{f', {self.skipped} already done' if self.skipped else ''}, "
                    f"ETA {int(eta // 60)}m{int(eta % 60):02d}s  ({outcome.report.name}: {outcome.report.total:g})")
            if self.tty:
                sys.stderr.write("\r" + text.ljust(100))
            else:
                sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def print_table(outcomes: list[GradeOutcome], out_dir: Path) -> None:
    print(class_table([o.report for o in outcomes]))
    print(f"\nResults: {out_dir}/<submission>/results.json and feedback.md; class summary: {out_dir}/summary.csv")
