"""What a version's hidden graders import: a student-facing failure, partial credit, tolerant comparisons.

Graders live in ``solutions/<version>/grading/test_*.py`` and are plain pytest tests; the scoring plugin
(``autograder/scoring.py``) gives them the fixtures ``artifacts`` (this submission's claims, capped and
pickle-free), ``inputs`` (the run's public and trusted arrays), ``thresholds``, ``intake``, ``assignment``
and ``credit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from .artifacts import ProbeFailed  # noqa: F401  (graders raise it, or let it through)
from .text import inert  # noqa: F401  (student text in a message)

# Where the scoring plugin leaves the submission's context, and where a grader leaves its credit.
CONTEXT_KEY = pytest.StashKey()
CREDIT_KEY = pytest.StashKey()


class Mismatch(AssertionError):
    """A check failed; ``str()`` is exactly what the student reads (never grader source or reference values)."""

    def __init__(self, message: str, flag: str | None = None):
        super().__init__(message)
        self.flag = flag


def expect(condition: bool, message: str, flag: str | None = None) -> None:
    if not condition:
        raise Mismatch(message, flag)


@dataclass
class Credit:
    """Partial credit and notes for one grader; the scoring plugin reads it after the test returns."""
    fraction: float | None = None
    message: str = ""
    note: str = ""
    flags: list[str] = field(default_factory=list)

    def partial(self, fraction: float, message: str) -> None:
        """Award ``fraction`` of the item's points (1.0 is full credit) with an explanation."""
        self.fraction = float(min(1.0, max(0.0, fraction)))
        self.message = message

    def add_note(self, text: str) -> None:
        """Information shown even when the check passes."""
        self.note = f"{self.note} {text}".strip()

    def flag(self, name: str) -> None:
        self.flags.append(name)


def close(actual, expected, *, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    actual, expected = np.asarray(actual), np.asarray(expected)
    return actual.shape == expected.shape and bool(np.allclose(actual, expected, rtol=rtol, atol=atol))


def describe_shape(array: np.ndarray) -> str:
    return f"shape {tuple(array.shape)} and dtype {array.dtype}"


def linear_credit(value: float, required: float, zero_at: float) -> float:
    """1.0 at or above ``required``, falling linearly to 0.0 at ``zero_at``."""
    if value >= required:
        return 1.0
    if value <= zero_at or required <= zero_at:
        return 0.0
    return (value - zero_at) / (required - zero_at)
