"""Artifacts -> scores: run the hidden pytest graders over one submission's artifacts.

``score()`` runs pytest in this (trusted) process with a plugin that maps each test to its rubric
item and records points, status and the student-facing message. `grade.py` calls it through
`score_in_child()`: a fresh fork, per submission, of a server process that has already imported
pytest, numpy and the graders, so pytest's state never carries from one student to the next and the
imports are paid once. ``python -m autograder.scoring`` reruns this stage alone. No Keras here, no
student code: only files read through `Artifacts`.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import multiprocessing
import os
import resource
import sys
import threading
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from . import assignment as assignments
from .artifacts import Artifacts, ProbeFailed
from .assignment import Assignment
from .grading import CONTEXT_KEY, CREDIT_KEY, Credit, Mismatch
from .inputs import GradingInputs
from .reference_scores import Thresholds
from .rubric import Rubric, load_rubric
from .settings import REPO_DIR


@dataclass
class TestOutcome:
    rubric_id: str
    name: str
    function: str
    score: float
    max_score: float
    status: str                 # "passed" or "failed"
    output: str                 # what the student reads
    question: str = ""
    flags: list[str] = field(default_factory=list)


@dataclass
class GradingContext:
    artifacts: Artifacts
    inputs: GradingInputs
    rubric: Rubric
    thresholds: Thresholds
    intake: dict
    assignment: Assignment

    @property
    def items(self):
        """The rubric items this submission is graded on (a notebook's include its "your turn" answers)."""
        return self.rubric.items_for(notebook=bool(self.intake.get("notebook")))


class ScoringPlugin:
    """Collects one outcome per rubric item from the graders' reports, and gives the graders their fixtures."""

    def __init__(self, context: GradingContext):
        self.grading = context  # not "context": that name is the fixture below
        self.outcomes: dict[str, TestOutcome] = {}
        self.internal_errors: list[str] = []

    # -- the graders' fixtures ------------------------------------------------------------------
    @pytest.fixture
    def context(self):
        return self.grading

    @pytest.fixture
    def artifacts(self):
        return self.grading.artifacts

    @pytest.fixture
    def inputs(self):
        return self.grading.inputs

    @pytest.fixture
    def thresholds(self):
        return self.grading.thresholds

    @pytest.fixture
    def intake(self):
        return self.grading.intake

    @pytest.fixture
    def assignment(self):
        return self.grading.assignment

    @pytest.fixture
    def credit(self, request):
        value = Credit()
        request.node.stash[CREDIT_KEY] = value
        return value

    def pytest_configure(self, config):
        config.stash[CONTEXT_KEY] = self.grading
        config.addinivalue_line("markers", "rubric(id): the rubric item this grader scores")

    def pytest_collection_modifyitems(self, config, items):
        # A module submission is not graded on the notebook's answer cells: their tests are not run at all.
        active = {item.id for item in self.grading.items}
        kept, dropped = [], []
        for item in items:
            marker = item.get_closest_marker("rubric")
            (dropped if marker is not None and marker.args and marker.args[0] not in active else kept).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        # A Mismatch is the expected way for a check to fail, and its message is all anyone reads; pytest's
        # own traceback rendering (it re-parses the grader's source for every frame) cost ~0.1 s per failed
        # check. Everything else, our own bugs, keeps the full traceback for the TA.
        for item in items:
            item.repr_failure = _quiet_for_expected_failures(item.repr_failure)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self._record(item, call, report)

    def _record(self, item, call, report) -> None:
        marker = item.get_closest_marker("rubric")
        if marker is None:
            self.internal_errors.append(f"{item.nodeid} has no rubric marker")
            return
        rubric_item = self.grading.rubric.item(marker.args[0])
        question = (item.function.__doc__ or "").strip().splitlines()[0] if item.function.__doc__ else ""
        credit: Credit = item.stash.get(CREDIT_KEY, Credit())
        fraction, message, flags = 1.0, "", list(credit.flags)
        if report.skipped:  # nothing a submission does can skip a grader: ours to fix
            fraction, message = 0.0, "This check was not run."
            flags.append("grader_error")
            self.internal_errors.append(f"{item.nodeid} was skipped: {report.longreprtext[-500:]}")
        elif report.failed:
            error = call.excinfo.value if call.excinfo else None
            fraction = 0.0
            if isinstance(error, (Mismatch, ProbeFailed)):
                message = str(error)
                if getattr(error, "flag", None):
                    flags.append(error.flag)
            else:  # our bug: keep the traceback for the TA, tell the student nothing misleading
                message = "The autograder could not run this check (an internal error); your TA has been told."
                flags.append("grader_error")
                self.internal_errors.append(f"{item.nodeid}: {report.longreprtext[-3000:]}")
        elif credit.fraction is not None:
            fraction, message = credit.fraction, credit.message
        fraction = min(1.0, max(0.0, fraction))
        self.outcomes[rubric_item.id] = TestOutcome(
            rubric_id=rubric_item.id, name=rubric_item.name, function=rubric_item.function,
            score=round(rubric_item.points * fraction, 4), max_score=rubric_item.points,
            status="passed" if fraction >= 1.0 else "failed", output=message or credit.note, question=question,
            flags=sorted(set(flags)))


def _quiet_for_expected_failures(repr_failure):
    def render(excinfo, *args, **kwargs):
        if isinstance(excinfo.value, (Mismatch, ProbeFailed)):
            return str(excinfo.value)
        return repr_failure(excinfo, *args, **kwargs)
    return render


# Plugins the graders never use. unraisableexception alone cost ~0.1 s per submission: it runs two full
# garbage collections at the end of every session.
UNUSED_PYTEST_PLUGINS = ("cacheprovider", "randomly", "unraisableexception", "threadexception", "logging",
                         "junitxml", "pastebin", "doctest", "stepwise", "legacypath", "tmpdir", "monkeypatch",
                         "recwarn", "setuponly", "setupplan")


def score(context: GradingContext) -> tuple[list[TestOutcome], list[str]]:
    """Run every grader; return one outcome per rubric item (missing ones score 0) and internal errors."""
    plugin = ScoringPlugin(context)
    grading_dir = context.assignment.grading_dir
    args = [str(grading_dir), "-q", "--tb=short", "--assert=plain", "-c", os.devnull, "--rootdir", str(grading_dir),
            "-W", "ignore::DeprecationWarning"]
    for name in UNUSED_PYTEST_PLUGINS:
        args += ["-p", f"no:{name}"]
    with redirect_stdout(io.StringIO()):
        pytest.main(args, plugins=[plugin])
    outcomes = []
    for item in context.items:
        outcome = plugin.outcomes.get(item.id)
        if outcome is None:
            plugin.internal_errors.append(f"no grader reported rubric item {item.id}")
            outcome = TestOutcome(item.id, item.name, item.function, 0.0, item.points, "failed",
                                  "The autograder could not run this check; your TA has been told.",
                                  flags=["grader_error"])
        outcomes.append(outcome)
    return outcomes, plugin.internal_errors


def main(argv=None) -> int:
    """``python -m autograder.scoring --version V --artifacts A --inputs I --intake F --thresholds T --out S``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", required=True, help="the assignment version the submission is graded against")
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--intake", type=Path, required=True)
    parser.add_argument("--thresholds", type=Path, required=True)
    parser.add_argument("--rubric", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    version = assignments.load(args.version)
    rubric = load_rubric(version, args.rubric)
    intake = json.loads(args.intake.read_text())
    context = GradingContext(
        artifacts=Artifacts(args.artifacts, module=intake.get("module") or version.module,
                            notebook=intake.get("notebook")),
        inputs=GradingInputs(args.inputs), rubric=rubric,
        thresholds=Thresholds(**json.loads(args.thresholds.read_text())), intake=intake, assignment=version)
    outcomes, internal_errors = score(context)
    payload = {"tests": [asdict(o) for o in outcomes], "internal_errors": internal_errors}
    temporary = args.out.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=1))
    os.replace(temporary, args.out)
    return 0


SCORING_TIMEOUT_S = 600
SCORING_MEMORY_BYTES = 6 * 2**30
_FORKSERVER = None


def score_in_child(argv: list[str], *, log: Path, timeout_s: float = SCORING_TIMEOUT_S) -> int | None:
    """Run ``main(argv)`` in a fresh fork of the scoring server; its exit code, or None after a timeout.

    The child has an address-space limit, so a pathological model is a MemoryError there, never the
    host's OOM killer; its output goes to ``log``.
    """
    process = _server().Process(target=_child, args=(argv, str(log)))
    process.start()
    process.join(timeout_s)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    return process.exitcode


def warm_up() -> threading.Thread:
    """Start the scoring server (imports pytest, numpy and the graders) in the background, now."""
    thread = threading.Thread(target=lambda: score_in_child(["--help"], log=Path(os.devnull)), daemon=True)
    thread.start()
    return thread


def _server():
    global _FORKSERVER
    if _FORKSERVER is None:
        # The server starts with this environment. Scoring is mostly Python between small matrix products;
        # OpenBLAS's extra threads would only spin-wait there, taking CPU from the sandboxes beside it.
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        context = multiprocessing.get_context("forkserver")
        # Every version's graders, imported once: the package names differ per version, so a mixed class
        # grades v1 and v2 submissions from one server.
        graders = [f"{assignments.load(version).grading_package}.{path.stem}" for version in assignments.versions()
                   for path in sorted(assignments.load(version).grading_dir.glob("*.py"))
                   if path.stem != "__init__"]
        if str(REPO_DIR) not in sys.path:
            sys.path.insert(0, str(REPO_DIR))  # solutions.<version>.grading imports from the repository root
        context.set_forkserver_preload(["autograder.scoring", *graders])
        _FORKSERVER = context
    return _FORKSERVER


def _child(argv: list[str], log: str) -> None:
    # What the server preloaded lives as long as this process: keep it out of the garbage collector's
    # passes (~0.1 s of each scoring run went to traversing pytest's and numpy's objects).
    gc.freeze()
    resource.setrlimit(resource.RLIMIT_AS, (SCORING_MEMORY_BYTES, SCORING_MEMORY_BYTES))
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # our graders' fixtures only, no third-party plugins
    sys.exit(main(argv))


if __name__ == "__main__":
    sys.exit(main())
