"""From the LMS's download to the LMS's upload, through the real sandbox and the CLI a TA types:

    python -m autograder grade <download.zip or folder> --out DIR --roster <the LMS's roster export>
    python -m autograder gradebook override --out DIR --submission KEY --score S --comment TEXT
    python -m autograder gradebook export --out DIR --format canvas|moodle|gradescope --roster ... [--feedback]

Downloads are built from each LMS's documented naming rules (tests/lms_fixtures), with late and resubmitted
files and Unicode names; every export is read back by a transcription of the LMS's own importer."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import factory
from conftest import REPO
from lms_fixtures import canvas, importers, moodle

pytestmark = pytest.mark.slow

SOLUTION = factory.student_source().encode()
MISSING_SOFTMAX = factory.apply_mutation(
    factory.student_source(), (REPO / "tests/submissions/mistakes/missing_softmax/mutation.py").read_text()).encode()
STUB = next(iter(factory.release_module(factory.V1).values())).encode()
MODEL = factory.EXAMPLE_MODEL.read_bytes()


def autograder(*args, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=900)
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def canvas_class(tmp_path_factory):
    """Jane (solution), José (a mistake), Rick (the stub first, then a late resubmission of the solution), and
    a roster with a fourth student who handed nothing in; graded from the zip itself."""
    root = tmp_path_factory.mktemp("canvas")
    uploads = [canvas.CanvasUpload("Doe, Jane", 101, 9001, "hello_mnist.py", SOLUTION),
               canvas.CanvasUpload("Doe, Jane", 101, 9002, "model.keras", MODEL),
               canvas.CanvasUpload("Núñez, José", 102, 9003, "hello_mnist.py", MISSING_SOFTMAX),
               canvas.CanvasUpload("Núñez, José", 102, 9004, "model.keras", MODEL),
               canvas.CanvasUpload("Roe, Rick", 103, 9005, "hello_mnist.py", STUB),
               canvas.CanvasUpload("Roe, Rick", 103, 9006, "hello_mnist-1.py", SOLUTION, late=True),
               canvas.CanvasUpload("Roe, Rick", 103, 9007, "model.keras", MODEL, late=True)]
    download = canvas.build_download(root, uploads, as_zip=True)
    roster = canvas.write_gradebook_export(root / "canvas_gradebook.csv", [
        canvas.CanvasStudent("Doe, Jane", 101, "S101", "jdoe", "A"),
        canvas.CanvasStudent("Núñez, José", 102, "S102", "jnunez", "A"),
        canvas.CanvasStudent("Roe, Rick", 103, "S103", "rroe", "B"),
        canvas.CanvasStudent("Poe, Ada", 104, "S104", "apoe", "B")],
        assignment_title="Hello MNIST", assignment_id=5501, points_possible="100")
    out = root / "out"
    graded = autograder("grade", download, "--out", out, "--quiet", "--roster", roster, "--version", "v1")
    return root, out, roster, graded


def _summary(out: Path) -> dict:
    with open(out / "summary.csv") as handle:
        return {row["key"]: row for row in csv.DictReader(handle)}


def test_a_canvas_zip_is_graded_per_student_with_the_lms_identity(canvas_class):
    _, out, _, _ = canvas_class
    rows = _summary(out)
    assert set(rows) == {"canvas:101", "canvas:102", "canvas:103"}
    assert float(rows["canvas:101"]["total"]) == 100 and float(rows["canvas:102"]["total"]) == 92
    # Rick's latest attempt (hello_mnist-1.py, the solution) is the one graded, not the stub
    assert float(rows["canvas:103"]["total"]) == 100


def test_the_closing_lines_name_who_handed_nothing_in(canvas_class):
    _, _, _, graded = canvas_class
    assert "Poe, Ada" in graded.stdout + graded.stderr


def test_the_canvas_export_imports_with_the_late_penalty_and_the_override(canvas_class):
    root, out, roster, _ = canvas_class
    autograder("gradebook", "override", "--out", out, "--submission", "canvas:102", "--score", "96",
               "--comment", "the softmax was in the notebook; regraded by hand")
    autograder("gradebook", "export", "--out", out, "--format", "canvas", "--roster", roster,
               "--assignment-name", "Hello MNIST", "--assignment-id", "5501",
               "--due", "2026-11-01T23:59:00+00:00", "--late-percent-per-day", "10")
    imported = importers.canvas_gradebook_import(out / "exports" / "canvas-gradebook.csv")
    assert [a["id"] for a in imported["assignments"]] == ["5501"]
    grades = {key: student["grades"]["5501"] for key, student in imported["students"].items()}
    assert float(grades["101"]) == 100
    assert float(grades["102"]) == 96          # the override
    assert float(grades["103"]) == 90          # Canvas's LATE_ marker, no time: one day, 10 %
    assert grades["104"] is None               # no submission: blank, never 0
    history = autograder("gradebook", "export", "--out", out).stdout
    assert "canvas:102" in history


@pytest.fixture(scope="module")
def moodle_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("moodle")
    uploads = [moodle.MoodleUpload("José Núñez", 731904, {"hello_mnist.py": SOLUTION, "model.keras": MODEL}),
               moodle.MoodleUpload("Zoë Ünal", 731905, {"hello_mnist.py": MISSING_SOFTMAX, "model.keras": MODEL})]
    download = moodle.build_download(root, uploads, folders=True, as_zip=False)
    worksheet = moodle.write_worksheet(root / "worksheet.csv", [
        {"Identifier": "Participant 731904", "Full name": "José Núñez", "Email address": "jose@uni.example",
         "Status": "Submitted for grading", "Maximum Grade": "100.00", "Grade can be changed": "Yes"},
        {"Identifier": "Participant 731905", "Full name": "Zoë Ünal", "Email address": "zoe@uni.example",
         "Status": "Submitted for grading", "Maximum Grade": "100.00", "Grade can be changed": "Yes"}])
    out = root / "out"
    autograder("grade", download, "--out", out, "--quiet", "--version", "v1")
    return root, out, worksheet


def test_moodle_folders_keep_unicode_names_and_participant_ids(moodle_class):
    _, out, _ = moodle_class
    rows = _summary(out)
    assert set(rows) == {"moodle:731904", "moodle:731905"}
    assert rows["moodle:731904"]["submission"] == "José Núñez"
    assert float(rows["moodle:731905"]["total"]) == 92


def test_the_moodle_worksheet_and_feedback_zip_import(moodle_class):
    _, out, worksheet = moodle_class
    autograder("gradebook", "export", "--out", out, "--format", "moodle", "--roster", worksheet, "--feedback")
    imported = importers.moodle_worksheet_import(out / "exports" / "moodle-worksheet.csv")
    assert imported["731904"]["grade"] == 100 and imported["731905"]["grade"] == 92
    assert "build_model" in imported["731905"]["feedback"]["Feedback comments"]
    files = importers.moodle_feedback_zip_import(out / "exports" / "moodle-feedback.zip", {"731904", "731905"})
    assert set(files) == {"731904", "731905"} and all(files[p] for p in files)


def test_an_unknown_layout_named_explicitly_is_refused_with_what_was_found(tmp_path):
    folder = tmp_path / "not-canvas"
    folder.mkdir()
    (folder / "hello_mnist.py").write_bytes(SOLUTION)
    done = autograder("grade", folder, "--out", tmp_path / "out", "--lms", "canvas", check=False)
    assert done.returncode == 2 and "hello_mnist.py" in done.stderr


def test_copied_models_and_code_are_flagged_for_the_ta_not_penalised(canvas_class):
    _, out, _, graded = canvas_class
    rows = _summary(out)
    # all three handed in the same model.keras: a flag beside the grade, never a change to it
    assert rows["canvas:101"]["similar_to"].split() == ["canvas:102", "canvas:103"]
    assert float(rows["canvas:101"]["total"]) == 100
    with open(out / "similarity.csv", encoding="utf-8") as handle:
        pairs = list(csv.DictReader(handle))
    models = {(p["first"], p["second"]) for p in pairs if p["kind"] == "model"}
    assert models == {("canvas:101", "canvas:102"), ("canvas:101", "canvas:103"), ("canvas:102", "canvas:103")}
    # Jane's and Rick's modules are the same solution; the similarity is measured beyond the released stub
    source = {(p["first"], p["second"]): p for p in pairs if p["kind"] == "source"}
    assert source[("canvas:101", "canvas:103")]["flagged"] == "yes"
    page = (out / "similarity.html").read_text(encoding="utf-8")
    assert "núñezjosé" in page and "Identical trained models" in page  # the name as Canvas's file names give it
