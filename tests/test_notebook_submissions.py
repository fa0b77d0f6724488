"""Notebook submissions graded end to end: the notebook is read (never run) on the trusted side, the module it
defines goes through the same sandbox and graders as a submitted hello_mnist.py.

The notebooks are built with nbformat from the instructor's solution module and the released stub (their
functions pasted into exercise cells, as an nbgrader or Colab class has them), so they follow both."""

from __future__ import annotations

import copy
import json
import shutil
import time

import nbformat
import pytest

import factory
from conftest import grade_paths
from test_notebook_intake import code_cell, solution_notebook_cells, strip_metadata, to_bytes

pytestmark = pytest.mark.slow

ANSWERS = ("choose_best_optimizer", "count_updates_per_epoch", "test_error_rate")
YOUR_TURN = ("best_optimizer", "updates_per_epoch", "test_error_rate")
STUB_TEXT = next(iter(factory.release_module(factory.V1).values()))


def stub_notebook_cells() -> list:
    """The released stub's functions in exercise cells (``release.module_cells``, as the release check builds
    them), then the released notebook's answer cells, unfilled: what a student starts from in the notebook route."""
    from autograder.release import module_cells
    released = nbformat.read(factory.V1.release_dir / factory.V1.notebook, as_version=4)
    return [nbformat.v4.new_markdown_cell("*Generated (hello_mnist v1)*"), *module_cells(STUB_TEXT),
            *[cell for cell in released.cells if "nbgrader" in cell.metadata]]


def submission(root, name, cells, *, model=True, notebook_name="hello_mnist.ipynb", extra=None):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / notebook_name).write_bytes(to_bytes(cells) if extra is None else extra(to_bytes(cells)))
    if model:
        shutil.copy(factory.EXAMPLE_MODEL, folder / "model.keras")
    return folder


def with_outputs(data: bytes, megabytes: int = 50) -> bytes:
    notebook = json.loads(data)
    blob = "A" * (1024 * 1024)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {"image/png": blob}}]
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    code[0]["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {"image/png": blob}}
                          for _ in range(megabytes - len(code) + 1)]
    return json.dumps(notebook).encode()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, settings):
    root = tmp_path_factory.mktemp("notebooks")
    solution = solution_notebook_cells()
    missing = [c for c in solution if "def evaluate_model" not in c.source]
    broken = copy.deepcopy(solution)
    for cell in broken:
        if cell.source.startswith("def build_model"):
            cell.source = cell.source.replace("):", ") oops:", 1)
    hard_coded = [c for c in solution if "nbgrader" not in c.metadata or c.metadata["nbgrader"]["grade_id"] not in
                  ANSWERS] + [code_cell('best_optimizer = "adam"', "choose_best_optimizer"),
                              code_cell("updates_per_epoch = 600", "count_updates_per_epoch"),
                              code_cell("test_error_rate = 0.0231\nwrong_digits = 231", "test_error_rate")]
    off_by_one = [c for c in solution if "nbgrader" not in c.metadata or c.metadata["nbgrader"]["grade_id"] !=
                  "count_updates_per_epoch"] + [code_cell("updates_per_epoch = len(x_hand) // BATCH_SIZE\n"
                                                          "print(updates_per_epoch, updates)", "count_updates_per_epoch")]
    raising = copy.deepcopy(solution)
    for cell in raising:
        if cell.source.startswith("def predict_digits"):
            first, rest = cell.source.split("\n", 1)
            cell.source = f'{first}\n    raise ValueError("no predictions today")\n{rest}'
    paths = [submission(root, "solution_notebook", solution),
             submission(root, "raising_predict_cell", raising),
             submission(root, "hard_coded_answers", hard_coded),
             submission(root, "answer_off_by_one", off_by_one),
             submission(root, "stub_notebook", stub_notebook_cells(), model=False),
             submission(root, "missing_evaluate", missing),
             submission(root, "broken_build_cell", broken),
             submission(root, "stripped_metadata", strip_metadata(solution), notebook_name="Copy of hello_mnist.ipynb"),
             submission(root, "huge_outputs", solution, extra=with_outputs)]
    module = root / "module"
    module.mkdir()
    (module / "hello_mnist.py").write_text(factory.student_source())
    shutil.copy(factory.EXAMPLE_MODEL, module / "model.keras")
    started = time.perf_counter()
    outcomes = grade_paths([*paths, module], root / "out", settings, version="v1")
    return root / "out", outcomes, time.perf_counter() - started


def _functions_only(report) -> float:
    return sum(score for name, (score, _) in report.by_function().items() if name not in YOUR_TURN)


def test_the_solution_notebook_earns_what_the_solution_module_earns(graded):
    _, outcomes, _ = graded
    notebook, module = outcomes["solution_notebook"].report, outcomes["module"].report
    assert _functions_only(notebook) == module.total == module.max_total == 100
    assert "notebook" in notebook.flags
    # ...and its three "your turn" cells, run with the grader's inputs, on top: module submissions keep 100
    assert notebook.total == notebook.max_total == 106
    assert not set(YOUR_TURN) & set(module.functions)


def test_hard_coded_answers_fail_with_the_grader_s_numbers(graded):
    _, outcomes, _ = graded
    report = outcomes["hard_coded_answers"].report
    scores = report.by_function()
    assert _functions_only(report) == 100
    assert all(scores[name][0] == 0 for name in YOUR_TURN), scores
    messages = " ".join(t["output"] for t in report.tests if t["function"] in YOUR_TURN)
    assert "rather than writing down the name your own run printed" in messages or "lowest loss" in messages
    assert "not the numbers of your own run" in messages


def test_an_answer_that_drops_the_last_batch_is_told_so(graded):
    _, outcomes, _ = graded
    report = outcomes["answer_off_by_one"].report
    assert report.by_function()["updates_per_epoch"] == (0, 2)
    assert report.by_function()["best_optimizer"] == (2, 2)
    message = next(t["output"] for t in report.tests if t["function"] == "updates_per_epoch")
    assert "the smaller last batch" in message


def test_feedback_points_at_the_notebook_cell_and_line_of_an_error(graded):
    """The student wrote cells, not the module built from them: an error's place is their cell and line."""
    out, outcomes, _ = graded
    report = outcomes["raising_predict_cell"].report
    cells = nbformat.reads((out.parent / "raising_predict_cell" / "hello_mnist.ipynb").read_text(), as_version=4).cells
    number = next(i for i, cell in enumerate(cells, 1) if cell.source.startswith("def predict_digits"))
    message = next(t["output"] for t in report.tests if t["function"] == "predict_digits")
    assert f"`hello_mnist.ipynb` cell {number}, line 2, in predict_digits" in message, message  # (the name is the student's: quoted)
    assert "hello_mnist.py line" not in message


def test_the_released_stubs_as_a_notebook_earn_nothing(graded):
    _, outcomes, _ = graded
    report = outcomes["stub_notebook"].report
    assert report.total == 0 and report.max_total == 106
    message = next(t["output"] for t in report.tests if t["function"] == "best_optimizer")
    assert "NotImplementedError" in message


def test_a_missing_function_costs_that_function_only(graded):
    _, outcomes, _ = graded
    report = outcomes["missing_evaluate"].report
    scores = report.by_function()
    assert scores["evaluate_model"][0] == 0 and scores["build_model"][0] == scores["build_model"][1]
    assert any("evaluate_model" in problem for problem in report.problems)


def test_a_syntax_error_in_one_cell_costs_that_cell_only(graded):
    _, outcomes, _ = graded
    report = outcomes["broken_build_cell"].report
    scores = report.by_function()
    assert scores["build_model"][0] == 0
    assert scores["preprocess"][0] == scores["preprocess"][1] and scores["save_model"][0] == scores["save_model"][1]
    assert any("cell" in problem and "build_model" in problem for problem in report.problems)


def test_stripped_metadata_and_another_name_still_grade(graded):
    _, outcomes, _ = graded
    report = outcomes["stripped_metadata"].report
    # the answer cells are found by the variables they set when nbgrader's metadata is gone
    assert report.total == 106 and "notebook_metadata_stripped" in report.flags


def test_fifty_megabytes_of_outputs_are_dropped_and_the_functions_graded(graded):
    out, outcomes, _ = graded
    report = outcomes["huge_outputs"].report
    assert report.total == 106
    intake = json.loads((out / "submissions" / "huge_outputs" / "intake.json").read_text())
    assert intake["notebook"]["output_bytes"] > 50_000_000
    assert not (out / "submissions" / "huge_outputs" / "submission" / "hello_mnist.submitted.ipynb").exists()
    assert (out / "submissions" / "solution_notebook" / "submission" / "hello_mnist.submitted.ipynb").exists()


def test_a_notebook_is_not_run_on_the_trusted_side(graded):
    out, _, _ = graded
    staged = (out / "submissions" / "solution_notebook" / "submission" / "hello_mnist.py").read_text()
    assert staged.startswith("# Generated by autograder.notebook_intake")
    assert "raise NotImplementedError" not in staged
