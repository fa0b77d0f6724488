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


def test_setup_installs_the_python_the_reference_scores_were_computed_with(layout):
    """setup.sh asks uv for the reference's Python (Gradescope's image has 3.12), falls back to the image's own
    python3 when it cannot, and is valid bash."""
    from autograder.pins import reference_versions
    root, _ = layout
    setup = root / "source" / "setup.sh"
    python = reference_versions(factory.V1)["python"]
    assert f"uv python install {python}" in setup.read_text() and f"uv venv --python {python}" in setup.read_text()
    assert "python3 -m venv /autograder/venv" in setup.read_text()  # the fallback
    assert subprocess.run(["bash", "-n", str(setup)]).returncode == 0


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


def test_the_bundle_pins_exactly_what_grading_imports(layout):
    """Every third-party module the engine imports is in the bundle's lock, at an exact version; keras,
    TensorFlow and numpy at the reference scores' versions (a range let Gradescope build another TensorFlow)."""
    import ast
    from importlib import metadata

    from autograder.pins import reference_versions
    from autograder.settings import PACKAGE_DIR
    root, _ = layout
    lines = [line for line in (root / "source" / "requirements.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    pinned = dict(line.split("==") for line in lines)
    assert all(version and "," not in version for version in pinned.values()), lines
    reference = reference_versions(factory.V1)
    assert pinned["keras"] == reference["keras"] and pinned["numpy"] == reference["numpy"]
    assert pinned["tensorflow-cpu"] == reference["tensorflow"]
    # only the instructor's and the TA's class-level tools import these, never the grading of one submission
    tools_only = {"copydetect", "matplotlib", "nbclient", "playwright", "gradio", "jax", "nbgrader", "distributed",
                  "dask"}
    distributions = metadata.packages_distributions()
    imported = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            imported |= {name.split(".")[0] for name in names}
    third_party = {name for name in imported if name in distributions and name not in sys.stdlib_module_names}
    needed = {distributions[name][0].lower() for name in third_party - tools_only}
    needed = {"tensorflow-cpu" if name.startswith("tensorflow") else name for name in needed}
    assert needed - {"autograder", "hello-mnist-autograder"} <= {name.lower() for name in pinned}, \
        sorted(needed - {name.lower() for name in pinned})
