"""Grades a TA can trust across runs, through the real CLI and sandbox: one bad file never stops the class, one
writer per output folder, grader failures are never grades, resume by content, stable identities, class
files that are views of the gradebook, and undo."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import factory
from conftest import REPO

pytestmark = pytest.mark.slow

BAD_FILES = ("model_config_list", "model_layer_config_string", "model_corrupt_deflate", "model_bad_utf8_name",
             "zip_corrupt_member", "summary.csv", "gradebook.sqlite", "corrupt_zip")


def grade_command(paths, out, *extra):
    return [sys.executable, "-m", "autograder", "grade", *map(str, paths), "--out", str(out), "--quiet", "--jobs", "2",
            *extra]


def run(command, timeout=900):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def honest(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hello_mnist.py").write_text(factory.student_source())
    shutil.copy(factory.EXAMPLE_MODEL, folder / "model.keras")
    return folder


def copy_of(materialized, name: str, target: Path) -> Path:
    source = materialized[name]
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target.with_suffix(source.suffix) if source.suffix == ".zip" else target)
    return target


def summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", encoding="utf-8") as handle:
        return {row["submission"]: row for row in csv.DictReader(handle)}


def gradebook_rows(out: Path) -> int:
    from autograder.gradebook import open_gradebook
    return open_gradebook(None, out).counts()["grades"]


def test_bad_files_never_stop_the_class_on_the_first_run_nor_on_a_rerun(materialized, tmp_path):
    """Each of these used to end the whole run with a traceback and exit 1, on every rerun."""
    klass = tmp_path / "class"
    honest(klass / "honest")
    for name in BAD_FILES:
        source = materialized[name]
        shutil.copytree(source, klass / source.name) if source.is_dir() else shutil.copy(source, klass / source.name)
    out = tmp_path / "out"
    first = run(grade_command([klass], out))
    assert first.returncode == 0, first.stderr[-3000:]
    rows = summary(out)
    assert set(rows) == {"honest", *BAD_FILES}, sorted(rows)
    assert rows["honest"]["total"] == "100" and rows["honest"]["status"] == "graded"
    for name, flag in (("model_config_list", "unsafe_model"), ("model_layer_config_string", "unsafe_model"),
                       ("model_corrupt_deflate", "corrupt_model"), ("model_bad_utf8_name", "corrupt_model"),
                       ("zip_corrupt_member", "corrupt_zip"), ("corrupt_zip", "corrupt_zip")):
        assert flag in rows[name]["flags"].split(), (name, rows[name])
        feedback = (out / "submissions" / name / "feedback.md").read_text()
        assert "model.keras" in feedback or "zip" in feedback
    assert rows["summary.csv"]["total"] == "100" and rows["gradebook.sqlite"]["total"] == "100"
    assert (out / "gradebook.sqlite").is_file() and (out / "submissions" / "gradebook.sqlite" / "results.json").is_file()
    recorded = gradebook_rows(out)
    second = run(grade_command([klass], out))
    assert second.returncode == 0, second.stderr[-3000:]
    assert gradebook_rows(out) == recorded, "a rerun with the same files and graders grades nothing again"
    assert summary(out) == rows


def test_unicode_names_keep_their_own_grades_across_reruns(materialized, tmp_path):
    """Zoé and Zoë used to become Zo and Zo-2; a late Zoè shifted the suffixes and swapped grades."""
    klass = tmp_path / "class"
    honest(klass / "Zoé")
    copy_of(materialized, "missing_softmax", klass / "Zoë")
    out = tmp_path / "out"
    assert run(grade_command([klass], out)).returncode == 0
    before = summary(out)
    assert before["Zoé"]["total"] == "100" and float(before["Zoë"]["total"]) < 100
    copy_of(materialized, "no_shuffle", klass / "Zoè")
    result = run(grade_command([klass], out))
    assert result.returncode == 0, result.stderr[-2000:]
    after = summary(out)
    assert {name: after[name]["total"] for name in before} == {name: before[name]["total"] for name in before}
    assert {name: after[name]["folder"] for name in before} == {name: before[name]["folder"] for name in before}
    assert float(after["Zoè"]["total"]) < 100 and after["Zoè"]["total"] != after["Zoë"]["total"]
    for name, row in after.items():
        feedback = (out / "submissions" / row["folder"] / "feedback.md").read_text(encoding="utf-8")
        assert f"feedback for {name}" in feedback and f"Score: {row['total']} / 100" in feedback


def test_a_second_run_on_the_same_output_folder_refuses_at_once(materialized, tmp_path):
    klass = tmp_path / "class"
    for name in ("alice", "bob", "carol"):
        honest(klass / name)
    out = tmp_path / "out"
    first = subprocess.Popen(grade_command([klass], out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / ".grader" / "lock.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        started = time.monotonic()
        second = run(grade_command([klass], out), timeout=120)
        assert second.returncode == 2 and time.monotonic() - started < 60, second.stderr[-2000:]
        assert f"process {first.pid}" in second.stderr and "is being graded by" in second.stderr, second.stderr
        assert first.wait(timeout=900) == 0, first.stderr.read()[-2000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert {row["total"] for row in summary(out).values()} == {"100"} and gradebook_rows(out) == 3
    # A lock left behind by kill -9 is free again by construction: the kernel held it, not a file.
    third = subprocess.Popen(grade_command([klass], out, "--regrade"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / ".grader" / "lock.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(third.pid, signal.SIGKILL)
    third.wait()
    assert (out / ".grader" / "lock.json").exists(), "the holder note stays behind, the lock does not"
    again = run(grade_command([klass], out))
    assert again.returncode == 0, again.stderr[-2000:]


def test_a_worker_killed_mid_submission_is_not_graded_and_the_next_run_grades_it(materialized, tmp_path, settings,
                                                                                  monkeypatch):
    """A sandbox that dies without hitting a limit is the grader's failure: retried once, then recorded as not
    graded (no score, no blame), and graded by the next plain run."""
    from autograder.grade import grade
    from autograder.gradebook import open_gradebook
    from autograder.sandbox.pool import WarmWorker

    klass = tmp_path / "class"
    honest(klass / "victim")
    honest(klass / "neighbour")
    real_serve = WarmWorker.serve
    kills = []

    def serve_then_die(self, plan, submission_dir, *, budget, on_frame, **options):
        if "victim" not in str(submission_dir):
            return real_serve(self, plan, submission_dir, budget=budget, on_frame=on_frame, **options)

        def kill_after_the_first_check(header, files):
            accepted = on_frame(header, files)
            if header["probe"] == "preprocess" and self.process is not None:
                kills.append(self.process.pid)
                os.killpg(self.process.pid, signal.SIGKILL)  # the worker's whole sandbox, from outside
            return accepted

        return real_serve(self, plan, submission_dir, budget=budget, on_frame=kill_after_the_first_check, **options)

    monkeypatch.setattr(WarmWorker, "serve", serve_then_die)
    out = tmp_path / "out"
    outcomes = {o.report.key: o for o in grade([klass], out_dir=out, settings=settings, progress=False)}
    victim = outcomes["victim"].report
    assert len(kills) == 2, "retried once in a fresh worker"
    assert not victim.graded and victim.status == "not_graded" and outcomes["neighbour"].report.total == 100
    feedback = (out / "submissions" / "victim" / "feedback.md").read_text()
    assert "not your fault" in feedback and "limit" not in feedback and "Score" not in feedback
    details = out / victim.details
    assert details.is_file() and "sandbox" in details.read_text()
    assert summary(out)["victim"]["status"] == "not_graded" and summary(out)["victim"]["total"] == ""
    assert open_gradebook(None, out).latest_for("victim")["status"] == "not_graded"

    monkeypatch.setattr(WarmWorker, "serve", real_serve)
    again = {o.report.key: o for o in grade([klass], out_dir=out, settings=settings, progress=False)}
    assert again["victim"].report.graded and again["victim"].report.total == 100 and not again["victim"].skipped
    assert again["neighbour"].skipped, "the neighbour's grade was recorded and stays"
    assert summary(out)["victim"]["total"] == "100"


def test_resume_reports_the_grade_of_the_files_given_now(materialized, tmp_path):
    """Regrade a changed copy of alice from another folder, then grade the original class again: the original's
    grade (for the original's digest) is what is reported and shown, beside the original's code."""
    klass = tmp_path / "class"
    honest(klass / "alice")
    honest(klass / "bob")
    copy_of(materialized, "no_shuffle", klass / "carol")
    out = tmp_path / "out"
    assert run(grade_command([klass], out)).returncode == 0
    original = summary(out)
    fixed = copy_of(materialized, "missing_softmax", tmp_path / "elsewhere" / "alice")
    result = run(grade_command([fixed], out, "--regrade"))
    assert result.returncode == 0, result.stderr[-2000:]
    changed = summary(out)
    assert set(changed) == {"alice", "bob", "carol"}, "a one-student regrade keeps the whole class summary"
    assert float(changed["alice"]["total"]) < 100 and changed["bob"] == original["bob"]
    with open(out / "test_pass_rates.csv") as handle:
        assert {int(row["graded"]) for row in csv.DictReader(handle)} == {3}
    result = run(grade_command([klass], out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert summary(out)["alice"]["total"] == "100"
    folder = out / "submissions" / "alice"
    assert json.loads((folder / "results.json").read_text())["score"] == 100
    assert (folder / "submission" / "hello_mnist.py").read_text() == (klass / "alice" / "hello_mnist.py").read_text()


def test_void_a_mistaken_grade_then_export(materialized, tmp_path):
    klass = tmp_path / "class"
    honest(klass / "alice")
    copy_of(materialized, "no_shuffle", klass / "bob")
    out = tmp_path / "out"
    assert run(grade_command([klass], out)).returncode == 0
    refused = run([sys.executable, "-m", "autograder", "gradebook", "void", "--out", str(out), "--submission", "bob"])
    assert refused.returncode == 2 and "--reason" in refused.stderr
    voided = run([sys.executable, "-m", "autograder", "gradebook", "void", "--out", str(out), "--submission", "bob",
                  "--reason", "graded the wrong folder"])
    assert voided.returncode == 0, voided.stderr
    exported = run([sys.executable, "-m", "autograder", "gradebook", "export", "--out", str(out)])
    assert [row["key"] for row in csv.DictReader(exported.stdout.splitlines())] == ["alice"]
    history = run([sys.executable, "-m", "autograder", "gradebook", "export", "--out", str(out), "--history"])
    rows = {row["key"]: row for row in csv.DictReader(history.stdout.splitlines())}
    assert rows["bob"]["voided"] == "graded the wrong folder"
    assert set(summary(out)) == {"alice"}, "the class files follow the gradebook at once"


def test_the_parent_folder_given_by_mistake_is_refused_before_anything_is_graded(tmp_path):
    parent = tmp_path / "work"
    repository = parent / "main"
    (repository / "autograder").mkdir(parents=True)
    (repository / "pyproject.toml").write_text("[project]\n")
    (repository / "autograder" / "grade.py").write_text("x = 1\n")
    (parent / "shared" / "data").mkdir(parents=True)
    (parent / "notes").mkdir()
    (parent / "notes" / "todo.txt").write_text("x")
    out = tmp_path / "out"
    result = run(grade_command([parent], out), timeout=120)
    assert result.returncode == 2 and "does not look like a folder of submissions" in result.stderr
    assert not out.exists(), "nothing was graded, nothing recorded"
