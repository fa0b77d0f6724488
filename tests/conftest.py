"""Shared fixtures: real MNIST, the committed reference scores, graded classes of test submissions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "submissions"))  # tests import factory (tests/submissions/factory.py)

# Test submissions are data, never collected: one of them ships a hostile conftest.py.
collect_ignore_glob = ["submissions/*"]


def pytest_collection_modifyitems(config, items):
    # Fast tests first, so a broken unit shows up before the minutes of end-to-end grading.
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


@pytest.fixture(scope="session")
def v1():
    from autograder import assignment
    return assignment.load("v1")


@pytest.fixture(scope="session")
def mnist(v1):
    return v1.load_dataset()


@pytest.fixture(scope="session")
def settings():
    from autograder.settings import load_settings
    return load_settings()


@pytest.fixture(scope="session")
def materialized(tmp_path_factory) -> dict[str, Path]:
    """Every test submission written out once (in a subprocess: some builders need Keras)."""
    root = tmp_path_factory.mktemp("submissions")
    result = subprocess.run([sys.executable, str(REPO / "tests" / "submissions" / "factory.py"), "--materialize",
                             str(root)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    paths = [Path(line) for line in result.stdout.split("\n") if line.strip()]
    return {path.stem if path.suffix == ".zip" else (path.parent.name if path.suffix == ".py" else path.name): path
            for path in paths}


def grade_paths(paths, out_dir, settings, **kwargs):
    from autograder.grade import grade
    return {o.report.name: o for o in grade(list(paths), out_dir=out_dir, settings=settings, progress=False, **kwargs)}
