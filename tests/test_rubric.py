"""Every version's rubric and graders agree: one grader per item, points summing to the total, names the
contract allows, the functions the manifest's module defines."""

import ast
from pathlib import Path

import pytest

from autograder import assignment as assignments
from autograder.rubric import RubricError, load_rubric


@pytest.fixture(params=assignments.versions())
def version(request):
    return assignments.load(request.param)


def grader_marks(version):
    marks = {}
    for path in sorted(version.grading_dir.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for decorator in node.decorator_list:
                    if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "rubric":
                        marks.setdefault(decorator.args[0].value, []).append(f"{path.name}::{node.name}")
                assert ast.get_docstring(node), f"{path.name}::{node.name} needs a docstring (the student's question)"
    return marks


def test_every_rubric_item_has_exactly_one_grader(version):
    rubric = load_rubric(version)
    marks = grader_marks(version)
    ids = {item.id for item in rubric.items}
    assert set(marks) == ids, f"graders without an item: {set(marks) - ids}; items without a grader: {ids - set(marks)}"
    assert all(len(tests) == 1 for tests in marks.values()), marks


def test_points_total_one_hundred_and_names_start_with_a_function(version):
    rubric = load_rubric(version)
    module_items = rubric.items_for(notebook=False)
    assert rubric.total == 100 and sum(item.points for item in module_items) == 100
    # the notebook's "your turn" answers come on top, in notebook submissions only
    answers = [item for item in rubric.items if item.function in rubric.answers]
    assert set(rubric.items_for(notebook=True)) == set(module_items) | set(answers)
    assert {item.function for item in answers} == {function.name for function in version.answers}
    # Every summary column is graded by at least one item with points, and no item grades anything else.
    assert {item.function for item in rubric.items if item.points > 0} == set(version.function_names)
    for item in rubric.items:
        assert item.name.startswith(item.function + ": ")


def test_the_solution_defines_exactly_the_module_functions(version):
    tree = ast.parse(version.solution_module.read_text())
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]
    assert defined == list(version.module_functions), "rubric [[function]] order = the solution's order"


def test_an_inconsistent_rubric_is_refused(version, tmp_path):
    text = Path(load_rubric(version).path).read_text().replace("points = 3", "points = 4", 1)
    (tmp_path / "rubric.toml").write_text(text)
    with pytest.raises(RubricError, match="sum to 101"):
        load_rubric(version, tmp_path / "rubric.toml")
