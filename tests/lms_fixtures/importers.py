"""What each LMS's importer does with a file, transcribed from its source, to test exports against.

* ``canvas_gradebook_import``: app/models/gradebook_importer.rb (identify_delimiter, header?,
  row_has_student_headers?, update_column_count, strip_non_assignment_columns, Assignment.title_and_id,
  check_for_non_student_row, process_pp, process_student, no_score?).
* ``moodle_worksheet_import``: mod/assign/feedback/offline/importgradeslib.php (init, next) and locallib.php
  (process_import_grades: blank grade skipped, unformat_float).
* ``moodle_feedback_zip_import``: mod/assign/feedback/file/importziplib.php (is_valid_filename_for_import).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from pathlib import Path

CANVAS_NON_ASSIGNMENT = re.compile("Current Score|Current Points|Current Grade|Final Score|Final Points|Final Grade|"
                                   "Override Score|Override Grade|Override Status")


def canvas_gradebook_import(path: Path) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    first_lines = text.splitlines()[:3]
    counts = {}
    for separator in ";,":
        sizes = {len(next(csv.reader([line], delimiter=separator))) for line in first_lines}
        counts[separator] = sizes.pop() if len(sizes) == 1 else 0
    delimiter = ";" if counts[";"] > counts[","] else ","
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)
            if not re.fullmatch(r"^[;, ]+$", delimiter.join(row) or " ")]
    header = rows[0]
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1], "row_has_student_headers? fails"
    student_columns = 3
    sis_user_column = sis_login_column = None
    if re.search(r"SIS\s+Login\s+ID", header[2]):
        sis_login_column, student_columns = 2, student_columns + 1
    elif re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3]):
        sis_user_column, sis_login_column, student_columns = 2, 3, student_columns + 2
    assert "Section" in header[student_columns - 1], "the last student column must be Section"
    assignment_headers = [cell for cell in header[student_columns:] if not CANVAS_NON_ASSIGNMENT.search(cell)]
    assignments = []
    for cell in assignment_headers:
        match = re.fullmatch(r"(.*)\s\((\d+)\)", cell, re.S)
        assignments.append({"header": cell, "title": match.group(1) if match else cell,
                            "id": match.group(2) if match else None, "index": header.index(cell),
                            "points_possible": None})
    students = {}
    for row in rows[1:]:
        if row[0] and "Points Possible" in row[0]:
            for assignment in assignments:
                assignment["points_possible"] = row[assignment["index"]] or None
            continue
        if all(re.fullmatch(r"\s*(Muted|Manual Posting.*)?\s*", cell, re.I) for cell in row if cell is not None):
            continue
        identity = {"id": row[1] or None, "sis_user_id": row[sis_user_column] if sis_user_column else None,
                    "sis_login_id": row[sis_login_column] if sis_login_column else None, "name": row[0]}
        grades = {}
        for assignment in assignments:
            value = (row[assignment["index"]] or "").strip()
            grades[assignment["id"] or assignment["title"]] = None if value in ("", "-") else value
        students[identity["id"] or identity["sis_user_id"] or identity["sis_login_id"] or identity["name"]] = {
            **identity, "grades": grades}
    return {"assignments": assignments, "students": students}


def moodle_worksheet_import(path: Path, *, feedback_columns=("Feedback comments",)) -> dict:
    rows = list(csv.reader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    columns = rows[0]
    index = {name: columns.index(name) for name in ("Identifier", "Grade", "Last modified (grade)")
             if name in columns}
    assert len(index) == 3, "init() returns false: Identifier, Grade and Last modified (grade) are required"
    feedback = {name: columns.index(name) for name in feedback_columns if name in columns}
    result = {}
    for row in rows[1:]:
        identifier = row[index["Identifier"]]
        participant = identifier[len("Participant "):]
        assert identifier.startswith("Participant ") and participant.isdigit(), identifier
        grade = row[index["Grade"]]
        modified = datetime.fromisoformat(row[index["Last modified (grade)"]])  # strtotime reads ISO 8601
        assert modified.tzinfo is not None
        # unformat_float: '' stays ''; process_import_grades skips a grade with no value.
        result[participant] = {"grade": None if grade == "" else float(grade.replace(",", ".")),
                               "modified": modified, "feedback": {name: row[i] for name, i in feedback.items()}}
    return result


def moodle_feedback_zip_import(path: Path, participants: set[str]) -> dict[str, dict[str, bytes]]:
    found: dict[str, dict[str, bytes]] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir() or info.filename.split("/")[-1].startswith((".", "~")):
                continue
            parts = info.filename.split("/")
            while parts:
                part = parts.pop(0)
                pieces = part.split("_", 4)  # explode('_', $pathpart, 5)
                if len(pieces) < 4 or not pieces[1].isdigit() or pieces[1] not in participants:
                    continue
                assert (pieces[2], pieces[3]) in {("assignfeedback", "file"), ("assignsubmission", "file")}, pieces
                if len(pieces) == 4:
                    pieces.append("")
                name = "/".join([pieces[4]] + parts)
                found.setdefault(pieces[1], {})[name] = archive.read(info)
                break
    return found
