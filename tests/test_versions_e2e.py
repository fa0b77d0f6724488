"""Two assignment versions in one class: v1 (MNIST, hello_mnist.py) and v2 (Fashion-MNIST, hello_fashion.py,
predict_classes and the new confusion_matrix), graded in one run through the real sandbox. Each submission is
graded against its own version (found from its module), with that version's inputs, rubric and thresholds;
the class files and the gradebook hold both. A v1 module graded as v2 by the TA's choice is flagged."""

from __future__ import annotations

import csv
import shutil

import pytest

import factory
from conftest import grade_paths

pytestmark = pytest.mark.slow

V2 = factory.assignments.load("v2")
V2_CLASS = factory.catalogue("v2")
V1_MISTAKE = "missing_softmax"


def _marks(assignment):
    from autograder.rubric import load_rubric
    return load_rubric(assignment).points_by_function()


def _solution(version: str, folder):
    assignment = factory.assignments.load(version)
    folder.mkdir(parents=True)
    (folder / assignment.module).write_text(factory.student_source(version))
    shutil.copy(assignment.example_model, folder / assignment.model)
    return folder


@pytest.fixture(scope="module")
def mixed(materialized, settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed-in")
    paths = [_solution("v1", root / "v1_solution"), _solution("v2", root / "v2_solution"),
             materialized[V1_MISTAKE], *(materialized[s.name] for s in V2_CLASS)]
    out = tmp_path_factory.mktemp("mixed")
    return out, grade_paths(paths, out, settings)


def test_each_submission_is_graded_against_its_own_version(mixed):
    _, outcomes = mixed
    assert outcomes["v1_solution"].report.version == "v1" and outcomes["v1_solution"].report.total == 100
    assert outcomes["v2_solution"].report.version == "v2" and outcomes["v2_solution"].report.total == 100
    assert set(outcomes["v2_solution"].report.by_function()) == set(V2.graded_functions())
    assert outcomes[V1_MISTAKE].report.version == "v1" and outcomes[V1_MISTAKE].report.total == 92


@pytest.mark.parametrize("submission", V2_CLASS, ids=[s.name for s in V2_CLASS])
def test_v2_mistakes_cost_their_own_points(mixed, submission):
    _, outcomes = mixed
    report = outcomes[submission.name].report
    assert report.graded and report.version == "v2", report.failure
    scores = report.by_function()
    expected = {name: submission.scores.get(name, full) for name, full in _marks(V2).items()}
    wrong = {name: (scores[name][0], expected[name]) for name in expected if abs(scores[name][0] - expected[name]) > 0.01}
    details = {t["name"]: t["output"] for t in report.tests if t["status"] != "passed"}
    assert not wrong, f"{submission.description}: (actual, expected) {wrong}; failed checks: {details}"


def test_the_class_files_and_the_gradebook_hold_both_versions(mixed):
    from autograder.gradebook import open_gradebook
    out, outcomes = mixed
    with open(out / "summary.csv") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    assert rows["v1_solution"]["version"] == "v1" and rows["v2_solution"]["version"] == "v2"
    # a function only the other version has is empty, not 0
    assert rows["v1_solution"]["confusion_matrix"] == "" and rows["v2_solution"]["predict_digits"] == ""
    assert float(rows["v2_solution"]["confusion_matrix"]) == 5
    exported = {row["key"]: row for row in csv.DictReader(open_gradebook(None, out).export_csv().splitlines())}
    assert exported["v2_solution"]["version"] == "v2" and float(exported["v2_solution"]["total"]) == 100


def test_the_v2_feedback_speaks_of_clothes_not_digits(mixed):
    out, _ = mixed
    feedback = (out / "submissions" / "v2_confusion_transposed" / "feedback.md").read_text()
    assert "transposed" in feedback and "hello_mnist" not in feedback


def test_a_v1_module_graded_as_v2_is_flagged(settings, tmp_path):
    """The TA grades a folder as v2 (--version v2), and one student handed in last term's module: the flag and
    the feedback say so, and nothing of it is silently graded as v1."""
    folder = _solution("v1", tmp_path / "in" / "last_term")
    outcome = grade_paths([folder], tmp_path / "out", settings, version="v2")["last_term"]
    report = outcome.report
    assert report.version == "v2" and "version_mismatch" in report.flags, report.flags
    feedback = (tmp_path / "out" / "submissions" / "last_term" / "feedback.md").read_text()
    assert "from assignment `v1`, but it was graded as v2" in feedback
