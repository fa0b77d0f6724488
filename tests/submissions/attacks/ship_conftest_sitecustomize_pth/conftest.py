"""ATTACK PAYLOAD (tests/submissions/attacks/stray_files): a student's conftest.py that would turn every
check of the grader's pytest run into a pass. It is inert unless the pytest session is the grader's
(rootdir .../graders), so the project's own `pytest tests/` can load it safely."""

import pytest


def _in_grader(config) -> bool:
    return str(getattr(config, "rootpath", "")).rstrip("/").endswith("graders")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if _in_grader(item.config):
        report = outcome.get_result()
        report.outcome = "passed"
        try:
            with open("/tmp/autograder_attack_marker_conftest", "w") as handle:
                handle.write("a submission's conftest.py ran in the grader\n")
        except OSError:
            pass
