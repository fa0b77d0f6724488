"""The command line: exit code 0 when every submission was graded, 2 with a fix-it message otherwise."""

import os
import subprocess
import sys

import pytest

from autograder.cli import main


def test_missing_submission_path_exits_2_with_a_message(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_setting_exits_2_naming_the_option(tmp_path, capsys):
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "out"), "--jobs", "many"]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_export_without_a_gradebook_exits_2(tmp_path, capsys):
    assert main(["gradebook", "export", "--out", str(tmp_path / "missing")]) == 2
    assert "not a grading output folder" in capsys.readouterr().err


def test_missing_mnist_exits_2_and_says_how_to_fix(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "hello_mnist.py").write_text("x = 1\n")
    env = {**os.environ, "MNIST_DATA_DIR": str(tmp_path / "no-mnist-here")}
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "alice"), "--out",
                             str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "MNIST_DATA_DIR" in result.stderr and "not a folder" in result.stderr
    assert not (tmp_path / "out").exists(), "checked before any output, worker or gradebook is made"


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("grade", "gradebook", "reference", "release", "gradescope"):
        assert command in out


def test_a_run_with_submissions_not_graded_exits_3(tmp_path, monkeypatch, capsys):
    """Exit code 3: the run finished, the grader failed on some submissions (recorded as not graded)."""
    import autograder.grade as grade_module
    from autograder.report import not_graded_report

    failed = not_graded_report("alice", max_total=100, failure="the sandbox died", details=".grader/errors/alice.txt",
                               digest="d", key="alice", display_name="alice", source="/class/alice")
    monkeypatch.setattr(grade_module, "grade", lambda *args, **kwargs: [grade_module.GradeOutcome(
        failed, grade_module.Timing())])
    (tmp_path / "alice").mkdir()
    assert main(["grade", str(tmp_path / "alice"), "--out", str(tmp_path / "out"), "--quiet"]) == 3


def test_void_needs_a_reason_and_a_target(tmp_path, capsys):
    from autograder.gradebook import Gradebook, default_url
    (tmp_path / "out").mkdir()
    Gradebook(default_url(tmp_path / "out"))
    with pytest.raises(SystemExit):
        main(["gradebook", "void", "--out", str(tmp_path / "out"), "--submission", "bob"])
    assert "--reason" in capsys.readouterr().err
    assert main(["gradebook", "void", "--out", str(tmp_path / "out"), "--submission", "bob", "--reason", "x"]) == 2
    assert "No current grade for 'bob'" in capsys.readouterr().err
