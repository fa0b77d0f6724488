"""The student release: reproducible, up to date, leak-free; the solution passes the public tests and the
released stubs fail every one of them with NotImplementedError."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from autograder import release

VERSION = release.assignment_info()["version"]
COMMITTED = release.ASSIGNMENTS / VERSION


@pytest.fixture(scope="module")
def rendered():
    return release.render(VERSION)


def test_committed_release_is_up_to_date(rendered):
    """Regenerate and compare: edit solutions/, then run `python -m autograder release`."""
    assert sorted(p.name for p in COMMITTED.iterdir()) == sorted(rendered), "files differ"
    for name, text in rendered.items():
        assert (COMMITTED / name).read_text() == text, f"assignments/{VERSION}/{name} is stale: release again"


def test_rendering_is_deterministic(rendered):
    assert release.render(VERSION) == rendered


def test_every_generated_file_says_so_first(rendered):
    for name, text in rendered.items():
        first = text.splitlines()[0] if not name.endswith(".ipynb") else text.split('"source": [')[1][:200]
        assert "Generated from" in first, name


def test_nothing_else_leaks_into_the_release(rendered):
    assert set(rendered) == {"hello_mnist.py", "hello_mnist.ipynb", "test_hello_mnist.py", "mnist_data.py",
                             "requirements.txt", "README.md"}
    stub = rendered["hello_mnist.py"]
    assert stub.count('raise NotImplementedError("Replace this line with your code.")') == 12
    assert "keras.optimizers.Nadam" not in stub and "rng.permutation(len(x))" not in stub
    assert "### BEGIN SOLUTION" not in rendered["hello_mnist.ipynb"]
    assert rendered["hello_mnist.ipynb"].count("raise NotImplementedError()") >= 3


def test_a_leaked_solution_line_is_caught(rendered):
    leaked = dict(rendered)
    leaked["hello_mnist.py"] += "\n    order = rng.permutation(len(x))\n"
    with pytest.raises(release.ReleaseError, match="solution code"):
        release.check_no_leaks(leaked)
    leaked = dict(rendered, **{"notes.md": "### BEGIN SOLUTION\n"})
    with pytest.raises(release.ReleaseError, match="marker"):
        release.check_no_leaks(leaked)


def test_docstrings_and_hints_are_kept(rendered):
    stub = rendered["hello_mnist.py"]
    assert "def minibatches(x, y, batch_size, rng):" in stub
    assert "# Hint: shuffle the *indices* (rng.permutation(n))" in stub
    assert "Yield one epoch of mini-batches in a random order." in stub


def run_public_tests(folder: Path, module_source: Path) -> ElementTree.Element:
    shutil.copy(module_source, folder / "hello_mnist.py")
    report = folder / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hello_mnist.py",
                    f"--junitxml={report}"], cwd=folder, capture_output=True, text=True, timeout=900,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return ElementTree.parse(report).getroot()


@pytest.mark.slow
def test_solution_passes_and_stubs_fail_every_public_test(tmp_path):
    for kind in ("solution", "stub"):
        shutil.copytree(COMMITTED, tmp_path / kind)
    passed = run_public_tests(tmp_path / "solution", release.SOLUTIONS / "hello_mnist.py")
    cases = passed.findall(".//testcase")
    assert cases and all(not list(case) for case in cases), ElementTree.tostring(passed)[:3000]
    failed = run_public_tests(tmp_path / "stub", COMMITTED / "hello_mnist.py")
    stub_cases = failed.findall(".//testcase")
    assert len(stub_cases) == len(cases)
    for case in stub_cases:
        outcome = list(case)
        assert outcome and outcome[0].tag == "failure", (case.get("name"), [o.tag for o in outcome])
        assert "NotImplementedError" in (outcome[0].get("message", "") + (outcome[0].text or "")), case.get("name")


@pytest.mark.slow
def test_release_check_grades_the_solution_full_and_the_stubs_zero(settings):
    """What `python -m autograder release` verifies before publishing, through the real sandbox."""
    assert release.verify(COMMITTED, settings=settings) == {"solution": 100.0, "stub": 0.0}
