"""Canvas: "Download Submissions" zips and gradebook CSV exports, built as Canvas builds them.

Rules (instructure/canvas-lms):
* lib/content_zipper.rb: ``get_filename`` joins ``[users_name, "LATE" if late, user_id]`` with ``_`` and removes
  every non-word character; ``sanitize_user_name`` replaces ``_(\\d+)_`` by the digits and lower-cases the
  sortable name ("Last, First"); ``add_upload_submission`` appends ``_<attachment id>_<display name>`` with
  ``\\x00/\\\\:*?"<>|`` in the display name replaced by ``_``; anonymous grading uses ``anon_<anonymous id>``
  and no name.
* app/models/attachment.rb ``make_unique_filename``: a re-upload of a name gets ``-N`` before the extension.
* lib/gradebook_exporter.rb: header ``Student, ID, [SIS User ID,] SIS Login ID, Section, <title> (<id>)``,
  a ``Manual Posting`` row when grades are posted manually, a row starting ``"    Points Possible"``.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CanvasUpload:
    sortable_name: str  # "Doe, Jane" (Canvas's sortable_name)
    user_id: int
    attachment_id: int
    display_name: str  # the file's display name in Canvas (already "-N"-renamed if it was a re-upload)
    content: bytes
    late: bool = False
    anonymous_id: str | None = None


def users_name(sortable_name: str) -> str:
    """ContentZipper#sanitize_user_name."""
    name = re.sub(r"_(\d+)_", r"\1", sortable_name)
    name = re.sub(r"^(\d+)$", r"\1", name)
    return name.lower()


def submission_prefix(upload: CanvasUpload) -> str:
    """ContentZipper#get_filename, then sanitize_file_name (``[^[[:word:]]]`` removed)."""
    identifier = f"anon_{upload.anonymous_id}" if upload.anonymous_id else str(upload.user_id)
    parts = [None if upload.anonymous_id else users_name(upload.sortable_name), "LATE" if upload.late else None,
             identifier]
    joined = "_".join(part for part in parts if part is not None)
    return re.sub(r"[^\w]", "", joined)  # Python's \w is Unicode-aware, like Ruby's [[:word:]]


def zip_name(upload: CanvasUpload) -> str:
    """The member name ContentZipper#add_upload_submission writes."""
    display = re.sub(r'[\x00/\\:*?"<>|]+', "_", upload.display_name)
    return f"{submission_prefix(upload)}_{upload.attachment_id}_{display}"


def build_download(root: Path, uploads: list[CanvasUpload], *, as_zip: bool, extra: dict[str, bytes] | None = None,
                   name: str = "CS101-hello-mnist_submissions") -> Path:
    """Write a Canvas download: a flat zip (as downloaded) or the folder it unpacks into."""
    members = {zip_name(upload): upload.content for upload in uploads}
    members.update(extra or {})
    if as_zip:
        path = root / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for member, data in members.items():
                archive.writestr(member, data)
        return path
    folder = root / name
    for member, data in members.items():
        target = folder / member
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


@dataclass
class CanvasStudent:
    sortable_name: str
    user_id: int
    sis_user_id: str
    sis_login_id: str
    section: str
    score: str = ""


def write_gradebook_export(path: Path, students: list[CanvasStudent], *, assignment_title: str, assignment_id: int,
                           points_possible: str, manual_posting: bool = False, include_sis_id: bool = True,
                           test_student: bool = False) -> Path:
    """A gradebook CSV as GradebookExporter#csv_data writes it (totals columns included)."""
    header = ["Student", "ID"] + (["SIS User ID"] if include_sis_id else []) + ["SIS Login ID", "Section",
              f"{assignment_title} ({assignment_id})", "Current Score", "Unposted Current Score", "Final Score",
              "Unposted Final Score"]
    info_columns = len(header) - 5
    rows = [header]
    if manual_posting:
        rows.append([""] * info_columns + ["Manual Posting", "", "", "", ""])
    rows.append(["    Points Possible"] + [""] * (info_columns - 1) + [points_possible] + ["(read only)"] * 4)
    everyone = list(students)
    if test_student:
        everyone.append(CanvasStudent("Student, Test", 999, "", "", students[0].section if students else ""))
    for student in everyone:
        name = f'="{student.sortable_name}"' if student.sortable_name.lstrip().startswith("=") else student.sortable_name
        row = [name, str(student.user_id)] + ([student.sis_user_id] if include_sis_id else [])
        rows.append(row + [student.sis_login_id, student.section, student.score, "", "", "", ""])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path
