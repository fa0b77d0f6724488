"""Reports: Gradescope's format, escaping of student-controlled text, the class table and CSVs."""

import csv

from autograder.report import (build_report, class_table, feedback_html, feedback_markdown, pass_rates_csv,
                               results_json, summary_csv)


def report(name="alice", message="<script>alert(1)</script> raised ValueError"):
    tests = [
        {"rubric_id": "preprocess.scaled", "name": "preprocess: pixel values are scaled to [0, 1]",
         "function": "preprocess", "score": 0.0, "max_score": 3.0, "status": "failed", "output": message,
         "question": "Are pixel values divided by 255?", "flags": ["timeout"]},
        {"rubric_id": "load_model.predictions", "name": "load_model: loads a .keras file",
         "function": "load_model", "score": 3.0, "max_score": 3.0, "status": "passed", "output": "", "flags": []},
    ]
    return build_report(name, tests, flags=["renamed_module"], problems=["Your module is named 'x.py'"],
                        execution_time=12.3, digest="abc")


def test_results_json_follows_gradescope():
    data = results_json(report())
    assert data["score"] == 3.0 and data["execution_time"] == 12
    assert set(data["tests"][0]) >= {"name", "score", "max_score", "status", "output", "visibility"}
    assert data["tests"][0]["status"] == "failed" and data["tests"][0]["tags"] == ["preprocess"]
    assert data["extra_data"]["flags"] == ["renamed_module", "timeout"]


def test_student_text_is_escaped():
    html = feedback_html(report())
    assert "<script>" not in html and "&lt;script&gt;" in html
    markdown = feedback_markdown(report())
    assert "<script>" not in markdown
    assert "Score: 3 / 6" in markdown and "## What to fix" in markdown and "Are pixel values divided" in markdown


def test_summary_pass_rates_and_table_with_flag_legend():
    reports = [report("alice"), report("bob")]
    rows = list(csv.DictReader(summary_csv(reports).splitlines()))
    assert [r["submission"] for r in rows] == ["alice", "bob"] and rows[0]["preprocess"] == "0"
    rates = list(csv.DictReader(pass_rates_csv(reports).splitlines()))
    assert rates[0]["passed"] == "0" and rates[1]["pass_rate"] == "1.000"
    table = class_table(reports)
    assert "alice" in table and "(max)" in table and "timeout: a function hit its wall-clock limit" in table
