"""End to end: a class of real submission folders (realistic mistakes and broken inputs) graded through
the real sandbox, with every function's score, the flags, the files and the gradebook checked."""

from __future__ import annotations

import csv
import json

import pytest

import factory
from conftest import grade_paths

pytestmark = pytest.mark.slow

CLASS = factory.catalogue("mistakes", "broken")


@pytest.fixture(scope="module")
def graded(materialized, settings, tmp_path_factory):
    out = tmp_path_factory.mktemp("class")
    paths = [materialized[s.name] for s in CLASS]
    # v1's class: the TA says so (a broken submission names no version, and the default is the latest one)
    return out, grade_paths(paths, out, settings, version="v1")


def full_marks(*, notebook: bool = False):
    from autograder.rubric import load_rubric
    return load_rubric(factory.V1).points_by_function(notebook=notebook)


@pytest.mark.parametrize("submission", CLASS, ids=[s.name for s in CLASS])
def test_each_function_scores_as_expected(graded, submission):
    _, outcomes = graded
    report = outcomes[submission.name].report
    assert report.graded, f"not graded: {report.failure}"
    scores = report.by_function()
    marks = full_marks(notebook="notebook" in report.flags)  # a notebook is graded on its answer cells too
    assert set(report.functions) == set(marks)
    expected = {name: submission.scores.get(name, full) for name, full in marks.items()}
    actual = {name: scores[name][0] for name in marks}
    wrong = {name: (actual[name], expected[name]) for name in marks if abs(actual[name] - expected[name]) > 0.01}
    details = {t["name"]: t["output"] for t in report.tests if t["status"] != "passed"}
    assert not wrong, f"{submission.description}: (actual, expected) {wrong}; failed checks: {details}"
    for flag in submission.required_flags:
        assert any(f == flag or f.startswith(flag + ":") for f in report.flags), (flag, report.flags)
    assert "grader_error" not in report.flags, report.flags


@pytest.mark.parametrize("submission", CLASS, ids=[s.name for s in CLASS])
def test_feedback_and_results_are_written(graded, submission):
    out, outcomes = graded
    folder = out / "submissions" / submission.name
    results = json.loads((folder / "results.json").read_text())
    assert {"score", "execution_time", "output", "tests"} <= set(results)
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert test["name"].split(":")[0] in outcomes[submission.name].report.functions
        assert test["status"] in ("passed", "failed")
        if test["status"] == "failed":
            assert test["output"].strip(), f"a failed check without an explanation: {test['name']}"
    feedback = (folder / "feedback.md").read_text()
    max_total = outcomes[submission.name].report.max_total  # 100; a notebook's answer cells come on top
    assert max_total == (106 if "notebook" in outcomes[submission.name].report.flags else 100)
    assert f"Score: {results['score']:g} / {max_total:g}" in feedback
    html = (folder / "feedback.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html


def test_class_summary_and_gradebook(graded):
    from autograder.gradebook import open_gradebook
    out, outcomes = graded
    with open(out / "summary.csv") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {s.name for s in CLASS}
    for name, outcome in outcomes.items():
        assert outcome.report.graded and float(rows[name]["total"]) == pytest.approx(outcome.report.total)
    with open(out / "test_pass_rates.csv") as handle:
        rates = list(csv.DictReader(handle))
    from autograder.rubric import load_rubric
    assert [row["test"] for row in rates] == [item.name for item in load_rubric(factory.V1).items]
    # the notebook's "your turn" answers are graded in notebook submissions only
    rubric = load_rubric(factory.V1)
    notebooks = sum("notebook" in outcome.report.flags for outcome in outcomes.values())
    for row, item in zip(rates, rubric.items):
        assert int(row["graded"]) == (notebooks if item.function in rubric.answers else len(CLASS)), row
    book = open_gradebook(None, out)
    assert book.counts()["grades"] == len(CLASS)
    exported = list(csv.DictReader(book.export_csv().splitlines()))
    assert {row["key"] for row in exported} == {s.name for s in CLASS}


def test_feedback_never_shows_grader_internals(graded):
    out, _ = graded
    for submission in CLASS:
        text = (out / "submissions" / submission.name / "feedback.md").read_text()
        for secret in ("def test_", "grading/test_", "reference_scores", "assert ", "Traceback"):
            assert secret not in text, (submission.name, secret)


def test_timings_account_each_function(graded):
    """timings.json gives the TA (and the benchmark) each function's wall and CPU seconds in the sandbox."""
    out, _ = graded
    timings = json.loads((out / "timings.json").read_text())
    timed = timings["last_batch_dropped"]
    assert set(timed["probes_cpu"]) == set(timed["probes"])
    assert timed["probes_cpu"]["retrain"] > 0.1  # trains a model: real CPU time (os.times in its process)
    assert 0 <= timed["probes_cpu"]["inspect"] < timed["probes_cpu"]["retrain"]  # clock ticks: may round to 0


def test_the_checks_of_a_submission_share_one_pair_of_processes(graded):
    """All checks of a submission but the parallel ones (run in a helper sandbox beside it) share one
    recorder and one student process; the supervisor cleans up between them."""
    out, _ = graded
    artifacts = out / "submissions" / "last_batch_dropped" / "artifacts"
    process = {path.parent.name: json.loads(path.read_text())["process"] for path in artifacts.glob("*/status.json")}
    from autograder.plan import declarations
    parallel = {d.name for d in declarations(factory.V1) if d.parallel}
    shared = {name: number for name, number in process.items() if name not in parallel}
    assert len(shared) >= 10 and len(set(shared.values())) == 1, process
