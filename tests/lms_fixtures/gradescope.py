"""Gradescope: "Export Submissions" zips and the grades/roster CSVs, built as Gradescope writes them.

Rules: the export is ``assignment_<id>_export/`` holding ``submission_metadata.yml`` and one ``submission_<id>/``
folder per active submission. The YAML is written by Ruby (keys are symbols, ``:submitters:``; times like
``2023-09-20 23:18:40.180402000 -07:00``); each entry has ``:submitters`` (``:name``, ``:sid``, ``:email``),
``:created_at``, ``:score`` and ``:history`` (earlier attempts). The per-assignment "Download Grades" CSV has
First Name, Last Name, SID, Email, Sections, Total Score, Max Points, Status, Submission ID, Submission Time,
Lateness (H:M:S), View Count, Submission Count.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class GradescopeSubmission:
    submission_id: int
    submitters: list[dict[str, str]]  # {"name", "sid", "email"}
    created_at: str  # Ruby's Time#to_yaml text
    files: dict[str, bytes]
    history: list[str] = field(default_factory=list)  # created_at of earlier attempts
    score: float = 0.0


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def metadata_yaml(submissions: list[GradescopeSubmission]) -> str:
    lines = []
    for submission in submissions:
        lines.append(f"submission_{submission.submission_id}:")
        lines.append("  :submitters:")
        for person in submission.submitters:
            lines.append(f"  - :name: {_quote(person['name'])}")
            if person.get("sid") is not None:
                lines.append(f"    :sid: {_quote(person['sid'])}")
            lines.append(f"    :email: {person['email']}")
        lines.append(f"  :created_at: {submission.created_at}")
        lines.append(f"  :score: {submission.score}")
        lines.append("  :status: processed")
        if submission.history:
            lines.append("  :history:")
            for index, created in enumerate(submission.history):
                lines.append(f"  - :id: {submission.submission_id * 10 + index}")
                lines.append(f"    :created_at: {created}")
                lines.append("    :score: 0.0")
        else:
            lines.append("  :history: []")
    return "\n".join(lines) + "\n"


def build_export(root: Path, submissions: list[GradescopeSubmission], *, as_zip: bool,
                 assignment_id: int = 4242) -> Path:
    base = f"assignment_{assignment_id}_export"
    members = {f"{base}/submission_metadata.yml": metadata_yaml(submissions).encode("utf-8")}
    for submission in submissions:
        for path, data in submission.files.items():
            members[f"{base}/submission_{submission.submission_id}/{path}"] = data
    if as_zip:
        path = root / f"{base}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for member, data in members.items():
                archive.writestr(member, data)
        return path
    folder = root / "export"
    for member, data in members.items():
        target = folder / member
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


GRADES_HEADER = ["First Name", "Last Name", "SID", "Email", "Sections", "Total Score", "Max Points", "Status",
                 "Submission ID", "Submission Time", "Lateness (H:M:S)", "View Count", "Submission Count"]


def write_grades(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, GRADES_HEADER)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in GRADES_HEADER})
    return path
