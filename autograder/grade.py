"""Grade many submissions: stage -> sandbox -> artifacts -> scores -> reports -> gradebook, in parallel.

``grade()`` is what the CLI, the tests, the benchmark and the Gradescope entry point call. Each
submission's stages write under ``out_dir/submissions/<folder>/`` (``submission/``, ``intake.json``,
``artifacts/``, ``scores.json``, then ``feedback.*`` and ``results.json``), so any stage can be rerun
alone; the grader's own files (``summary.csv``, ``gradebook.sqlite``, ``.grader/``) sit beside that
folder, where no submission's name can land.

Whose fault is what:

* a submission's own mistakes (a damaged file, a crash, a limit) become its zeros and feedback, and the
  batch goes on;
* a failure of the grader on one submission (a sandbox or worker that dies without a limit being hit, a
  scoring crash, an internal error) is retried once in a fresh worker; if it fails again the submission is
  recorded as *not graded* (never a score), its details go to ``.grader/errors/<folder>.txt``, the run
  goes on, ends with exit code 3, and the next plain run grades it again;
* a failure of the grader's environment (no sandbox, no MNIST, another run holding the output folder, a
  full disk) stops the run with a message and exit code 2.

A submission counts as already graded only when the digest of the files given now and the grader's
fingerprint both match a recorded grade; the class files are always rebuilt from the gradebook.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import csv
import json
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from filelock import FileLock, Timeout

from . import __version__, plan
from . import assignment as assignments
from .artifacts import Artifacts
from .class_similarity import compare_class, model_identity, similarity_csv, similarity_html
from .assignment import Assignment, AssignmentError
from .datasets import DatasetError
from .gradebook import Gradebook, default_url, report_of
from .inputs import GradingInputs
from .reference_scores import ReferenceScoresError, Thresholds, load_reference, thresholds
from .report import (SubmissionReport, build_report, class_table, not_graded_report, pass_rates_csv, results_json,
                     summary_csv, write_atomic, write_submission_files)
from .rubric import Rubric, RubricError, load_rubric
from .sandbox import isolation, tiers
from .sandbox.pool import WarmPool, WorkerUnavailable
from .sandbox.runner import SandboxError, run_probes
from .scoring import SCORING_TIMEOUT_S, score_in_child
from .scoring import warm_up as scoring_warm_up
from .settings import PACKAGE_DIR, Settings
from .submissions import FORGING, Expected, Submission, discover, peek_version, stage

SUBMISSIONS_DIR = "submissions"   # out/submissions/<folder>/: one folder per submission
EXIT_NOT_GRADED = 3               # some submissions could not be graded (grader failures): run again
ATTEMPTS = 2                      # a grader failure is retried once, in a fresh worker
VERSIONED_PACKAGES = ("keras", "tensorflow", "tensorflow-cpu", "numpy")


class GraderError(RuntimeError):
    """The grader cannot run (its environment, not a submission): message for the TA, exit code 2."""


class OutputDiskFull(GraderError):
    pass


class OutputLocked(GraderError):
    """Another grading run holds the output folder."""


class GraderFailure(RuntimeError):
    """The grader failed on one submission (not the student's doing): retried, then recorded as not graded."""


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
    attempts: int = 1


@dataclass
class GradeOutcome:
    report: SubmissionReport
    timing: Timing
    skipped: bool = False   # already graded with the same files and graders: the recorded grade, reported again

    @property
    def graded(self) -> bool:
        return self.report.graded


def fingerprint(assignment: Assignment, rubric: Rubric, threshold_values: dict, reference_path: Path) -> str:
    """Identifies everything a verdict on ``assignment`` depends on; a change means earlier grades are out of date.

    Every file of the grading engine (harness, scoring, inputs, the numpy model, ... : nothing is listed by
    hand) and of the version's definition (manifest, rubric, graders, probe inputs), the reference scores
    in use, the derived thresholds, and the installed versions of Keras, TensorFlow and numpy (read from the
    package metadata, without importing them).
    """
    digest = hashlib.sha256(__version__.encode())
    for root in (PACKAGE_DIR, assignment.grading_dir):
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".toml", ".json") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    for path in (assignment.manifest_path, rubric.path, reference_path):
        digest.update(b"\0" + Path(path).read_bytes())
    digest.update(json.dumps(threshold_values, sort_keys=True).encode())
    for package in VERSIONED_PACKAGES:
        try:
            digest.update(f"{package}=={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()


class OutputFolderLock:
    """One writer per output folder: a kernel-held lock (``filelock`` on flock), so a lock left by ``kill -9``
    is free again by construction; who holds it is written beside it for the message a second run prints."""

    def __init__(self, private: Path, command: str):
        self.path = private / "lock"
        self.holder_path = private / "lock.json"
        self.command = command
        self.lock = FileLock(str(self.path), timeout=0)

    def __enter__(self):
        try:
            self.lock.acquire()
        except Timeout:
            raise OutputLocked(self._refusal()) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        write_atomic(self.holder_path, json.dumps(holder))
        return self

    def __exit__(self, *exc):
        try:
            self.holder_path.unlink()
        except OSError:
            pass
        self.lock.release()

    def _refusal(self) -> str:
        try:
            holder = json.loads(self.holder_path.read_text())
            who = (f"process {holder.get('pid')} on {holder.get('host')}, running `{holder.get('command')}` since "
                   f"{holder.get('since')}")
        except (OSError, ValueError):
            who = "another process (it has not said who yet)"
        folder = self.path.parent.parent
        return (f"{folder} is being graded by {who}. Two runs on one output folder would overwrite each other's "
                "grades: wait for it to finish (or stop it), or grade into another --out folder.")


@dataclass
class VersionRun:
    """What every submission of one assignment version shares in a run."""
    assignment: Assignment
    rubric: Rubric
    threshold_values: Thresholds
    stamp: str
    inputs: GradingInputs | None = None
    thresholds_path: Path | None = None


def prepare_version(version: str, *, rubric_path: Path | None = None, reference_path: Path | None = None) -> VersionRun:
    """Load and check one version's rubric, reference and dataset folder (the instructor's or TA's to fix).

    Raises:
        GraderError: no such version, an inconsistent rubric or reference, or a dataset folder that holds no data.
    """
    try:
        assignment = assignments.load(version)
        rubric = load_rubric(assignment, rubric_path)
        reference = reference_path or assignment.reference_path
        threshold_values = thresholds(rubric, load_reference(reference))
        assignment.check_dataset_folder()  # milliseconds, before any worker starts
    except (AssignmentError, RubricError, ReferenceScoresError, DatasetError) as error:
        raise GraderError(str(error)) from None
    return VersionRun(assignment, rubric, threshold_values,
                      fingerprint(assignment, rubric, threshold_values.as_dict(), reference))


def expected_submissions(*, requested: str | None = None, default: str | None = None) -> Expected:
    """Every known version's layout (and its syntax-error rule), the default version, the TA's choice."""
    known = assignments.versions()
    if requested is not None and requested not in known:
        raise GraderError(f"--version {requested}: there is no such assignment version (known: {', '.join(known)}).")
    layouts = []
    for version in known:
        assignment = assignments.load(version)
        try:
            rescue = load_rubric(assignment).rescue_syntax_errors
        except RubricError as error:
            raise GraderError(str(error)) from None
        layouts.append(assignment.layout(rescue_syntax_errors=rescue))
    return Expected(tuple(layouts), default=default or assignments.latest(), requested=requested)


def grade(submissions: list[Path], *, out_dir: Path, settings: Settings, gradebook_url: str | None = None,
          regrade: bool = False, progress: bool = True, version: str | None = None,
          reference_path: Path | None = None, rubric_path: Path | None = None,
          command: str = "grade", lms: str = "auto") -> list[GradeOutcome]:
    """Grade every submission under ``submissions`` into ``out_dir`` and record them in the gradebook.

    Args:
        submissions: folders, zips, module files, or folders of those (a mixed class of versions is fine).
        out_dir: results, feedback, summaries and (by default) the SQLite gradebook.
        settings: limits, parallelism and isolation switches.
        gradebook_url: an SQLAlchemy URL; default ``sqlite:///<out_dir>/gradebook.sqlite``.
        regrade: grade again submissions already graded with the same files and graders.
        progress: draw a progress bar with ETA on stderr.
        version: grade every submission against this assignment version (``--version``); by default each is
            graded against the version its own files name (the released module's first line).
        reference_path, rubric_path: another reference or rubric for the version graded (tools and tests).
        lms: how to read LMS downloads among ``submissions``: "auto" (recognise Canvas, Moodle, Gradescope),
            a layout's name, or "none".

    Returns:
        One outcome per submission, in the order found; ``outcome.graded`` is False for the ones the grader
        failed on (exit code 3 in the CLI).

    Raises:
        GraderError: no isolation (without the development flag), no data, bad reference scores or rubric,
            the output folder held by another run, unwritable or full output disk.
        SubmissionPathError: a path that is not a submission or a folder of them.
    """
    tier = isolation_tier(settings)
    expected, found, versions, private = open_class(submissions, out_dir=out_dir, version=version, lms=lms,
                                                    rubric_path=rubric_path, reference_path=reference_path)
    if tier.container:
        lock_down_for_container(settings, out_dir=Path(out_dir), private=private, submissions=submissions)
    from .pins import version_warnings
    for run in versions.values():  # thresholds come from the reference's libraries: say when these differ
        for line in version_warnings(run.assignment):
            print(line, file=sys.stderr)
    out_dir = Path(out_dir)
    with OutputFolderLock(private, command):
        return _grade_locked(found, out_dir=out_dir, private=private, settings=settings, gradebook_url=gradebook_url,
                             regrade=regrade, progress=progress, versions=versions, expected=expected,
                             command=command, tier=tier)


def isolation_tier(settings: Settings) -> tiers.Tier:
    """The sandbox tier of this run (sandbox/tiers.py); raises GraderError when it is below the minimum."""
    try:
        return tiers.select(settings)
    except tiers.IsolationRefused as error:
        raise GraderError(str(error)) from None


def lock_down_for_container(settings: Settings, *, out_dir: Path, private: Path, submissions: list[Path]) -> None:
    """The container tier has no mount namespace to hide the grader's files in: make them, the inputs, the
    submissions and the results unreadable to the sandbox uids (checked as one of them), and say so."""
    os.chmod(private, 0o700)  # no sandbox uid needs to reach the inputs here: the supervisor stays root
    try:
        changed = tiers.lock_down(tiers.secret_paths([out_dir, *submissions]), settings.first_uid)
    except tiers.IsolationRefused as error:
        raise GraderError(str(error)) from None
    if changed:
        print(f"note: container tier: made {len(changed)} paths unreadable to other users (chmod o-rwx): "
              + ", ".join(str(p) for p in changed[:6]) + (" ..." if len(changed) > 6 else ""), file=sys.stderr)


def open_class(submissions: list[Path], *, out_dir: Path, version: str | None, lms: str,
               rubric_path: Path | None = None, reference_path: Path | None = None):
    """What a run needs before its lock (shared by ``grade()`` and ``cluster.grade_on_cluster``): the versions
    expected, the submissions found, each needed version prepared, and the output folder's private folder.

    Raises:
        GraderError, SubmissionPathError: as ``grade()``.
    """
    expected = expected_submissions(requested=version)
    found = discover(submissions, module_names=expected.module_names, lms=lms)
    needed = sorted({peek_version(submission, expected) for submission in found} or {expected.default})
    versions = {name: prepare_version(name, rubric_path=rubric_path if name == version or len(needed) == 1 else None,
                                      reference_path=reference_path if name == version or len(needed) == 1 else None)
                for name in needed}
    out_dir = Path(out_dir)
    private = out_dir / ".grader"
    try:
        (out_dir / SUBMISSIONS_DIR).mkdir(parents=True, exist_ok=True)
        private.mkdir(exist_ok=True)
        os.chmod(private, 0o711)  # sandboxes (other uids) must reach inputs/<version>/public, nothing else
    except OSError as error:
        raise GraderError(f"Cannot write to {out_dir}: {error.strerror}.") from None
    return expected, found, versions, private


def _grade_locked(found, *, out_dir, private, settings, gradebook_url, regrade, progress, versions, expected,
                  command, tier: tiers.Tier) -> list[GradeOutcome]:
    settings, uid_lock = claim_uid_range(settings)  # held until this process ends
    if not settings.unsafe_no_sandbox:  # before any thread: the cgroup tree may have to move this process
        groups = isolation.submission_groups(settings)
        if isolation.is_root() and not groups.available:
            print(f"note: no cgroup per submission here ({groups.reason}); sandboxes are bounded by rlimits only.",
                  file=sys.stderr)
    # No more parallel jobs than submissions. Slots a small class leaves free become helper slots that run
    # a submission's training checks (the probes marked parallel) beside its other checks (one submission on two
    # cores: both used).
    slots_total = settings.resolved_jobs()
    jobs = min(slots_total, max(1, len(found)))
    helpers = slots_total - jobs if settings.warm_workers and not settings.unsafe_no_sandbox else 0
    threads = settings.threads_per_job or max(1, (os.cpu_count() or 1) // (jobs + helpers))
    settings = dataclasses.replace(settings, jobs=jobs, threads_per_job=threads)
    book = Gradebook(gradebook_url or default_url(out_dir))
    stamps = ",".join(f"{name}:{run.stamp}" for name, run in sorted(versions.items()))
    run_id = book.start_run(command=command, fingerprint=hashlib.sha256(stamps.encode()).hexdigest(),
                            settings=asdict(settings))
    status = "interrupted"
    pool = None
    try:
        scoring_warm_up()  # the scoring server imports pytest and the graders meanwhile
        roots = {name: _empty_inputs(private, name) for name in versions}
        # The warm workers import Keras (seconds) while the inputs are written into the folders they bind.
        pool = _warm_pool(settings, {name: root / "public" for name, root in roots.items()}, private)
        if pool is not None:
            pool.prestart(range(jobs + helpers))
        for name, run in versions.items():
            run.inputs = _build_inputs(run, roots[name])
            run.thresholds_path = private / f"thresholds-{name}.json"
            write_atomic(run.thresholds_path, json.dumps(run.threshold_values.as_dict()))
        context = RunContext(out_dir=out_dir, private=private, versions=versions, expected=expected,
                             settings=settings, book=book, run_id=run_id, regrade=regrade, tier=tier)
        outcomes = _grade_all(found, context, progress=progress, pool=pool, helpers=helpers)
        write_class_files(out_dir, book)
        write_atomic(out_dir / "timings.json", json.dumps(
            {o.report.key: asdict(o.timing) for o in outcomes if not o.skipped}, indent=1, ensure_ascii=False))
        status = "finished" if all(o.graded for o in outcomes) else "incomplete"
        return outcomes
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise OutputDiskFull(f"The disk holding {out_dir} is full. Every submission graded so far is complete and "
                                 "recorded; free some space and run the same command again to grade the rest.") from None
        raise
    finally:
        if pool is not None:
            pool.close()
        isolation.close_submission_groups()
        try:
            book.finish_run(run_id, status)
        except Exception:
            pass


@dataclass
class RunContext:
    """What every submission of one run shares."""
    out_dir: Path
    private: Path
    versions: dict[str, VersionRun]
    expected: Expected
    settings: Settings
    book: Gradebook
    run_id: int
    regrade: bool
    tier: tiers.Tier | None = None  # the sandbox tier of this process's sandboxes (None: a cluster's client)

    def directory(self, submission: Submission) -> Path:
        return self.out_dir / SUBMISSIONS_DIR / submission.folder


def all_functions(reports: list[SubmissionReport]) -> tuple[str, ...]:
    """The summary's columns for a class of one or more versions: every version's functions, in order."""
    functions: list[str] = []
    for report in reports:
        functions += [name for name in report.functions if name not in functions]
    return tuple(functions)


def write_class_files(out_dir: Path, book: Gradebook) -> list[SubmissionReport]:
    """``summary.csv`` and ``test_pass_rates.csv`` as views of the gradebook: the latest valid grade of every
    submission ever graded into this output folder, whatever this run graded."""
    reports = book.reports()
    similar = write_similarity_files(out_dir, reports)
    write_atomic(out_dir / "summary.csv", summary_csv(reports, all_functions(reports), similar))
    write_atomic(out_dir / "test_pass_rates.csv", pass_rates_csv(reports))
    return reports


def write_similarity_files(out_dir: Path, reports: list[SubmissionReport]) -> dict[str, list[str]]:
    """``similarity.csv`` and ``similarity.html`` for the class; returns who looks like whom (summary.csv's
    ``similar_to``). A failure here is reported and leaves the grades alone."""
    known = {name: assignments.load(name) for name in assignments.versions()}
    modules = {name: a.module for name, a in known.items()}
    stubs = {}
    for name, a in known.items():
        stub = a.release_dir / a.module
        if stub.is_file():
            stubs[name] = stub.read_text(encoding="utf-8", errors="replace")
    names = {report.key: report.shown_name for report in reports}
    try:
        result = compare_class(out_dir / SUBMISSIONS_DIR, reports, modules=modules, stubs=stubs)
        write_atomic(out_dir / "similarity.csv", similarity_csv(result, names))
        write_atomic(out_dir / "similarity.html", similarity_html(result, names, stubs))
    except (OSError, ValueError, ImportError, MemoryError) as error:
        print(f"warning: the similarity report was not written ({error}); grades are unaffected", file=sys.stderr)
        return {}
    return result.similar


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


def _empty_inputs(private: Path, version: str) -> Path:
    root = private / "inputs" / version
    if root.exists():
        shutil.rmtree(root)
    (root / "public").mkdir(parents=True)
    for folder in (root.parent, root, root / "public"):
        os.chmod(folder, 0o755)
    return root


def _build_inputs(run: VersionRun, root: Path) -> GradingInputs:
    """The version's own builder (``solutions/<version>/grading/inputs.py``) on its own dataset."""
    try:
        builder = run.assignment.grading_module("inputs")
        return builder.build(root, dataset=run.assignment.load_dataset(), retrain=run.rubric.retrain)
    except DatasetError as error:
        raise GraderError(str(error)) from None


def _grade_all(found: list[Submission], context: RunContext, *, progress, pool, helpers: int = 0) -> list[GradeOutcome]:
    jobs = context.settings.resolved_jobs()
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
            return grade_with_retry(submission, context, pool=pool, slot=slot, helper=helper)
        finally:
            slots.put(slot)
            if helper is not None:
                spare.put(helper)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as executor:
            futures = {executor.submit(work, submission): submission for submission in found}
            for future in as_completed(futures):
                outcome = future.result()  # only the grader's environment (a full disk) raises here
                results[futures[future].key] = outcome
                bar.advance(outcome)
    finally:
        bar.close()
    return [results[s.key] for s in found]


def grade_with_retry(submission: Submission, context: RunContext, *, pool, slot: int, helper: int | None) -> GradeOutcome:
    """Grade one submission; a grader failure is retried once in fresh workers, then recorded as not graded.

    Only the grader's environment (``OSError`` ENOSPC: a full disk; ``GraderError``) propagates.
    """
    failures: list[str] = []
    started = time.perf_counter()
    for attempt in range(1, ATTEMPTS + 1):
        if attempt > 1 and pool is not None:
            pool.replace([slot] + ([helper] if helper is not None else []))  # a fresh worker for the retry
        workers = [w for w in (_worker(pool, slot), _worker(pool, helper) if helper is not None else None) if w]
        try:
            outcome = grade_one(submission, context, slot=slot, workers=workers)
            outcome.timing.attempts = attempt
            return outcome
        except GraderFailure as error:
            failures.append(f"attempt {attempt}: {error}")
        except (GraderError, KeyboardInterrupt):
            raise
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise
            failures.append(f"attempt {attempt}: {type(error).__name__}: {error}\n{traceback.format_exc()}")
        except Exception as error:  # our own bug, on this submission: its own outcome, never the batch's
            failures.append(f"attempt {attempt}: {type(error).__name__}: {error}\n{traceback.format_exc()}")
    return _not_graded(submission, context, failures, seconds=time.perf_counter() - started)


def _not_graded(submission: Submission, context: RunContext, failures: list[str], *, seconds: float) -> GradeOutcome:
    details = context.private / "errors" / f"{submission.folder}.txt"
    details.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(details, f"{submission.display_name} ({submission.source}) could not be graded by run "
                          f"{context.run_id}; no grade was recorded.\n\n" + "\n\n".join(failures) + "\n")
    directory = context.directory(submission)
    intake = directory / "intake.json"
    digest = json.loads(intake.read_text()).get("digest", "") if intake.is_file() else ""
    first_line = failures[-1].split("\n", 1)[0].split(": ", 1)[-1] if failures else "unknown"
    version = context.expected.default
    if intake.is_file():
        version = json.loads(intake.read_text()).get("version") or version
    run = context.versions.get(version) or next(iter(context.versions.values()))
    report = not_graded_report(submission.folder, max_total=run.rubric.total, failure=first_line,
                               details=str(details.relative_to(context.out_dir)), digest=digest, key=submission.key,
                               display_name=submission.display_name, source=str(submission.source),
                               flags=submission.flags, functions=run.assignment.graded_functions(),
                               execution_time=seconds, version=run.assignment.version, title=run.assignment.name,
                               lms=submission.lms)
    write_submission_files(directory, report)
    context.book.record(context.run_id, report, fingerprint=run.stamp, results=results_json(report))
    return GradeOutcome(report, Timing(total=round(seconds, 3), attempts=ATTEMPTS))


def _warm_pool(settings: Settings, public_inputs: dict[str, Path], private: Path) -> WarmPool | None:
    """Warm zygotes (one per slot) unless switched off or running without a sandbox."""
    if not settings.warm_workers or settings.unsafe_no_sandbox:
        return None
    return WarmPool(settings=settings, inputs_dirs=public_inputs, root=private / "workers")


def _worker(pool: WarmPool | None, slot: int):
    if pool is None:
        return None
    try:
        return pool.worker(slot)
    except WorkerUnavailable as error:
        print(f"warning: {error}; grading slot {slot} with cold sandboxes", file=sys.stderr)
        return None


def grade_one(submission: Submission, context: RunContext, *, slot: int, workers=()) -> GradeOutcome:
    """Grade one submission through every stage; its own mistakes end up in its feedback.

    Raises:
        GraderFailure: the sandbox, the worker or the graders failed on it (not the student's doing).
    """
    started = time.perf_counter()
    timing = Timing()
    directory = context.directory(submission)
    staged = stage(submission, _fresh(directory / "submission"), expected=context.expected)
    timing.stage = round(time.perf_counter() - started, 3)
    run = context.versions.get(staged.version)
    if run is None:  # peek_version and stage disagree: ours to fix
        raise GraderFailure(f"the submission resolved to version {staged.version}, which this run did not prepare")
    assignment = run.assignment
    if not context.regrade:
        recorded = context.book.find_grade(submission.key, staged.digest, run.stamp)
        if recorded is not None:
            return _already_graded(submission, context, recorded, timing)
    write_atomic(directory / "intake.json", json.dumps(staged.intake(), indent=1, ensure_ascii=False))
    artifacts_dir = _fresh(directory / "artifacts")
    flags = list(staged.flags)
    specs = plan.probes(assignment, context.settings, run.rubric,
                        has_model_file=bool(staged.model_file.get("accepted")), has_notebook=bool(staged.notebook))
    # Without a module only the submitted model can be checked; every other probe explains why not.
    runnable = specs if staged.has_module else [spec for spec in specs if not spec.needs_module]
    reason = staged.problems[0] if staged.problems else f"No {assignment.module} was submitted."
    for spec in specs:
        if spec not in runnable:
            (artifacts_dir / spec.name).mkdir()
            (artifacts_dir / spec.name / "status.json").write_text(json.dumps({"skipped": True, "reason": reason}))
    work_dir = _fresh(context.private / "work" / submission.folder)
    if runnable:
        try:
            sandbox = run_probes(runnable, submission_dir=staged.directory, inputs_dir=run.inputs.public,
                                 artifacts_dir=artifacts_dir, work_dir=work_dir, settings=context.settings, slot=slot,
                                 workers=workers, version=assignment.version, module=assignment.module,
                                 model=assignment.model)
        except SandboxError as error:
            raise GraderFailure(f"the sandbox failed before running the submission's code: {error}") from None
        if sandbox.failure:
            raise GraderFailure(f"{sandbox.failure}\nsandbox stderr (last lines):\n{sandbox.stderr_tail[-3000:]}")
        flags += sandbox.flags
        harness_errors = _harness_errors(artifacts_dir)
        if harness_errors:
            raise GraderFailure("the harness failed on this submission:\n" + "\n".join(harness_errors))
        if any(FORGING.search(Artifacts(artifacts_dir).output(spec.name, limit=65536)) for spec in runnable):
            flags.append("forged_output")  # printed something that looks like a grade: ignored, reported
        timing.sandbox_startup = sandbox.startup_seconds[0] if sandbox.startup_seconds else 0.0
        timing.probes = {name: status.get("seconds") for name, status in sandbox.statuses.items()}
        timing.probes_cpu = {name: _cpu_seconds(status) for name, status in sandbox.statuses.items()}
        timing.sandbox_wall = sandbox.wall_seconds
    tick = time.perf_counter()
    scores = _score(directory, artifacts_dir, context, run, work_dir)
    timing.scoring = round(time.perf_counter() - tick, 3)
    timing.total = round(time.perf_counter() - started, 3)
    identity = model_identity(artifacts_dir, staged.directory / assignment.model,
                              tuple(d.name for d in plan.declarations(assignment) if d.only_with_model))
    report = build_report(submission.folder, scores["tests"], flags=flags, problems=staged.problems,
                          execution_time=timing.total, digest=staged.digest, key=submission.key,
                          display_name=submission.display_name, source=str(submission.source),
                          functions=assignment.graded_functions(notebook=bool(staged.notebook)),
                          version=assignment.version, title=assignment.name, manifest_hash=assignment.manifest_hash(),
                          lms=submission.lms, isolation=context.tier.name if context.tier else "", **identity)
    write_submission_files(directory, report)
    context.book.record(context.run_id, report, fingerprint=run.stamp, results=results_json(report))
    return GradeOutcome(report, timing)


def _already_graded(submission: Submission, context: RunContext, recorded: dict, timing: Timing) -> GradeOutcome:
    """The files given now were graded before by the same graders: report that grade, make it the latest again
    (a regrade of other files may have come in between), and rewrite the feedback to match the files staged."""
    report = report_of(recorded)
    report = dataclasses.replace(report, name=submission.folder, key=submission.key,
                                 display_name=submission.display_name, source=str(submission.source),
                                 lms=dict(submission.lms or {}))
    latest = context.book.latest_for(submission.key)
    if latest is None or latest["id"] != recorded["id"]:
        context.book.record(context.run_id, report, fingerprint=recorded["fingerprint"], results=results_json(report),
                            reused_from=recorded["id"])
    write_submission_files(context.directory(submission), report)
    return GradeOutcome(report, timing, skipped=True)


def _harness_errors(artifacts_dir: Path) -> list[str]:
    """Failures of the harness itself (not of the student's code) that a probe recorded."""
    errors = []
    for path in sorted(artifacts_dir.glob("*/result.json")):
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for error in payload.get("errors", []) if isinstance(payload, dict) else []:
            if isinstance(error, dict) and error.get("kind") == "harness":
                errors.append(f"{path.parent.name}: {str(error.get('message'))[:500]} {error.get('frames')}")
    return errors


def _cpu_seconds(status: dict) -> float | None:
    parts = [status.get("cpu_user_seconds"), status.get("cpu_system_seconds")]
    if not all(isinstance(part, (int, float)) for part in parts):
        return None
    return round(sum(parts), 3)


def _score(directory: Path, artifacts_dir: Path, context: RunContext, run: VersionRun, work_dir: Path) -> dict:
    """Run the hidden graders on one submission's artifacts (a fresh fork of the scoring server).

    The graders read nothing but this submission's artifacts. When they crash, run out of time or memory, or
    report an internal error, that is the grader's failure on this submission (``GraderFailure``), never the
    student's grade and never the batch's end; only a full disk, the grader's own environment, stops the run.
    """
    out = directory / "scores.json"
    if out.exists():
        out.unlink()
    log = work_dir / "scoring.log"
    argv = ["--version", run.assignment.version, "--artifacts", str(artifacts_dir), "--inputs", str(run.inputs.root),
            "--intake", str(directory / "intake.json"), "--thresholds", str(run.thresholds_path), "--out", str(out)]
    exit_code = score_in_child(argv, log=log)
    text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    if exit_code is None:
        raise GraderFailure(f"scoring took more than {SCORING_TIMEOUT_S} s")
    if exit_code != 0 or not out.exists():
        if "No space left on device" in text:
            raise OSError(errno.ENOSPC, "No space left on device")
        raise GraderFailure(f"the graders crashed (exit {exit_code}):\n{text}")
    scores = json.loads(out.read_text())
    if scores.get("internal_errors"):
        raise GraderFailure("internal grader errors:\n" + "\n\n".join(scores["internal_errors"])[:6000])
    return scores


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


class ProgressBar:
    """``[#####.....] 12/40 graded, 1 skipped, ETA 2m05s`` on stderr; one line per submission when not a TTY."""

    def __init__(self, total: int, *, enabled: bool):
        self.total, self.done, self.skipped, self.failed = total, 0, 0, 0
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.lock = threading.Lock()

    def advance(self, outcome: GradeOutcome) -> None:
        from .text import one_line
        with self.lock:
            self.done += 1
            self.skipped += outcome.skipped
            self.failed += not outcome.graded
            if not self.enabled:
                return
            elapsed = time.perf_counter() - self.started
            graded = self.done - self.skipped
            remaining = self.total - self.done
            eta = elapsed / graded * remaining if graded else 0.0
            filled = int(30 * self.done / max(1, self.total))
            result = f"{outcome.report.total:g}" if outcome.graded else "NOT GRADED"
            text = (f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} done"
                    f"{f', {self.skipped} already graded' if self.skipped else ''}"
                    f"{f', {self.failed} not graded' if self.failed else ''}, "
                    f"ETA {int(eta // 60)}m{int(eta % 60):02d}s  ({one_line(outcome.report.shown_name, limit=30)}: "
                    f"{result})")
            if self.tty:
                sys.stderr.write("\r" + text.ljust(100))
            else:
                sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def closing_lines(outcomes: list[GradeOutcome], out_dir: Path) -> list[str]:
    """What the run says last: counts, what the TA should look at, where the files are."""
    skipped = sum(o.skipped for o in outcomes)
    failed = [o for o in outcomes if not o.graded]
    no_model = [o for o in outcomes if o.graded and "no_model" in o.report.flags]
    lines = [f"This run: {len(outcomes)} submissions, {len(outcomes) - skipped - len(failed)} graded, "
             f"{skipped} already graded with the same files and graders (reported again), {len(failed)} not graded."]
    if no_model:
        lines.append(f"{len(no_model)} of {len(outcomes)} submissions have no model.keras (flag no_model): if that "
                     "is unexpected, check that the LMS download kept every file.")
    if failed:
        lines.append(f"NOT GRADED ({len(failed)}): the grader failed twice on these, so no grade was recorded; the "
                     "details are in the files named in the table. Run the same command again to grade them "
                     f"(exit code {EXIT_NOT_GRADED}).")
    graded_in = sorted({o.report.isolation for o in outcomes if o.graded and not o.skipped and o.report.isolation},
                       key=lambda name: -tiers.RANK.get(name, 0))
    for name in graded_in:
        count = sum(1 for o in outcomes if o.graded and not o.skipped and o.report.isolation == name)
        lines.append(f"Isolation of the {count} graded now: {tiers.DESCRIPTIONS.get(name, name)}.")
    flagged = _flagged_pairs(out_dir)
    if flagged:
        lines.append(f"{flagged} pairs of submissions share code beyond the stub or the same trained model (summary.csv "
                     f"similar_to): see {out_dir}/similarity.html. These are flags to look at, not penalties.")
    lines.append(f"Results: {out_dir}/{SUBMISSIONS_DIR}/<folder>/results.json and feedback.md; class summary: "
                 f"{out_dir}/summary.csv")
    return lines


def _flagged_pairs(out_dir: Path) -> int:
    try:
        with open(out_dir / "similarity.csv", encoding="utf-8", newline="") as handle:
            return sum(1 for row in csv.DictReader(handle) if row.get("flagged") == "yes")
    except OSError:
        return 0


def print_table(outcomes: list[GradeOutcome], out_dir: Path, gradebook_url: str | None = None) -> None:
    """The class as the gradebook has it (every submission ever graded into ``out_dir``), one table per assignment
    version, then the run's summary."""
    book = Gradebook(gradebook_url or default_url(out_dir))
    reports = book.reports()
    by_version: dict[str, list[SubmissionReport]] = {}
    for report in reports:
        by_version.setdefault(report.version, []).append(report)
    for version, group in sorted(by_version.items()):
        labels = assignments.load(version).labels if version in assignments.versions() else {}
        if len(by_version) > 1:
            print(f"\nassignment {version} ({len(group)} submissions)")
        print(class_table(group, functions=all_functions(group), labels=labels))
    print()
    print("\n".join(closing_lines(outcomes, out_dir)))
