"""Reports: Gradescope's format, inert student text in every format, one cause explained once, the class table."""

import csv
import json
import re

import mistune  # installed with jupyter (nbconvert renders Markdown with it)
import pytest

from autograder.report import (build_report, class_table, feedback_html, feedback_markdown, not_graded_report,
                               pass_rates_csv, results_json, summary_csv)
from autograder.text import inert, markdown, plain

FUNCTIONS = ("preprocess", "load_model")
LABELS = {"preprocess": "prep", "load_model": "load"}


def report(name="alice", message="<script>alert(1)</script> raised ValueError", **extra):
    tests = [
        {"rubric_id": "preprocess.scaled", "name": "preprocess: pixel values are scaled to [0, 1]",
         "function": "preprocess", "score": 0.0, "max_score": 3.0, "status": "failed", "output": message,
         "question": "Are pixel values divided by 255?", "flags": ["timeout"]},
        {"rubric_id": "load_model.predictions", "name": "load_model: loads a .keras file",
         "function": "load_model", "score": 3.0, "max_score": 3.0, "status": "passed", "output": "", "flags": []},
    ]
    return build_report(name, tests, flags=["renamed_module"], problems=["Your module is named 'x.py'"],
                        execution_time=12.3, digest="abc", functions=FUNCTIONS, **extra)


def test_results_json_follows_gradescope():
    data = results_json(report())
    assert data["score"] == 3.0 and data["execution_time"] == 12
    assert set(data["tests"][0]) >= {"name", "score", "max_score", "status", "output", "visibility"}
    assert data["tests"][0]["status"] == "failed" and data["tests"][0]["tags"] == ["preprocess"]
    assert data["extra_data"]["flags"] == ["renamed_module", "timeout"]


def test_student_text_is_escaped():
    html = feedback_html(report())
    assert "<script>" not in html and "&lt;script&gt;" in html
    markdown_text = feedback_markdown(report())
    assert "<script>" not in markdown_text
    assert "Score: 3 / 6" in markdown_text and "## What to fix" in markdown_text and "Are pixel values divided" in markdown_text


def test_code_spans_show_angle_brackets_literally():
    """`<module>` inside a code span used to show as `&lt;module>`."""
    text = feedback_markdown(report(message=f"raised NameError (line 3, in {inert('<module>')})"))
    assert "`<module>`" in text and "&lt;" not in text


HOSTILE = [
    "![tracking](https://attacker.example/pixel.png?who=ta)",
    "[Request a regrade](https://attacker.example/phish)",
    "# Score: 100 / 100\n\n**Score: 100 / 100**",
    "<img src=x onerror=alert(1)><a href='https://attacker.example'>x</a>",
    "see https://attacker.example/and www.attacker.example",
    "\x1b[2J\x1b[HScore 100 / 100",
    "\x1b]8;;https://attacker.example\x1b\\click\x1b]8;;\x1b\\",
    "\u202eevil\u202c and \x9b31m C1 CSI",
    "`` closing the span early `` ![x](https://attacker.example/x.png) ``",
]


def _rendered_outside_code(markdown_text: str) -> str:
    rendered = mistune.html(markdown_text)
    return re.sub(r"<(code|pre)>.*?</\1>", "", rendered, flags=re.S)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_student_text_renders_inert_in_every_format(hostile):
    """Whatever reaches a message (a grader that forgot inert(), a class name, a History value, a progress
    line, an exception message, a file name), nothing renders live and no control byte survives."""
    unwrapped = report(name=hostile, message=f"build_model returned a {hostile} (and {inert(hostile)})",
                       display_name=hostile)
    unwrapped.problems.append(f"Your file {hostile} was renamed")
    texts = {"feedback.md": feedback_markdown(unwrapped), "feedback.html": feedback_html(unwrapped),
             "results.json": json.dumps(results_json(unwrapped), ensure_ascii=False),
             "summary.csv": summary_csv([unwrapped], FUNCTIONS),
             "table": class_table([unwrapped], functions=FUNCTIONS, labels=LABELS)}
    for where, text in texts.items():
        text = text.replace("\r\n", "\n")  # the csv module's own line ends
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", text), (where, text)
    live = _rendered_outside_code(texts["feedback.md"])
    for marker in ("attacker.example", "<img", "<a ", "<h1>Score", "<h2>Score", "<strong>Score: 100"):
        assert marker not in live, (marker, live)
    assert not re.search(r"<[a-z][^>]*onerror", live), live
    html = texts["feedback.html"]
    assert "<img" not in html and "<a " not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")


def test_markdown_escaping_keeps_grader_prose_readable():
    assert markdown("Use `np.argmax(p, axis=1)` here.") == "Use `np.argmax(p, axis=1)` here."
    assert plain("a\tb\x07c") == "a bc"


def test_one_cause_is_explained_once_with_the_checks_it_cost():
    cause = "hello_mnist.py could not be imported: SyntaxError"
    tests = [{"rubric_id": f"f.{i}", "name": f"preprocess: check {i}", "function": "preprocess", "score": 0.0,
              "max_score": 1.0, "status": "failed", "output": cause, "flags": []} for i in range(5)]
    tests.append({"rubric_id": "g", "name": "load_model: other", "function": "load_model", "score": 0.0,
                  "max_score": 1.0, "status": "failed", "output": "a different reason", "flags": []})
    result = build_report("bob", tests, flags=[], problems=[], execution_time=1, digest="d", functions=FUNCTIONS)
    text = feedback_markdown(result)
    assert text.count("could not be imported") == 1 and "5 checks, one cause (5 points)" in text
    assert all(f"check {i}" in text for i in range(5)) and "a different reason" in text
    assert feedback_html(result).count("could not be imported") == 1


def test_a_not_graded_submission_blames_nobody_and_has_no_score():
    failed = not_graded_report("carol", max_total=100, failure="the sandbox died", details=".grader/errors/carol.txt",
                               digest="d", key="carol", display_name="Carol", source="/c", functions=FUNCTIONS)
    text = feedback_markdown(failed)
    assert "not your fault" in text and "Score" not in text and "limit" not in text
    data = results_json(failed)
    assert data["extra_data"]["not_graded"] is True and data["tests"] == []
    row = next(csv.DictReader(summary_csv([failed], FUNCTIONS).splitlines()))
    assert row["status"] == "not_graded" and row["total"] == "" and row["preprocess"] == ""
    table = class_table([failed, report("alice")], functions=FUNCTIONS, labels=LABELS)
    assert "NOT GRADED" in table and ".grader/errors/carol.txt" in table


def test_summary_pass_rates_and_table_with_column_and_flag_legends():
    reports = [report("alice"), report("bob")]
    rows = list(csv.DictReader(summary_csv(reports, FUNCTIONS).splitlines()))
    assert [r["submission"] for r in rows] == ["alice", "bob"] and rows[0]["preprocess"] == "0"
    rates = list(csv.DictReader(pass_rates_csv(reports).splitlines()))
    assert rates[0]["passed"] == "0" and rates[1]["pass_rate"] == "1.000"
    table = class_table(reports, functions=FUNCTIONS, labels=LABELS)
    assert "alice" in table and "(max)" in table and "timeout: a function hit its wall-clock limit" in table
    assert "prep = preprocess" in table and "load = load_model" in table


def test_a_notebooks_error_is_placed_in_its_cell_and_line():
    from autograder.artifacts import SourceMap, explain_error
    error = {"function": "predict_digits", "kind": "ValueError", "message": "boom",
             "frames": [{"line": 41, "function": "predict_digits", "code": "raise ValueError('boom')"}]}
    notebook = {"file": "Copy of hello_mnist.ipynb", "line_to_cell": {"41": [12, 3]}}
    message, _ = explain_error(error, "hello_mnist.py", source=SourceMap.of("hello_mnist.py", notebook))
    assert "(`Copy of hello_mnist.ipynb` cell 12, line 3, in predict_digits" in message
    elsewhere = {**error, "frames": [{"line": 7, "function": "<module>", "code": "x"}], "function": "import"}
    message, flag = explain_error(elsewhere, "hello_mnist.py", source=SourceMap.of("hello_mnist.py", notebook))
    assert "hello_mnist.py line 7" in message and "run all its cells from the top" in message and flag == "import_error"
    message, _ = explain_error(error, "hello_mnist.py")  # a module submission: the module's own line
    assert "(hello_mnist.py line 41, in predict_digits" in message
