"""The repository ships what its tests and releases need: no shipped file may match an ignore rule.

A case folder named ``summary.csv`` once matched the ``*.csv`` rule that keeps grade exports out of git: the
test passed in the working copy and failed on a clean clone. This checks every file of the shipped folders
against the ignore rules, in any checkout (tracked or not yet added).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO

SHIPPED = ("tests", "solutions", "assignments", "data", "examples", "autograder", "benchmarks", ".ci")


def shipped_files() -> list[str]:
    files = []
    for top in SHIPPED:
        for path in (REPO / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append(str(path.relative_to(REPO)))
    return files


@pytest.mark.skipif(not (REPO / ".git").exists() or shutil.which("git") is None, reason="not a git checkout")
def test_no_shipped_file_is_ignored_by_git():
    files = shipped_files()
    assert len(files) > 100
    result = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], input="\n".join(files), cwd=REPO,
                            capture_output=True, text=True)
    ignored = [line for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode in (0, 1), result.stderr
    assert ignored == [], f"shipped files that git would not commit: {ignored[:20]}"


def test_grade_exports_in_the_checkout_are_still_ignored():
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    for path in ("grades.csv", "out/summary.csv", "canvas-gradebook.csv"):
        result = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=REPO)
        assert result.returncode == 0, path
