"""Exports each LMS imports unchanged (autograder/lms/exports.py), checked against the LMS's import rules
(tests/lms_fixtures/importers.py, transcribed from its source) and against sample files built from its export
rules, column by column."""

from __future__ import annotations

import csv
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from autograder.lms.exports import (ExportError, GradeRow, write_canvas_feedback_folders, write_canvas_gradebook,
                                    write_export, write_gradescope_scores, write_moodle_feedback_zip,
                                    write_moodle_worksheet)
from lms_fixtures import canvas, gradescope, importers, moodle

WHEN = datetime(2024, 10, 2, 9, 30, tzinfo=timezone.utc)


def row(key, user_id, name, score, *, final=None, penalty=0.0, late_days=0, **fields):
    values = dict(key=key, user_id=user_id, display_name=name, email=None, login=None, sis_id=None, section=None,
                  score=score, max_score=100.0, feedback_text="Well done.\nSee <details> & more.",
                  feedback_html_path=None, late_days=late_days, penalty_points=penalty,
                  final_score=score if final is None else final, override_comment=None)
    values.update(fields)
    return GradeRow(**values)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def canvas_rows():
    return [row("canvas:13", "13", "Doe, Jane", 87.5, final=77.5, penalty=10.0, late_days=1, sis_id="S013",
                login="jdoe", section="Section A"),
            row("canvas:12", "12", "Müller, Jürgen", None, sis_id="S012", login="jmuller", section="Section B"),
            row("canvas:15", "15", "=HYPERLINK(\"http://x\")", 0.0, login="evil", section="Section A")]


def test_canvas_gradebook_import_reads_every_grade_and_blank_stays_no_grade(tmp_path):
    path = write_canvas_gradebook(canvas_rows(), tmp_path / "import.csv", assignment_name="Hello MNIST",
                                  assignment_id="5501")
    imported = importers.canvas_gradebook_import(path)
    (assignment,) = imported["assignments"]
    assert (assignment["title"], assignment["id"], assignment["points_possible"]) == ("Hello MNIST", "5501", "100")
    grades = {identifier: student["grades"]["5501"] for identifier, student in imported["students"].items()}
    assert grades == {"13": "77.5", "12": None, "15": "0"}  # the final score; missing is blank, 0 stays 0
    assert imported["students"]["13"]["sis_login_id"] == "jdoe"
    assert imported["students"]["15"]["name"].startswith("'=")  # no formula reaches a spreadsheet


def test_canvas_export_matches_canvass_own_export_column_by_column(tmp_path):
    sample = read_rows(canvas.write_gradebook_export(
        tmp_path / "sample.csv", [canvas.CanvasStudent("Doe, Jane", 13, "S013", "jdoe", "Section A", "77.5")],
        assignment_title="Hello MNIST", assignment_id=5501, points_possible="100"))
    ours = read_rows(write_canvas_gradebook(canvas_rows()[:1], tmp_path / "ours.csv", assignment_name="Hello MNIST",
                                            assignment_id="5501"))
    assert ours[0] == sample[0][:6]  # Student, ID, SIS User ID, SIS Login ID, Section, "Hello MNIST (5501)"
    assert ours[1] == sample[1][:6]  # "    Points Possible", blanks, points
    assert ours[2] == sample[2][:6]  # the student row


def test_canvas_penalty_column_only_when_asked_and_titles_checked(tmp_path):
    rows = canvas_rows()
    path = write_canvas_gradebook(rows, tmp_path / "p.csv", assignment_name="Hello MNIST", assignment_id="5501",
                                  penalty_column="Late penalty (hello_mnist)")
    header = read_rows(path)[0]
    assert header[-1] == "Late penalty (hello_mnist)"
    assert read_rows(path)[1][-1] == ""
    with pytest.raises(ExportError, match="totals column"):
        write_canvas_gradebook(rows, tmp_path / "x.csv", assignment_name="Final Score", assignment_id="1")
    with pytest.raises(ExportError, match="not a Canvas id"):
        write_canvas_gradebook(rows, tmp_path / "x.csv", assignment_name="A", assignment_id="55a")
    with pytest.raises(ExportError, match="would read the number as an id"):
        write_canvas_gradebook(rows, tmp_path / "x.csv", assignment_name="Lab (3)", assignment_id=None)
    with pytest.raises(ExportError, match="disagree on max_score"):
        write_canvas_gradebook(rows + [row("canvas:20", "20", "X", 1, max_score=10.0)], tmp_path / "x.csv",
                               assignment_name="A", assignment_id="1")
    with pytest.raises(ExportError, match="not a Canvas ID"):
        write_canvas_gradebook([row("canvas:anon_x", "anon_x", "A", 1.0)], tmp_path / "x.csv",
                               assignment_name="A", assignment_id="1")


def moodle_rows():
    return [row("moodle:731904", "731904", "Zoë Ñúñez", 87.5, final=77.5, penalty=10.0, late_days=2,
                email="zoe@uni.edu", submitted_at=WHEN - timedelta(days=2)),
            row("moodle:731905", "731905", "Li Wei", None, email="li@uni.edu")]


def test_moodle_worksheet_import_reads_grades_feedback_and_skips_blank(tmp_path):
    path = write_moodle_worksheet(moodle_rows(), tmp_path / "worksheet.csv", modified_at=WHEN)
    imported = importers.moodle_worksheet_import(path)
    assert imported["731904"]["grade"] == 77.5 and imported["731905"]["grade"] is None
    assert imported["731904"]["modified"] == WHEN
    feedback = imported["731904"]["feedback"]["Feedback comments"]
    assert "See &lt;details&gt; &amp; more." in feedback and "<details>" not in feedback
    assert "Late penalty: 10 points (2 days late)" in feedback


def test_moodle_worksheet_matches_moodles_own_download_column_by_column(tmp_path):
    sample = read_rows(moodle.write_worksheet(tmp_path / "sample.csv", [{"Identifier": "Participant 731904"}]))
    ours = read_rows(write_moodle_worksheet(moodle_rows(), tmp_path / "ours.csv", modified_at=WHEN))
    assert ours[0][:len(sample[0])] == sample[0] and ours[0][len(sample[0]):] == ["Late penalty"]
    assert [r[0] for r in ours[1:]] == ["Participant 731904", "Participant 731905"]
    assert ours[1][4:6] == ["77.50", "100.00"] and ours[1][-1] == "10.00"


def test_moodle_rows_need_participant_ids_and_aware_times(tmp_path):
    with pytest.raises(ExportError, match="participant id"):
        write_moodle_worksheet([row("canvas:1", "anon_1", "A", 1.0)], tmp_path / "x.csv", modified_at=WHEN)
    with pytest.raises(ExportError, match="no timezone"):
        write_moodle_worksheet(moodle_rows(), tmp_path / "x.csv", modified_at=datetime(2024, 1, 1))


def test_moodle_feedback_zip_names_are_read_by_moodles_importer(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<p>custom</p>")
    rows = [moodle_rows()[0], row("moodle:731905", "731905", "Li_Wei/../x", 50.0, feedback_html_path=page)]
    path = write_moodle_feedback_zip(rows, tmp_path / "feedback.zip")
    found = importers.moodle_feedback_zip_import(path, {"731904", "731905"})
    assert sorted(found) == ["731904", "731905"]
    assert list(found["731904"]) == ["feedback.html"] and found["731905"]["feedback.html"] == b"<p>custom</p>"
    body = found["731904"]["feedback.html"].decode()
    assert "&lt;details&gt;" in body and "<details>" not in body
    assert write_moodle_feedback_zip(rows, tmp_path / "again.zip").read_bytes() == path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        assert all("/" not in name and name.count("_assignfeedback_file_") == 1 for name in archive.namelist())


def test_canvas_feedback_is_a_folder_per_user_id(tmp_path):
    folder = write_canvas_feedback_folders(canvas_rows(), tmp_path / "canvas_feedback")
    assert sorted(p.name for p in folder.iterdir()) == ["12", "13", "15"]
    assert "Late penalty: 10 points (1 day late)" in (folder / "13" / "feedback.txt").read_text()
    assert "&lt;details&gt;" in (folder / "13" / "feedback.html").read_text()


def test_gradescope_scores_match_gradescopes_download_grades_columns(tmp_path):
    rows = [row("gradescope:A1", "A1", "Ann Lee", 87.5, final=77.5, penalty=10.0, sis_id="A1", email="ann@uni.edu",
                submitted_at=datetime(2023, 9, 20, 23, 18, 40, tzinfo=timezone(timedelta(hours=-7))),
                lateness=timedelta(hours=25, seconds=5), submission_id="9001"),
            row("gradescope:dan@uni.edu", "dan@uni.edu", "Dan Z", None, email="dan@uni.edu", submitted=False),
            row("gradescope:C3", "C3", "Çağla Y", None, sis_id="C3", email="c@uni.edu")]
    table = read_rows(write_gradescope_scores(rows, tmp_path / "scores.csv"))
    sample = gradescope.GRADES_HEADER
    shared = ["SID", "Email", "Sections", "Total Score", "Max Points", "Status", "Submission ID", "Submission Time",
              "Lateness (H:M:S)"]
    assert [column for column in table[0] if column in sample] == shared
    assert table[0][0] == "Name" and table[0][-1] == "Late Penalty"
    by_name = {r[0]: dict(zip(table[0], r)) for r in table[1:]}
    assert by_name["Ann Lee"]["Total Score"] == "77.5" and by_name["Ann Lee"]["Status"] == "Graded"
    assert by_name["Ann Lee"]["Submission Time"] == "2023-09-20 23:18:40 -0700"
    assert by_name["Ann Lee"]["Lateness (H:M:S)"] == "25:00:05"
    assert by_name["Dan Z"]["Status"] == "Missing" and by_name["Dan Z"]["Total Score"] == ""
    assert by_name["Çağla Y"]["Status"] == "Ungraded"


def test_exports_are_deterministic_and_selectable_by_name(tmp_path):
    first = write_export("canvas-gradebook", canvas_rows(), tmp_path / "a.csv", assignment_name="A",
                         assignment_id="1").read_bytes()
    second = write_export("canvas-gradebook", list(reversed(canvas_rows())), tmp_path / "b.csv",
                          assignment_name="A", assignment_id="1").read_bytes()
    assert first == second
    with pytest.raises(ValueError, match="Unknown export format"):
        write_export("blackboard", [], tmp_path / "c.csv")


def test_moodle_worksheet_headers_follow_the_tas_language(tmp_path):
    german = {"Identifier": "ID", "Grade": "Bewertung", "Last modified (grade)": "Zuletzt geändert (Bewertung)",
              "Feedback comments": "Feedback als Kommentar"}
    path = write_moodle_worksheet(moodle_rows(), tmp_path / "de.csv", modified_at=WHEN, headers=german,
                                  participant_prefix="Teilnehmer/in ")
    header, first = read_rows(path)[:2]
    assert header[0] == "ID" and header[4] == "Bewertung" and first[0] == "Teilnehmer/in 731904"
    with pytest.raises(ExportError, match="does not have"):
        write_moodle_worksheet(moodle_rows(), tmp_path / "x.csv", modified_at=WHEN, headers={"Note": "x"})
