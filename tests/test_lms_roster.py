"""Rosters from LMS exports and the join of downloads to them (autograder/lms/roster.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from autograder.lms.intake import Entry, read_download
from autograder.lms.roster import RosterError, join_roster, read_roster
from lms_fixtures import canvas, gradescope, moodle


def test_canvas_gradebook_export_is_read_and_joined_by_canvas_id(tmp_path):
    students = [canvas.CanvasStudent("Doe, Jane", 13, "S013", "jdoe", "Section A"),
                canvas.CanvasStudent("Müller, Jürgen", 12, "S012", "jmuller", "Section B"),
                canvas.CanvasStudent("=HYPERLINK(1)", 15, "", "evil", "Section A"),
                canvas.CanvasStudent("Roe, Rick", 16, "S016", "rroe", "Section A")]
    path = canvas.write_gradebook_export(tmp_path / "grades.csv", students, assignment_title="Hello MNIST",
                                         assignment_id=5501, points_possible="100.00", manual_posting=True,
                                         test_student=True)
    roster = read_roster(path)
    assert roster.format == "canvas-gradebook"
    assert [s.user_id for s in roster.students] == ["13", "12", "15", "16"]
    assert roster.students[1].display_name == "Müller, Jürgen" and roster.students[1].sis_id == "S012"
    assert roster.students[2].display_name == "=HYPERLINK(1)"  # Canvas's ="..." guard removed, text kept
    assert any("Points Possible" in item for item in roster.skipped)
    assert any("test student" in item for item in roster.skipped)
    uploads = [canvas.CanvasUpload("Doe, Jane", 13, 1, "hello_mnist.py", b"x"),
               canvas.CanvasUpload("Müller, Jürgen", 12, 2, "hello_mnist.py", b"x"),
               canvas.CanvasUpload("Stranger, A", 99, 3, "hello_mnist.py", b"x")]
    download = read_download(canvas.build_download(tmp_path, uploads, as_zip=True))
    joined = join_roster(download.entries, roster)
    assert [(m.entry.key, m.student.display_name, m.matched_by) for m in joined.matched] == [
        ("canvas:12", "Müller, Jürgen", "id"), ("canvas:13", "Doe, Jane", "id")]
    assert [s.user_id for s in joined.missing] == ["15", "16"]
    assert [e.key for e in joined.unknown] == ["canvas:99"]


def test_canvas_semicolon_export_with_split_names_and_no_sis_column(tmp_path):
    path = tmp_path / "grades.csv"
    path.write_text("LastName;FirstName;ID;SIS Login ID;Section;Hello MNIST (5501)\n"
                    "    Points Possible;;;;;100\nDoe;Jane;13;jdoe;A;\n", encoding="utf-8-sig")
    roster = read_roster(path)
    (student,) = roster.students
    assert (student.display_name, student.user_id, student.login, student.sis_id) == ("Doe, Jane", "13", "jdoe", None)


def test_moodle_worksheet_joins_by_participant_id_and_gives_times(tmp_path):
    path = moodle.write_worksheet(tmp_path / "worksheet.csv", [
        {"Identifier": "Participant 731904", "Full name": "Zoë Ñúñez", "Email address": "zoe@uni.edu",
         "Status": "Submitted for grading", "Last modified (submission)": "Tuesday, 1 October 2024, 11:05 PM"},
        {"Identifier": "Participant 731905", "Full name": "Li Wei", "Email address": "li@uni.edu",
         "Status": "No submission", "Last modified (submission)": "-"}])
    roster = read_roster(path, timezone="Europe/Berlin")
    assert roster.format == "moodle-worksheet"
    zoe = roster.students[0]
    assert zoe.user_id == "731904" and zoe.email == "zoe@uni.edu"
    assert zoe.submitted_at == datetime(2024, 10, 1, 23, 5, tzinfo=ZoneInfo("Europe/Berlin"))
    assert read_roster(path).students[0].submitted_at is None  # no zone given: never guessed
    uploads = [moodle.MoodleUpload("Zoë Ñúñez", 731904, {"hello_mnist.py": b"x"})]
    download = read_download(moodle.build_download(tmp_path, uploads, folders=True, as_zip=True))
    joined = join_roster(download.entries, roster)
    assert [(m.entry.key, m.matched_by) for m in joined.matched] == [("moodle:731904", "id")]
    assert joined.matched[0].submitted_at == zoe.submitted_at  # the download has none; the worksheet has
    assert [s.user_id for s in joined.missing] == ["731905"]


def test_moodle_participants_join_by_unique_full_name_only(tmp_path):
    path = moodle.write_participants(tmp_path / "participants.csv", [
        {"First name": "Zoë", "Last name": "Ñúñez", "Email address": "zoe@uni.edu", "ID number": "Z1"},
        {"First name": "Ann", "Last name": "Lee", "Email address": "ann1@uni.edu"},
        {"First name": "Ann", "Last name": "Lee", "Email address": "ann2@uni.edu"}])
    roster = read_roster(path)
    assert roster.format == "moodle-participants" and roster.students[0].sis_id == "Z1"
    uploads = [moodle.MoodleUpload("Zoë Ñúñez", 731904, {"hello_mnist.py": b"x"}),
               moodle.MoodleUpload("Ann Lee", 731906, {"hello_mnist.py": b"x"})]
    download = read_download(moodle.build_download(tmp_path, uploads, folders=False, as_zip=True))
    joined = join_roster(download.entries, roster)
    assert [(m.entry.key, m.matched_by) for m in joined.matched] == [("moodle:731904", "name")]
    assert [e.key for e in joined.unknown] == ["moodle:731906"]  # two Ann Lees: not guessed
    assert any("fits 2 roster rows" in note for note in joined.notes)


def test_gradescope_grades_csv_as_roster_with_email_fallback(tmp_path):
    path = gradescope.write_grades(tmp_path / "grades.csv", [
        {"First Name": "Ann", "Last Name": "Lee", "SID": "A1", "Email": "ann@uni.edu", "Status": "Graded",
         "Submission Time": "2023-09-20 23:18:40 -0700", "Lateness (H:M:S)": "25:00:00"},
        {"First Name": "Çağla", "Last Name": "Y", "SID": "C3", "Email": "Cagla@Uni.edu", "Status": "Graded"},
        {"First Name": "Dan", "Last Name": "Z", "SID": "", "Email": "dan@uni.edu", "Status": "Missing"}])
    roster = read_roster(path)
    assert roster.format == "gradescope-roster"
    ann = roster.students[0]
    assert ann.submitted_at == datetime(2023, 9, 20, 23, 18, 40, tzinfo=timezone(timedelta(hours=-7)))
    assert ann.lateness == timedelta(hours=25)
    submissions = [gradescope.GradescopeSubmission(1, [{"name": "Ann Lee", "sid": "A1", "email": "ann@uni.edu"}],
                                                   "2023-09-20 23:18:40.0 -07:00", {"hello_mnist.py": b"x"}),
                   gradescope.GradescopeSubmission(2, [{"name": "Çağla Y", "sid": None, "email": "cagla@uni.edu"}],
                                                   "2023-09-20 23:18:40.0 -07:00", {"hello_mnist.py": b"x"})]
    download = read_download(gradescope.build_export(tmp_path, submissions, as_zip=True))
    joined = join_roster(download.entries, roster)
    assert sorted((m.entry.key, m.matched_by) for m in joined.matched) == [
        ("gradescope:A1", "id"), ("gradescope:cagla@uni.edu", "email")]
    assert [s.display_name for s in joined.missing] == ["Dan Z"]


def test_gradescope_roster_skips_staff(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("Name,Email,SID,Role,Sections\nAnn Lee,ann@uni.edu,A1,Student,L01\n"
                    "Prof X,x@uni.edu,,Instructor,\n", encoding="utf-8")
    roster = read_roster(path)
    assert [s.user_id for s in roster.students] == ["A1"] and roster.students[0].section == "L01"
    assert any("Instructor" in item for item in roster.skipped)


def test_two_entries_claiming_one_email_pair_with_nobody():
    roster_path_free = [Entry("gradescope", "x1", "X", email="same@uni.edu"),
                        Entry("gradescope", "x2", "Y", email="same@uni.edu")]
    from autograder.lms.roster import Roster, RosterStudent
    roster = Roster("gradescope-roster", [RosterStudent("gradescope", "S9", "Z", email="same@uni.edu")])
    joined = join_roster(roster_path_free, roster)
    assert joined.matched == [] and len(joined.unknown) == 2 and joined.notes


def test_unknown_roster_files_are_explained(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("who,mark\nann,3\n", encoding="utf-8")
    with pytest.raises(RosterError, match="columns are 'who', 'mark'.*canvas-gradebook"):
        read_roster(path)
    path.write_bytes(b"Student,ID,Section\n\xff\xfe,1,A\n")
    with pytest.raises(RosterError, match="not UTF-8"):
        read_roster(path)
    with pytest.raises(RosterError, match="does not look like a moodle-worksheet"):
        read_roster(canvas.write_gradebook_export(tmp_path / "g.csv", [], assignment_title="A", assignment_id=1,
                                                  points_possible="1"), format="moodle-worksheet")
