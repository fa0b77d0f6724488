"""Grades out: files each LMS imports unchanged, written from plain ``GradeRow`` rows.

One class per format in ``EXPORTS`` (``write_export(name, rows, path, ...)`` picks one), each built from the
LMS's import rules, cited beside its constants:

``canvas-gradebook``
    Gradebook > Import. Columns ``Student, ID, SIS User ID, SIS Login ID, Section, <Assignment> (<id>)``,
    then a ``    Points Possible`` row. Canvas's importer finds students by ``ID``, then SIS User ID, then
    SIS Login ID, then name; it reads ``<title> (<digits>)`` as an existing assignment's id (any other
    header creates a new assignment) and treats a blank cell (or ``-``) as "no grade", so a missing grade
    is written blank, never 0. The score written is ``final_score``; the late penalty is not a Canvas
    column unless ``penalty_column`` names a custom gradebook column the course already has (Canvas
    imports a header into a custom column of the same title, and turns any other header into a new
    assignment).
``moodle-worksheet``
    Assignment > "Upload grading worksheet". The importer needs ``Identifier`` ("Participant <id>"),
    ``Grade`` and ``Last modified (grade)`` and reads feedback from the column named after the feedback
    plugin (``Feedback comments``); every other column, ``Late penalty`` included, is for people. A blank
    grade is skipped by Moodle ("grade has no value"); a row whose grade Moodle changed more than a minute
    after ``Last modified (grade)`` is skipped unless the TA ticks "Allow updating records that have been
    modified more recently in Moodle", so that column is the export's time, given by the caller.
``gradescope-scores``
    The layout of an assignment's "Download Grades" CSV (``Name, SID, Email, Sections, Total Score,
    Max Points, Status, Submission ID, Submission Time, Lateness (H:M:S)``) plus ``Late Penalty``; Status is
    Graded, Ungraded (submitted, no score) or Missing, as Gradescope writes it.

Feedback files laid out for upload:

* ``write_moodle_feedback_zip``: "Upload multiple feedback files in a zip"; each file is named
  ``<name>_<participant id>_assignfeedback_file_<file>``, which Moodle's importer
  (mod/assign/feedback/file/importziplib.php) splits on ``_`` into name, participant id, plugin type and
  plugin, in every Moodle since 2.3;
* ``write_canvas_feedback_folders``: a folder per Canvas user id holding ``feedback.html`` and
  ``feedback.txt``, for posting as submission comments (Canvas's own "Re-upload submissions" only accepts
  files named after an existing attachment of the submission).

Everything a student controls is written as text: names lose control characters and cannot start a
spreadsheet formula; feedback is HTML-escaped where the LMS renders HTML.

Example:
    >>> write_export("canvas-gradebook", rows, Path("canvas_import.csv"), assignment_name="Hello MNIST",
    ...              assignment_id="5501")
    PosixPath('canvas_import.csv')
"""

from __future__ import annotations

import csv
import html
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable

from anyascii import anyascii

from ..text import CONTROL

MAX_FEEDBACK_HTML_BYTES = 4 * 1024 * 1024
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same rows give the same bytes


class ExportError(ValueError):
    """The rows cannot be written in the asked format (what is missing, and for which rows): the caller's."""


@dataclass(frozen=True)
class GradeRow:
    """One student's grade, as the gradebook hands it to an export.

    Attributes:
        key: the identity string (``"canvas:12345"``).
        user_id: the LMS id (Canvas user id, Moodle participant id, Gradescope SID).
        display_name: the name to show (any Unicode).
        email, login, sis_id, section: as the roster has them, None when unknown.
        score: the autograder's points, None when there is no grade (missing submission, not graded).
        max_score: the points possible.
        feedback_text: plain text for the student (escaped wherever the LMS renders HTML).
        feedback_html_path: a feedback page to upload as a file, None for none.
        late_days: whole days late (None when unknown).
        penalty_points: points the instructor's late policy takes off (0 when none, None when unknown).
        final_score: the grade to post (score less penalty, or an override); None for no grade.
        override_comment: why a TA overrode the grade, shown with the feedback.
        submitted_at: when the LMS received the submission, if known.
        submission_id: the LMS's submission id, if known.
        lateness: how late, if known (Gradescope's "Lateness (H:M:S)").
        submitted: whether the student submitted at all (Gradescope's Status: Missing vs Ungraded).
    """

    key: str
    user_id: str
    display_name: str
    email: str | None
    login: str | None
    sis_id: str | None
    section: str | None
    score: float | None
    max_score: float
    feedback_text: str
    feedback_html_path: Path | None
    late_days: int | None
    penalty_points: float | None
    final_score: float | None
    override_comment: str | None
    submitted_at: datetime | None = None
    submission_id: str | None = None
    lateness: timedelta | None = None
    submitted: bool = True


def write_export(format: str, rows: Iterable[GradeRow], path: Path, **options) -> Path:
    """Write ``rows`` in one of ``EXPORTS``' formats.

    Args:
        format: ``"canvas-gradebook"``, ``"moodle-worksheet"`` or ``"gradescope-scores"``.
        rows: the grades, one per student.
        path: the file to write.
        **options: the format's own options (see each ``write_*`` function).

    Returns:
        ``path``.

    Raises:
        ExportError: a row lacks what the format needs (the message lists which rows and how to fix it).
        ValueError: an unknown format.
    """
    if format not in EXPORTS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {', '.join(EXPORTS)}.")
    return EXPORTS[format](list(rows), Path(path), **options)


# -- Canvas -------------------------------------------------------------------------------------------------
# https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807
# https://github.com/instructure/canvas-lms/blob/master/app/models/gradebook_importer.rb (header?, process_pp,
# strip_non_assignment_columns, Assignment.title_and_id /\A(.*)\s\((\d+)\)\z/, no_score? blank or "-")
CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS_POSSIBLE = "    Points Possible"  # GradebookExporter writes four spaces; the importer tests include?
CANVAS_RESERVED = {"Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID", "Section",
                   "Integration ID", "Root Account"}
CANVAS_NON_ASSIGNMENT = re.compile("Current Score|Current Points|Current Grade|Final Score|Final Points|"
                                   "Final Grade|Override Score|Override Grade|Override Status")


def write_canvas_gradebook(rows: list[GradeRow], path: Path, *, assignment_name: str, assignment_id: str | None,
                           points_possible: float | None = None, penalty_column: str | None = None) -> Path:
    """Write a Canvas gradebook import CSV for one assignment.

    Args:
        rows: one per student; each needs a Canvas ``user_id``, or a ``sis_id`` or ``login`` to be found by.
        path: the CSV to write.
        assignment_name: the assignment's title in Canvas.
        assignment_id: the assignment's Canvas id (from its URL, ``/assignments/5501``); the column is then
            ``"<name> (<id>)"`` and updates that assignment. None creates a new assignment on import.
        points_possible: the Points Possible row; default the rows' common ``max_score``.
        penalty_column: the title of an existing custom gradebook column to fill with ``penalty_points``
            (see the module docstring); None writes no penalty column.

    Returns:
        ``path``.

    Raises:
        ExportError: a row cannot be identified, the rows disagree on ``max_score``, or the titles collide
            with a column Canvas reads specially.

    Example:
        >>> write_canvas_gradebook(rows, Path("import.csv"), assignment_name="Hello MNIST", assignment_id="5501")
        PosixPath('import.csv')
    """
    title = _one_line(assignment_name)
    if not title:
        raise ExportError("assignment_name is empty; give the assignment's title as it is in Canvas.")
    if assignment_id is not None and not re.fullmatch(r"\d+", str(assignment_id)):
        raise ExportError(f"assignment_id {assignment_id!r} is not a Canvas id; copy the number from the "
                          "assignment's URL (…/assignments/5501).")
    header_title = f"{title} ({assignment_id})" if assignment_id is not None else title
    for column in (header_title, penalty_column):
        if column and (column in CANVAS_RESERVED or CANVAS_NON_ASSIGNMENT.search(column)):
            raise ExportError(f"The column {column!r} would be read by Canvas as a student or totals column, "
                              "not as grades; rename it.")
    if assignment_id is None and re.search(r"\s\(\d+\)$", title):
        raise ExportError(f"{title!r} ends like '(<assignment id>)', so Canvas would read the number as an id; "
                          "pass assignment_id instead.")
    unidentified = [row.key for row in rows if not (row.user_id or row.sis_id or row.login)]
    if unidentified:
        raise ExportError(f"{len(unidentified)} rows have no Canvas ID, SIS User ID or SIS Login ID, so Canvas "
                          f"could not find the student: {', '.join(unidentified[:5])}. Join them to the "
                          "Canvas gradebook export first.")
    non_numeric = [row.key for row in rows if row.user_id and not re.fullmatch(r"\d+", row.user_id)]
    if non_numeric:
        raise ExportError(f"{len(non_numeric)} rows have a user_id that is not a Canvas ID "
                          f"({', '.join(non_numeric[:5])}); anonymous or other-LMS ids cannot be imported.")
    points = _points_possible(rows, points_possible)
    header = CANVAS_STUDENT_COLUMNS + [header_title] + ([penalty_column] if penalty_column else [])
    table = [header, [CANVAS_POINTS_POSSIBLE, "", "", "", "", _number(points)] + (["" ] if penalty_column else [])]
    for row in sorted(rows, key=lambda row: (row.display_name.casefold(), row.key)):
        line = [_name_cell(row.display_name), row.user_id or "", row.sis_id or "", row.login or "",
                _text_cell(row.section or ""), _number(row.final_score)]
        if penalty_column:
            line.append(_number(row.penalty_points))
        table.append(line)
    return _write_csv(path, table)


# -- Moodle -------------------------------------------------------------------------------------------------
# https://docs.moodle.org/401/en/Assignment_settings ("Offline grading worksheet", "Feedback files")
# https://github.com/moodle/moodle/blob/main/mod/assign/feedback/offline/importgradeslib.php (init: recordid,
# grade, lastmodifiedgrade; next: substr(identifier, strlen('Participant ')))
# https://github.com/moodle/moodle/blob/main/mod/assign/feedback/offline/locallib.php (process_import_grades)
# https://github.com/moodle/moodle/blob/main/mod/assign/lang/en/assign.php (recordid, hiddenuser, maxgrade, ...)
MOODLE_PARTICIPANT_PREFIX = "Participant "  # $string['hiddenuser']
MOODLE_WORKSHEET_COLUMNS = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                            "Grade can be changed", "Last modified (submission)", "Last modified (grade)",
                            "Feedback comments", "Late penalty"]
MOODLE_FEEDBACK_COLUMN = "Feedback comments"  # get_string('pluginname', 'assignfeedback_comments')


def write_moodle_worksheet(rows: list[GradeRow], path: Path, *, modified_at: datetime,
                           headers: dict[str, str] | None = None,
                           participant_prefix: str = MOODLE_PARTICIPANT_PREFIX) -> Path:
    """Write a Moodle grading worksheet to upload ("Upload grading worksheet").

    Args:
        rows: one per student; ``user_id`` must be the Moodle participant id (the download's folder number).
        path: the CSV to write.
        modified_at: the time written to "Last modified (grade)" (timezone-aware; the export's own time,
            passed in so the same rows give the same file). Moodle skips rows whose grade was changed in
            Moodle more than a minute after it, so a TA's later manual grade is not overwritten.
        headers: English column name -> the name in the uploading TA's Moodle language, which is what the
            importer matches (copy them from a worksheet downloaded in that language); None keeps English.
        participant_prefix: Moodle's ``hiddenuser`` string in that language ("Participant ").

    Returns:
        ``path``.

    Raises:
        ExportError: a row's ``user_id`` is not a participant number, or ``modified_at`` is naive.

    Example:
        >>> write_moodle_worksheet(rows, Path("worksheet.csv"), modified_at=datetime.now(timezone.utc))
        PosixPath('worksheet.csv')
    """
    if modified_at.tzinfo is None:
        raise ExportError("modified_at has no timezone; pass an aware datetime (datetime.now(timezone.utc)).")
    bad = [row.key for row in rows if not re.fullmatch(r"\d+", row.user_id or "")]
    if bad:
        raise ExportError(f"{len(bad)} rows have no Moodle participant id ({', '.join(bad[:5])}); Moodle finds "
                          "students by 'Participant <id>', the number in the download's folder names.")
    # PHP's strtotime (used by the importer) reads ISO 8601 with an offset exactly; userdate()'s English
    # text would be read in the server's timezone instead.
    modified = modified_at.isoformat(timespec="seconds")
    unknown = sorted(set(headers or {}) - set(MOODLE_WORKSHEET_COLUMNS))
    if unknown:
        raise ExportError(f"headers names columns the worksheet does not have: {unknown}; the columns are "
                          f"{MOODLE_WORKSHEET_COLUMNS}.")
    table = [[(headers or {}).get(column, column) for column in MOODLE_WORKSHEET_COLUMNS]]
    for row in sorted(rows, key=lambda row: int(row.user_id)):
        table.append([
            participant_prefix + row.user_id, _name_cell(row.display_name), _text_cell(row.email or ""),
            "", _number(row.final_score, decimals=2, fixed=True), _number(row.max_score, decimals=2, fixed=True),
            "Yes", row.submitted_at.isoformat(timespec="seconds") if row.submitted_at else "-", modified,
            _feedback_html(row), _number(row.penalty_points, decimals=2, fixed=True)])
    return _write_csv(path, table)


def write_moodle_feedback_zip(rows: list[GradeRow], path: Path, *, file_name: str = "feedback.html") -> Path:
    """Write the zip for Moodle's "Upload multiple feedback files in a zip".

    Args:
        rows: one per student with feedback; ``user_id`` is the participant id.
        path: the zip to write.
        file_name: the name the student sees for the feedback file.

    Returns:
        ``path``. Each member is ``<ASCII name>_<participant id>_assignfeedback_file_<file_name>``; its
        content is ``feedback_html_path``'s file, or the escaped ``feedback_text`` as a small HTML page.

    Raises:
        ExportError: a row has no participant id, or a feedback file is missing or too large.

    Example:
        >>> write_moodle_feedback_zip(rows, Path("feedback.zip"))
        PosixPath('feedback.zip')
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", file_name):
        raise ExportError(f"file_name {file_name!r} must be a plain file name (letters, digits, . _ -).")
    bad = [row.key for row in rows if not re.fullmatch(r"\d+", row.user_id or "")]
    if bad:
        raise ExportError(f"{len(bad)} rows have no Moodle participant id ({', '.join(bad[:5])}).")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for row in sorted(rows, key=lambda row: int(row.user_id)):
            # The importer ignores the name part, but it must hold no '_' (the separator) and no '/'.
            name = re.sub(r"[^A-Za-z0-9 .-]", "", anyascii(row.display_name).replace("_", " ")).strip() or "Student"
            member = f"{name[:60]}_{row.user_id}_assignfeedback_file_{file_name}"
            info = zipfile.ZipInfo(member, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, _feedback_page(row))
    return path


# -- Canvas feedback ----------------------------------------------------------------------------------------

def write_canvas_feedback_folders(rows: list[GradeRow], folder: Path) -> Path:
    """Write ``<folder>/<Canvas user id>/feedback.html`` and ``feedback.txt`` for each row.

    Args:
        rows: one per student; ``user_id`` is the Canvas user id.
        folder: where to write (created if missing).

    Returns:
        ``folder``.

    Raises:
        ExportError: a row's ``user_id`` is not a Canvas id.

    Example:
        >>> write_canvas_feedback_folders(rows, Path("out/canvas_feedback"))
        PosixPath('out/canvas_feedback')
    """
    bad = [row.key for row in rows if not re.fullmatch(r"\d+", row.user_id or "")]
    if bad:
        raise ExportError(f"{len(bad)} rows have no Canvas user id ({', '.join(bad[:5])}).")
    folder = Path(folder)
    for row in rows:
        target = folder / row.user_id
        target.mkdir(parents=True, exist_ok=True)
        (target / "feedback.html").write_bytes(_feedback_page(row))
        (target / "feedback.txt").write_text(_feedback_plain(row), encoding="utf-8")
    return folder


# -- Gradescope ---------------------------------------------------------------------------------------------
# Gradescope: Assignment > Review Grades > Download Grades (CSV); columns as Gradescope writes them.
# https://guides.gradescope.com/hc/en-us/articles/22066784117901-Grading-Online-Assignments ("Exporting")
# Column names and Status values as Gradescope's exports carry them (its CSVs, read by many course tools).
GRADESCOPE_COLUMNS = ["Name", "SID", "Email", "Sections", "Total Score", "Max Points", "Status", "Submission ID",
                      "Submission Time", "Lateness (H:M:S)", "Late Penalty"]


def write_gradescope_scores(rows: list[GradeRow], path: Path) -> Path:
    """Write scores in the layout of Gradescope's "Download Grades" CSV.

    Args:
        rows: one per student; SID is ``sis_id`` (or ``user_id`` for Gradescope keys), Email ``email``.
        path: the CSV to write.

    Returns:
        ``path``.

    Raises:
        ExportError: a row has neither SID nor email.

    Example:
        >>> write_gradescope_scores(rows, Path("scores.csv"))
        PosixPath('scores.csv')
    """
    bad = [row.key for row in rows if not (_gradescope_sid(row) or row.email)]
    if bad:
        raise ExportError(f"{len(bad)} rows have neither SID nor email ({', '.join(bad[:5])}).")
    table = [GRADESCOPE_COLUMNS]
    for row in sorted(rows, key=lambda row: (row.display_name.casefold(), row.key)):
        status = "Graded" if row.final_score is not None else ("Ungraded" if row.submitted else "Missing")
        table.append([_name_cell(row.display_name), _gradescope_sid(row) or "", _text_cell(row.email or ""),
                      _text_cell(row.section or ""), _number(row.final_score), _number(row.max_score), status,
                      row.submission_id or "",
                      row.submitted_at.strftime("%Y-%m-%d %H:%M:%S %z") if row.submitted_at else "",
                      _hms(row.lateness), _number(row.penalty_points)])
    return _write_csv(path, table)


EXPORTS = {"canvas-gradebook": write_canvas_gradebook, "moodle-worksheet": write_moodle_worksheet,
           "gradescope-scores": write_gradescope_scores}


# -- helpers ------------------------------------------------------------------------------------------------

def _gradescope_sid(row: GradeRow) -> str | None:
    if row.sis_id:
        return row.sis_id
    if row.key.startswith("gradescope:") and "@" not in row.user_id:
        return row.user_id
    return None


def _points_possible(rows: list[GradeRow], points_possible: float | None) -> float:
    if points_possible is not None:
        return points_possible
    values = sorted({row.max_score for row in rows})
    if len(values) != 1:
        raise ExportError(f"The rows disagree on max_score ({values[:5]}); pass points_possible= for the "
                          "assignment's points in Canvas.")
    return values[0]


def _number(value: float | None, *, decimals: int = 2, fixed: bool = False) -> str:
    """A grade as the LMS reads it; None is blank (no grade), never 0."""
    if value is None:
        return ""
    if value != value or value in (float("inf"), float("-inf")):
        raise ExportError(f"A grade of {value} cannot be exported; fix the row.")
    text = f"{round(float(value), decimals):.{decimals}f}"
    if not fixed:
        text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "-0.00") else text


def _one_line(text: str) -> str:
    return " ".join(CONTROL.sub("", text or "").split())


def _text_cell(text: str) -> str:
    """Student-controlled text in a CSV cell: one line, no controls, no formula start."""
    text = _one_line(text)
    return "'" + text if text.startswith(FORMULA_START) else text


def _name_cell(name: str) -> str:
    return _text_cell(name)


def _feedback_plain(row: GradeRow) -> str:
    parts = [CONTROL.sub("", row.feedback_text or "").strip()]
    if row.penalty_points:
        days = f" ({row.late_days} day{'s' if row.late_days != 1 else ''} late)" if row.late_days else ""
        scores = (f"; autograder score {_number(row.score)}, grade {_number(row.final_score)} / "
                  f"{_number(row.max_score)}" if row.score is not None and row.final_score is not None else "")
        parts.append(f"Late penalty: {_number(row.penalty_points)} points{days}{scores}.")
    if row.override_comment:
        parts.append(f"Grade changed by course staff: {CONTROL.sub('', row.override_comment).strip()}")
    return "\n\n".join(part for part in parts if part) + "\n"


def _feedback_html(row: GradeRow) -> str:
    """Feedback for Moodle's comments editor (HTML): every character escaped, paragraphs kept."""
    paragraphs = [paragraph for paragraph in _feedback_plain(row).split("\n\n") if paragraph.strip()]
    return "".join(f"<p>{html.escape(paragraph.strip()).replace(chr(10), '<br>')}</p>" for paragraph in paragraphs)


def _feedback_page(row: GradeRow) -> bytes:
    if row.feedback_html_path is not None:
        path = Path(row.feedback_html_path)
        if not path.is_file() or path.is_symlink():
            raise ExportError(f"{row.key}: the feedback page {path} does not exist.")
        if path.stat().st_size > MAX_FEEDBACK_HTML_BYTES:
            raise ExportError(f"{row.key}: the feedback page {path} is larger than {MAX_FEEDBACK_HTML_BYTES:,} bytes.")
        return path.read_bytes()
    title = html.escape(_one_line(row.display_name))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>Feedback: {title}</title></head>\n<body>\n<h1>Feedback</h1>\n{_feedback_html(row)}\n"
            "</body></html>\n").encode("utf-8")


def _hms(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = max(0, int(value.total_seconds()))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _write_csv(path: Path, table: list[list[str]]) -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(table)
    Path(path).write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return Path(path)
