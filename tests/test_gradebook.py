"""The gradebook: append-only history keyed by identity, the latest valid grade, voids, exports, resume support."""

import csv
import json
import sqlite3

import pytest

from autograder.gradebook import Gradebook, GradebookError, report_of
from autograder.report import build_report, not_graded_report, results_json

FUNCTIONS = ("predict_digits",)


def graded(key, score, *, digest=None):
    tests = [{"rubric_id": "predict_digits.values", "name": "predict_digits: labels", "function": "predict_digits",
              "score": score, "max_score": 3.0, "status": "passed" if score == 3 else "failed", "output": "",
              "flags": []}]
    return build_report(key, tests, flags=[], problems=[], execution_time=1.0, digest=digest or f"digest-{key}",
                        key=key, display_name=key.title(), source=f"/class/{key}", functions=FUNCTIONS)


def record(book, run, report, fingerprint="f1"):
    return book.record(run, report, fingerprint=fingerprint, results=results_json(report))


@pytest.fixture
def book(tmp_path):
    return Gradebook(f"sqlite:///{tmp_path / 'book.sqlite'}")


def test_regrades_append_and_export_the_latest(book):
    first = book.start_run(command="grade", fingerprint="f1", settings={})
    for name, score in (("alice", 1.0), ("bob", 3.0)):
        record(book, first, graded(name, score))
    book.finish_run(first)
    assert book.find_grade("alice", "digest-alice", "f1") is not None
    assert book.find_grade("alice", "digest-alice", "f2") is None, "another grader fingerprint"
    assert book.find_grade("alice", "other-digest", "f1") is None, "other files"
    second = book.start_run(command="grade --regrade", fingerprint="f1", settings={})
    record(book, second, graded("alice", 3.0))
    assert book.counts() == {"grading_runs": 2, "grades": 3, "test_results": 3}
    latest = {row["key"]: row for row in csv.DictReader(book.export_csv(functions=FUNCTIONS).splitlines())}
    assert latest["alice"]["total"] == "3" and latest["alice"]["predict_digits"] == "3" and latest["bob"]["total"] == "3"
    assert latest["alice"]["display_name"] == "Alice" and latest["alice"]["source"] == "/class/alice"
    history = list(csv.DictReader(book.export_csv(history=True, functions=FUNCTIONS).splitlines()))
    assert [row["total"] for row in history if row["key"] == "alice"] == ["1", "3"]


def test_a_not_graded_outcome_is_never_a_grade_and_never_counts_as_done(book):
    run = book.start_run(command="grade", fingerprint="f1", settings={})
    failure = not_graded_report("carol", max_total=3.0, failure="the sandbox died", details=".grader/errors/carol.txt",
                                digest="digest-carol", key="carol", display_name="Carol", source="/class/carol",
                                functions=FUNCTIONS)
    record(book, run, failure)
    assert book.find_grade("carol", "digest-carol", "f1") is None, "the next plain run must grade it again"
    row = next(csv.DictReader(book.export_csv(functions=FUNCTIONS).splitlines()))
    assert row["status"] == "not_graded" and row["total"] == "" and row["predict_digits"] == "", row
    assert book.latest()[0]["total"] is None


def test_void_a_submission_or_a_run_is_a_tombstone(book):
    run = book.start_run(command="grade ..", fingerprint="f1", settings={})
    for name in ("alice", "repository", "shared"):
        record(book, run, graded(name, 3.0))
    assert book.void(key="repository", reason="not a student") == 1
    assert [row["key"] for row in book.latest()] == ["alice", "shared"]
    assert book.find_grade("repository", "digest-repository", "f1") is None
    assert book.void(run_id=run, reason="graded the parent folder by mistake") == 3
    assert book.latest() == [] and book.export_csv(functions=FUNCTIONS).count("\n") == 1
    history = list(csv.DictReader(book.export_csv(history=True, functions=FUNCTIONS).splitlines()))
    assert len(history) == 3 and all(row["voided"] for row in history), "voids never delete anything"
    assert book.counts()["grades"] == 3
    with pytest.raises(GradebookError, match="--reason"):
        book.void(key="alice", reason="  ")
    with pytest.raises(GradebookError, match="No current grade"):
        book.void(key="nobody", reason="typo")
    with pytest.raises(GradebookError, match="no grading run 99"):
        book.void(run_id=99, reason="typo")


def test_the_latest_row_carries_the_whole_report(book):
    run = book.start_run(command="grade", fingerprint="f1", settings={})
    original = graded("Zoé", 1.0)
    record(book, run, original)
    again = report_of(book.latest()[0])
    assert again == original


def test_exports_defuse_formulas_and_control_characters(book):
    run = book.start_run(command="grade", fingerprint="f1", settings={})
    report = graded("=HYPERLINK(\"http://evil\")", 3.0)
    report.display_name = "\x1b[2Jmallory"
    record(book, run, report)
    text = book.export_csv(functions=FUNCTIONS)
    assert "\x1b" not in text
    row = next(csv.DictReader(text.splitlines()))
    assert row["key"].startswith("'=")


def test_a_gradebook_from_the_previous_version_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript("""
        CREATE TABLE grading_runs (id INTEGER PRIMARY KEY, started_at VARCHAR(32) NOT NULL, finished_at VARCHAR(32),
            status VARCHAR(16) NOT NULL, command TEXT NOT NULL, fingerprint VARCHAR(64) NOT NULL,
            host VARCHAR(255) NOT NULL, settings TEXT NOT NULL);
        CREATE TABLE grades (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES grading_runs(id),
            submission VARCHAR(255) NOT NULL, digest VARCHAR(64) NOT NULL, fingerprint VARCHAR(64) NOT NULL,
            total FLOAT, max_total FLOAT NOT NULL, flags TEXT NOT NULL, results TEXT NOT NULL,
            graded_at VARCHAR(32) NOT NULL);
        INSERT INTO grading_runs VALUES (1, 'then', 'then', 'finished', 'grade', 'f0', 'host', '{}');
    """)
    connection.execute("INSERT INTO grades VALUES (1, 1, 'alice', 'd', 'f0', 2.0, 3.0, '', ?, 'then')",
                       (json.dumps({"tests": [{"name": "predict_digits: x", "score": 2.0, "max_score": 3.0,
                                               "status": "failed", "tags": ["predict_digits"]}]}),))
    connection.commit()
    connection.close()
    book = Gradebook(f"sqlite:///{path}")
    (row,) = book.latest()
    assert row["key"] == "alice" and row["status"] == "graded" and report_of(row).total == 2.0
    run = book.start_run(command="grade", fingerprint="f1", settings={})
    record(book, run, graded("bob", 3.0))
    assert [r["key"] for r in book.latest()] == ["alice", "bob"]


def test_a_second_process_sees_committed_grades(tmp_path):
    url = f"sqlite:///{tmp_path / 'book.sqlite'}"
    writer = Gradebook(url)
    run = writer.start_run(command="grade", fingerprint="f", settings={})
    record(writer, run, graded("carol", 3.0), fingerprint="f")
    assert [row["key"] for row in Gradebook(url).latest()] == ["carol"]
