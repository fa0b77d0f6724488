"""A class on a Dask cluster: ``grade ... --cluster tcp://scheduler:8786``.

Data flows one way, and the client is the only writer:

* **the client** (the TA's command) discovers and stages every submission as ``grade()`` does, answers the
  ones already graded with the same files and graders from its gradebook, and sends each of the others to
  the cluster as plain bytes: the module (or notebook) as it was handed in, and the model file;
* **a Dask worker** writes them into a private temporary folder and grades them with the ordinary
  ``grade()``: its own sandbox pool, uids, cgroups and temporary gradebook, on that machine. It returns
  plain data: each submission's report (JSON) and, for one the grader failed on, the failure's text.
  Student code and artifacts stay on the worker and are deleted with its temporary folder;
* **the client** records each returned report in its gradebook (SQLite, or any SQLAlchemy URL), under the
  submission's own identity, and writes the feedback files and the class files, as a local run does.

A worker lost mid-task loses nothing: the scheduler runs the task again on another worker (Dask's own
``allowed-failures``) and nothing of it was recorded. A task that fails for another reason leaves its
submissions not graded (exit 3), so the next plain run grades them again.

The same code runs on a laptop ``LocalCluster``, on Slurm through ``dask-jobqueue`` or on Kubernetes through
``dask-kubernetes``: the client only needs the scheduler's address, each worker this package, its Python
environment, bubblewrap and the versions' datasets (the ``*_DATA_DIR`` variables).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import asdict
from pathlib import Path

from .grade import (GradeOutcome, GraderError, OutputFolderLock, RunContext, Timing, _already_graded, _not_graded,
                    open_class, write_class_files)
from .gradebook import Gradebook, default_url
from .report import SubmissionReport, results_json, write_atomic, write_submission_files
from .settings import Settings
from .submissions import stage

TASKS_PER_WORKER = 2  # tasks in flight per worker: one grading while the next one's files travel
MAX_CHUNK = 25        # submissions per task at most: bounds what a task carries (each task starts its sandboxes)


def grade_on_cluster(submissions: list[Path], *, out_dir: Path, settings: Settings, address: str,
                     gradebook_url: str | None = None, regrade: bool = False, progress: bool = True,
                     version: str | None = None, lms: str = "auto", command: str = "grade") -> list[GradeOutcome]:
    """``grade()`` with the sandboxes on a Dask cluster's workers (see the module docstring).

    ``settings.jobs`` is each worker's number of parallel submissions (0: its cores).

    Raises:
        GraderError: the scheduler cannot be reached, no worker is there, or as ``grade()``.
    """
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise GraderError("--cluster needs Dask's distributed package: pip install 'dask[distributed]'.") from None
    expected, found, versions, private = open_class(submissions, out_dir=out_dir, version=version, lms=lms)
    out_dir = Path(out_dir)
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as error:
        raise GraderError(f"Cannot reach the Dask scheduler at {address}: {error}") from None
    with client, OutputFolderLock(private, command):
        workers = len(client.scheduler_info().get("workers", {}))
        if workers == 0:
            raise GraderError(f"The Dask scheduler at {address} has no workers.")
        book = Gradebook(gradebook_url or default_url(out_dir))
        run_id = book.start_run(command=command, fingerprint="cluster:" + ",".join(
            f"{name}:{run.stamp}" for name, run in sorted(versions.items())), settings=asdict(settings))
        context = RunContext(out_dir=out_dir, private=private, versions=versions, expected=expected,
                             settings=settings, book=book, run_id=run_id, regrade=regrade)
        status = "interrupted"
        try:
            outcomes = _grade_all(found, context, client, as_completed, workers=workers, progress=progress)
            write_class_files(out_dir, book)
            status = "finished" if all(o.graded for o in outcomes) else "incomplete"
            return outcomes
        finally:
            book.finish_run(run_id, status)


def _grade_all(found, context: RunContext, client, as_completed, *, workers: int, progress: bool) -> list[GradeOutcome]:
    outcomes: dict[str, GradeOutcome] = {}
    staged_by_key, shipped = {}, {}
    spool = context.private / "cluster"  # each submission's zip waits here, not in memory, until its task goes
    spool.mkdir(exist_ok=True)
    for submission in found:
        directory = context.directory(submission)
        staged = stage(submission, directory / "submission", expected=context.expected)
        run = context.versions[staged.version]
        recorded = None if context.regrade else context.book.find_grade(submission.key, staged.digest, run.stamp)
        if recorded is not None:
            outcomes[submission.key] = _already_graded(submission, context, recorded, Timing())
            continue
        write_atomic(directory / "intake.json", json.dumps(staged.intake(), indent=1, ensure_ascii=False))
        zipped = spool / f"{submission.folder}.zip"
        _write_zip(staged, zipped)
        shipped.setdefault(staged.version, []).append({"folder": submission.folder, "key": submission.key,
                                                       "zip": zipped})
        staged.handed_in = None
        staged_by_key[submission.key] = (submission, staged)
    chunks = []
    for version_name, items in sorted(shipped.items()):
        size = max(1, min(MAX_CHUNK, math.ceil(len(items) / (workers * TASKS_PER_WORKER))))
        chunks += [(version_name, items[start:start + size]) for start in range(0, len(items), size)]
    values = {field.name: getattr(context.settings, field.name) for field in dataclasses.fields(context.settings)}
    futures = {}

    def submit(version_name, items):
        with warnings.catch_warnings():
            # The files travel inside the task, not scattered to one worker beforehand: scattered data dies with
            # its worker, and the task that needs it is then cancelled instead of run again elsewhere. Dask warns
            # about large tasks; a few megabytes per submission is what grading them costs anyway.
            warnings.filterwarnings("ignore", message="Large object of size")
            payload = [{"folder": item["folder"], "zip": item["zip"].read_bytes()} for item in items]
            future = client.submit(grade_chunk, payload, version_name, values, pure=False)
        futures[future] = items
        return future

    pending = iter(chunks)  # at most TASKS_PER_WORKER tasks per worker in flight: memory stays bounded
    running = as_completed([submit(*chunk) for chunk in itertools.islice(pending, workers * TASKS_PER_WORKER)])
    done = 0
    for future in running:
        following = next(pending, None)
        if following is not None:
            running.add(submit(*following))
        items = futures.pop(future)
        try:
            returned = {entry["folder"]: entry for entry in future.result()}
        except Exception as error:  # the task failed (not a lost worker: Dask reruns those): not graded
            returned = {item["folder"]: {"failure": f"the cluster task failed: {type(error).__name__}: {error}"}
                        for item in items}
        for item in items:
            submission, staged = staged_by_key[item["key"]]
            entry = returned.get(item["folder"]) or {"failure": "the worker returned no result for it"}
            outcomes[submission.key] = _record(submission, staged, entry, context)
            item["zip"].unlink(missing_ok=True)
            done += 1
            if progress:
                print(f"[{done}/{len(staged_by_key)}] {submission.display_name}: "
                      f"{_shown(outcomes[submission.key])}", file=sys.stderr)
    return [outcomes[submission.key] for submission in found]


def _write_zip(staged, path: Path) -> None:
    """What the worker stages again, as one zip: the module or notebook as handed in and the staged model (an
    empty submission is a zip with a note only, so the worker finds no module and no model, as here)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        if staged.handed_in is not None:
            archive.writestr(Path(staged.handed_in[0]).name, staged.handed_in[1])
        model = staged.directory / staged.model
        if model.is_file():
            archive.write(model, staged.model)
        if not archive.namelist():
            archive.writestr("nothing-gradable-was-handed-in.txt", "")


def _shown(outcome: GradeOutcome) -> str:
    return f"{outcome.report.total:g}" if outcome.graded else "NOT GRADED"


def _record(submission, staged, entry: dict, context: RunContext) -> GradeOutcome:
    """The worker's report, under the submission's own identity, in the client's gradebook and files."""
    run = context.versions[staged.version]
    if entry.get("failure") or entry.get("report", {}).get("status") != "graded":
        failure = entry.get("failure") or entry.get("details") or "the grader failed on the worker"
        return _not_graded(submission, context, [f"on a cluster worker: {failure}"], seconds=0.0)
    report = SubmissionReport.from_dict(entry["report"])
    report = dataclasses.replace(report, name=submission.folder, key=submission.key,
                                 display_name=submission.display_name, source=str(submission.source),
                                 lms=dict(submission.lms or {}), digest=staged.digest,
                                 flags=sorted(set(report.flags) | set(submission.flags)))
    write_submission_files(context.directory(submission), report)
    context.book.record(context.run_id, report, fingerprint=run.stamp, results=results_json(report))
    timing = Timing(**{k: v for k, v in (entry.get("timing") or {}).items() if k in Timing.__dataclass_fields__})
    return GradeOutcome(report, timing)


def grade_chunk(items: list[dict], version: str, settings_values: dict) -> list[dict]:
    """Run on a Dask worker: grade ``items`` (``{"folder", "zip": bytes}``) against ``version`` in a temporary
    folder of this machine; return each one's report (plain JSON) or failure text.

    The grading runs in a fresh ``python -m autograder.cluster`` process: a Dask worker's process is a daemon
    (children of its own are refused) with threads and signal handlers of its own, and ``grade()`` wants a
    process of its own as on a TA's machine."""
    with tempfile.TemporaryDirectory(prefix="autograder-cluster-") as temporary:
        root = Path(temporary)
        (root / "in").mkdir()
        paths = []
        for item in items:
            path = root / "in" / f"{Path(item['folder']).name}.zip"
            path.write_bytes(item["zip"])
            paths.append(str(path))
        job = root / "job.json"
        job.write_text(json.dumps({"paths": paths, "version": version, "settings": settings_values,
                                   "out": str(root / "out"), "result": str(root / "result.json")}, default=str))
        done = subprocess.run([sys.executable, "-m", "autograder.cluster", str(job)], capture_output=True, text=True,
                              cwd=str(Path(__file__).resolve().parent.parent))
        result = root / "result.json"
        if done.returncode != 0 or not result.is_file():
            raise RuntimeError(f"grading on {os.uname().nodename} failed (exit {done.returncode}): "
                               f"{done.stderr[-3000:]}")
        return json.loads(result.read_text())


def _grade_job(job_path: Path) -> int:
    """``python -m autograder.cluster JOB``: what ``grade_chunk`` runs, in a process of its own."""
    from .grade import grade
    job = json.loads(Path(job_path).read_text())
    values = dict(job["settings"])
    fields = {field.name: field for field in dataclasses.fields(Settings)}
    for name, value in list(values.items()):
        if name not in fields:
            del values[name]
        elif isinstance(value, str) and "Path" in str(fields[name].type):
            values[name] = Path(value)
    settings = Settings(**values)
    out = Path(job["out"])
    started = time.perf_counter()
    outcomes = grade([Path(p) for p in job["paths"]], out_dir=out, settings=settings, progress=False,
                     version=job["version"], lms="none", regrade=True, command=f"cluster worker on {os.uname().nodename}")
    results = []
    for outcome in outcomes:
        entry = {"folder": outcome.report.name, "report": outcome.report.as_dict(), "timing": asdict(outcome.timing),
                 "worker_seconds": round(time.perf_counter() - started, 2)}
        if not outcome.graded:
            details = out / ".grader" / "errors" / f"{outcome.report.name}.txt"
            entry["details"] = details.read_text(errors="replace")[-6000:] if details.is_file() else ""
        results.append(entry)
    Path(job["result"]).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(_grade_job(Path(sys.argv[1])))
