"""Every committed release: reproducible, up to date, pinned, leak-free; the solution passes the public tests and
the released stubs fail every one of them with NotImplementedError; the release check grades them 100 and 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from autograder.rubric import load_rubric

from autograder import assignment as assignments
from autograder import release
from autograder.pins import check_pins

VERSIONS = assignments.versions()


@pytest.fixture(scope="module", params=VERSIONS)
def version(request):
    return assignments.load(request.param)


@pytest.fixture(scope="module")
def rendered(version):
    return release.render(version)


def test_committed_release_is_up_to_date(version, rendered):
    """Regenerate and compare: edit solutions/<version>/, then run `python -m autograder release --version V`."""
    committed = version.release_dir
    assert sorted(p.name for p in committed.iterdir()) == sorted(rendered), "files differ"
    for name, text in rendered.items():
        assert (committed / name).read_text() == text, f"assignments/{version.version}/{name} is stale: release again"


def test_the_version_is_pinned_as_released(version):
    """The manifest's pins (stubs, release, graders, rubric, reference scores, data, reference library versions)
    match the files: a grader or reference changed since the release is caught here."""
    assert check_pins(version) == []


def test_rendering_is_deterministic(version, rendered):
    assert release.render(version) == rendered


def test_every_generated_file_says_so_first_and_names_its_version(version, rendered):
    for name, text in rendered.items():
        first = text.splitlines()[0] if not name.endswith(".ipynb") else text.split('"source": [')[1][:300]
        assert "Generated from" in first and f"({version.name} {version.version})" in first, name


def test_nothing_else_leaks_into_the_release(version, rendered):
    assert set(rendered) == {version.module, version.notebook, version.public_tests, f"{version.dataset.loader}.py",
                             "requirements.txt", "README.md", *version.extras} - {""}
    stub = rendered[version.module]
    assert stub.count('raise NotImplementedError("Replace this line with your code.")') == len(version.module_functions)
    assert "### BEGIN SOLUTION" not in rendered[version.notebook]
    assert rendered[version.notebook].count("raise NotImplementedError()") >= 3


def test_a_leaked_solution_line_is_caught(version, rendered):
    solution = version.solution_module.read_text()
    body = next(line for block in release.BLOCK.finditer(solution) for line in block.group(0).splitlines()[1:-1]
                if len(line.strip()) > 25)
    leaked = dict(rendered)
    leaked[version.module] += "\n" + body + "\n"
    with pytest.raises(release.ReleaseError, match="solution code"):
        release.check_no_leaks(leaked, version)
    leaked = dict(rendered, **{"notes.md": "### BEGIN SOLUTION\n"})
    with pytest.raises(release.ReleaseError, match="marker"):
        release.check_no_leaks(leaked, version)


def test_v1_docstrings_and_hints_are_kept():
    stub = release.render(assignments.load("v1"))["hello_mnist.py"]
    assert "def minibatches(x, y, batch_size, rng):" in stub
    assert "# Hint: shuffle the *indices* (rng.permutation(n))" in stub
    assert "Yield one epoch of mini-batches in a random order." in stub


def run_public_tests(folder: Path, module_source: Path, version) -> ElementTree.Element:
    shutil.copy(module_source, folder / version.module)
    report = folder / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", version.public_tests,
                    f"--junitxml={report}"], cwd=folder, capture_output=True, text=True, timeout=900,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return ElementTree.parse(report).getroot()


@pytest.mark.slow
def test_solution_passes_and_stubs_fail_every_public_test(version, tmp_path):
    committed = version.release_dir
    for kind in ("solution", "stub"):
        shutil.copytree(committed, tmp_path / kind)
    passed = run_public_tests(tmp_path / "solution", version.solution_module, version)
    cases = passed.findall(".//testcase")
    assert cases and all(not list(case) for case in cases), ElementTree.tostring(passed)[:3000]
    failed = run_public_tests(tmp_path / "stub", committed / version.module, version)
    stub_cases = failed.findall(".//testcase")
    assert len(stub_cases) == len(cases)
    for case in stub_cases:
        outcome = list(case)
        assert outcome and outcome[0].tag == "failure", (case.get("name"), [o.tag for o in outcome])
        assert "NotImplementedError" in (outcome[0].get("message", "") + (outcome[0].text or "")), case.get("name")


@pytest.mark.slow
def test_release_check_grades_the_solution_full_and_the_stubs_zero(version, settings):
    """What `python -m autograder release` verifies before publishing, through the real sandbox."""
    # ...as a module, and handed in as a notebook (the route the manifest's accepts offers): the solution with
    # its answer cells earns full marks, answers included (2 points each on top of 100), the stubs 0
    answers = sum(item.points for item in load_rubric(version).items if item.function in load_rubric(version).answers)
    assert release.verify(version.release_dir, version, settings=settings) == {
        "solution": 100.0, "stub": 0.0, "solution_notebook": 100.0 + answers, "stub_notebook": 0.0}
