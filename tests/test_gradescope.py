"""The Gradescope bundle, unpacked into Gradescope's layout in a temporary folder, grades the solution
100/100 and a broken submission exactly as the local grader does."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

import factory
from autograder.gradescope import build_bundle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("gradescope") / "autograder"
    bundle = build_bundle(root.parent / "autograder.zip", version="v1")
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        archive.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):
        os.chmod(root / "source" / name, 0o755)
    return root, names


def test_bundle_has_what_gradescope_needs(layout):
    _, names = layout
    assert {"setup.sh", "run_autograder", "requirements.txt", "VERSION", "data/v1/reference_scores.json",
            "solutions/v1/assignment.toml", "solutions/v1/grading/rubric.toml",
            "data/v1/mnist/t10k-images-idx3-ubyte.gz"} <= names
    assert not any("__pycache__" in name for name in names)
    assert "solutions/v1/hello_mnist.py" not in names, "the solution never leaves the instructor's machine"


def run_autograder(root, submission_files):
    shutil.rmtree(root / "submission", ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    shutil.copytree(submission_files, root / "submission")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    result = subprocess.run([str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text())


def scores_by_function(results):
    totals = {}
    for test in results["tests"]:
        totals[test["tags"][0]] = totals.get(test["tags"][0], 0) + test["score"]
    return totals


def test_solution_scores_full_marks(layout, materialized):
    root, _ = layout
    results = run_autograder(root, factory.V1.examples_dir / "submissions" / "solution")
    assert results["score"] == 100, [t for t in results["tests"] if t["status"] != "passed"]
    assert all(t["visibility"] == "visible" for t in results["tests"])


def test_a_broken_submission_loses_exactly_its_points(layout, materialized):
    root, _ = layout
    results = run_autograder(root, materialized["last_batch_dropped"])
    totals = scores_by_function(results)
    assert totals["minibatches"] == pytest.approx(9.8)
    assert results["score"] == pytest.approx(95.8)
