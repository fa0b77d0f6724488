"""Load and check a version's hidden rubric (solutions/<version>/grading/rubric.toml): the graded functions,
items, points, thresholds, the retrain budget and the syntax-error rule."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .assignment import Assignment
from .inputs import RetrainBudget

class RubricError(ValueError):
    """The rubric file is inconsistent: an instructor's mistake, reported before anything is graded."""


@dataclass(frozen=True)
class RubricItem:
    id: str
    name: str
    points: float

    @property
    def function(self) -> str:
        return self.name.split(":", 1)[0]


@dataclass(frozen=True)
class Rubric:
    items: tuple[RubricItem, ...]
    total: float
    thresholds: dict
    retrain: RetrainBudget
    path: Path
    functions: tuple[str, ...] = ()
    rescue_syntax_errors: bool = True
    answers: tuple[str, ...] = ()  # functions of kind "answer": graded in notebook submissions only, beyond total

    def item(self, rubric_id: str) -> RubricItem:
        for item in self.items:
            if item.id == rubric_id:
                return item
        raise KeyError(rubric_id)

    def items_for(self, *, notebook: bool) -> tuple[RubricItem, ...]:
        """The items a submission is graded on: a module's leave out the notebook's "your turn" answers."""
        return self.items if notebook else tuple(i for i in self.items if i.function not in self.answers)

    def points_by_function(self, *, notebook: bool = False) -> dict[str, float]:
        """Points per graded function of a module submission (with ``notebook``, the answers' too)."""
        totals = {name: 0.0 for name in self.functions if notebook or name not in self.answers}
        for item in self.items_for(notebook=notebook):
            totals[item.function] += item.points
        return totals


def load_rubric(assignment: Assignment, path: Path | None = None) -> Rubric:
    """Read ``assignment``'s rubric (or the one at ``path``) and check it: unique ids, names that start with a
    graded function of the assignment, points summing to total.

    Raises:
        RubricError: with the line to fix.
    """
    path = Path(path or assignment.rubric_path)
    functions = assignment.function_names
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RubricError(f"Cannot read the rubric {path}: {error}") from None
    items, seen = [], set()
    for raw in data.get("item", []):
        rubric_id, name, points = raw.get("id"), raw.get("name"), raw.get("points")
        if not isinstance(rubric_id, str) or not isinstance(name, str) or not isinstance(points, (int, float)):
            raise RubricError(f"{path}: every [[item]] needs id (text), name (text) and points (number); got {raw}")
        if rubric_id in seen:
            raise RubricError(f"{path}: the id {rubric_id!r} appears twice")
        seen.add(rubric_id)
        item = RubricItem(rubric_id, name, float(points))
        if item.function not in functions or not rubric_id.startswith(item.function + "."):
            raise RubricError(f"{path}: item {rubric_id!r}: its name must start with one of {functions} and a colon, "
                              f"and its id with the same function name and a dot")
        if points < 0:
            raise RubricError(f"{path}: item {rubric_id!r} has negative points")
        items.append(item)
    total = float(data.get("assignment", {}).get("total", 100))
    answers = tuple(function.name for function in assignment.answers)
    graded = [item for item in items if item.function not in answers]  # a module's items; answers come on top
    if abs(sum(item.points for item in graded) - total) > 1e-9:
        raise RubricError(f"{path}: the items' points (without the notebook's answers) sum to "
                          f"{sum(i.points for i in graded):g}, but total is {total:g}")
    retrain = RetrainBudget(**data.get("retrain", {}))
    policy = data.get("assignment", {}).get("syntax_errors", "per_function")
    if policy not in ("per_function", "whole_module"):
        raise RubricError(f"{path}: [assignment] syntax_errors must be \"per_function\" or \"whole_module\"; "
                          f"got {policy!r}")
    return Rubric(tuple(items), total, dict(data.get("thresholds", {})), retrain, path, functions=functions,
                  rescue_syntax_errors=policy == "per_function", answers=answers)
