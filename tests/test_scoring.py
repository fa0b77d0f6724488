"""The scoring plugin's failure rendering: a student-facing Mismatch is reported by its message alone, while
anything else (a bug in a grader) keeps pytest's full traceback for the TA."""

import pytest

from autograder.artifacts import ProbeFailed
from autograder.grading import Mismatch
from autograder.scoring import _quiet_for_expected_failures


def _info(error: BaseException) -> pytest.ExceptionInfo:
    try:
        raise error
    except BaseException as raised:
        return pytest.ExceptionInfo.from_exception(raised)


def _pytest_rendering(excinfo, *args, **kwargs):
    return f"TRACEBACK of {type(excinfo.value).__name__}"


@pytest.mark.parametrize("error", [Mismatch("Expected 10 units, got 7."), ProbeFailed("build_model did not run")])
def test_expected_failures_are_their_message(error):
    render = _quiet_for_expected_failures(_pytest_rendering)
    assert render(_info(error)) == str(error)


@pytest.mark.parametrize("error", [KeyError("weights"), AssertionError("plain assert in a grader")])
def test_grader_bugs_keep_the_traceback(error):
    render = _quiet_for_expected_failures(_pytest_rendering)
    assert render(_info(error)) == f"TRACEBACK of {type(error).__name__}"
