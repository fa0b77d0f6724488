"""The gradebook: append-only history, the latest grade per student, CSV export, resume support."""

import csv

from autograder.gradebook import Gradebook
from autograder.report import build_report, results_json


def graded(name, score):
    tests = [{"rubric_id": "predict_digits.values", "name": "predict_digits: labels", "function": "predict_digits",
              "score": score, "max_score": 3.0, "status": "passed" if score == 3 else "failed", "output": "",
              "flags": []}]
    return build_report(name, tests, flags=[], problems=[], execution_time=1.0, digest=f"digest-{name}")


def test_regrades_append_and_export_the_latest(tmp_path):
    book = Gradebook(f"sqlite:///{tmp_path / 'book.sqlite'}")
    first = book.start_run(command="grade", fingerprint="f1", settings={})
    for name, score in (("alice", 1.0), ("bob", 3.0)):
        report = graded(name, score)
        book.record(first, report, fingerprint="f1", results=results_json(report))
    book.finish_run(first)
    assert book.is_graded("alice", "digest-alice", "f1") and not book.is_graded("alice", "digest-alice", "f2")
    second = book.start_run(command="grade --regrade", fingerprint="f1", settings={})
    report = graded("alice", 3.0)
    book.record(second, report, fingerprint="f1", results=results_json(report))
    assert book.counts() == {"grading_runs": 2, "grades": 3, "test_results": 3}
    latest = {row["submission"]: row for row in csv.DictReader(book.export_csv().splitlines())}
    assert latest["alice"]["total"] == "3" and latest["alice"]["predict_digits"] == "3" and latest["bob"]["total"] == "3"
    history = list(csv.DictReader(book.export_csv(history=True).splitlines()))
    assert [row["total"] for row in history if row["submission"] == "alice"] == ["1", "3"]


def test_a_second_process_sees_committed_grades(tmp_path):
    url = f"sqlite:///{tmp_path / 'book.sqlite'}"
    writer = Gradebook(url)
    run = writer.start_run(command="grade", fingerprint="f", settings={})
    report = graded("carol", 3.0)
    writer.record(run, report, fingerprint="f", results=results_json(report))
    assert [row["submission"] for row in Gradebook(url).latest()] == ["carol"]
