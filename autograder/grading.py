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
from .harness.recorder import StudentError  # noqa: F401  (probes raise it: the student's code is at fault)
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


# ---------------------------------------------------------------------------------------------
# Probes: what the sandbox's recorder does for a grader file's checks
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeDeclaration:
    """A grader file's probe: a function the sandbox's recorder runs (``autograder/harness/recorder.py``), whose
    records (JSON, ``.npy``) that file's tests then read through the ``artifacts`` fixture."""
    name: str                 # the artifacts folder; the name the tests read it by
    function: str             # the graded function it belongs to (orders the probes like the rubric)
    reference: str            # "module:qualname" of the probe function
    sequence: int             # declaration order within the version
    timeout: str = "function"   # "function" (probe_timeout_s) or "retrain" (retrain_timeout_s)
    parallel: bool = False    # may run beside the others in a helper slot (it trains a whole model)
    needs_module: bool = True  # False: runs even without a module (the submitted model file)
    only_with_model: bool = False  # runs only when a model file was submitted and accepted
    params: object = None     # a dict of JSON values, or a function (assignment, rubric) -> dict
    only_with_notebook: bool = False  # runs only for a notebook submission (its "your turn" cells)


PROBES: dict[str, ProbeDeclaration] = {}  # by reference; filled as the graders are imported


def probe(name: str, *, function: str | None = None, timeout: str = "function", parallel: bool = False,
          needs_module: bool = True, only_with_model: bool = False, params=None, only_with_notebook: bool = False):
    """Declare the function below as the probe ``name`` of its grader file.

    The probe runs inside the sandbox, in the recorder, never in the student's process; it gets a
    ``Run`` (``run.inputs()``, ``run.call(function, *args)``, ``run.record``, ``run.save()``) and may use numpy
    and Keras. It must not start with ``test_`` (pytest would collect it).

    Example:
        >>> @probe("predict_digits")
        ... def record_predictions(run):
        ...     data = run.inputs("known_model")
        ...     run.save("predictions", run.call("predict_digits", known_model(data), data["x"]))
    """
    if timeout not in ("function", "retrain"):
        raise ValueError(f"probe {name!r}: timeout must be 'function' or 'retrain', not {timeout!r}")

    def register(target):
        reference = f"{target.__module__}:{target.__qualname__}"
        PROBES[reference] = ProbeDeclaration(name, function or name, reference, len(PROBES), timeout, parallel,
                                             needs_module, only_with_model, params, only_with_notebook)
        return target

    return register
