"""Moodle: "Download all submissions" zips, grading worksheets and participants CSVs, built as Moodle builds them.

Rules (moodle/moodle):
* mod/assign/classes/downloader.php (4.1+): prefix ``clean_filename(str_replace('_', ' ', fullname) . '_' .
  uniqueid)``; in folders ``<prefix>_assignsubmission_file/<path>``; flat ``<prefix>_assignsubmission_file_<name>``.
  mod/assign/locallib.php (3.1-4.0): folders end with ``_`` (``<prefix>_assignsubmission_file_/<path>``).
* mod/assign/gradingtable.php + lang/en/assign.php: worksheet columns Identifier ("Participant <id>"), Full name,
  identity fields (Email address), Status, Grade, Maximum Grade, Grade can be changed, Last modified (submission),
  Last modified (grade), Feedback comments.
* user/action_redir.php download_participants: First name, Last name, identity fields (Email address, ID number).
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path


def clean_filename(name: str) -> str:
    """Moodle's PARAM_FILE cleaning, the part that matters for names: path and control characters removed."""
    return re.sub(r'[\x00-\x1f/\\:*?"<>|]', "", name)


@dataclass
class MoodleUpload:
    full_name: str
    participant_id: int
    files: dict[str, bytes]  # path as uploaded (may contain "/") -> bytes
    plugin: str = "file"


def prefix(upload: MoodleUpload) -> str:
    return clean_filename(upload.full_name.replace("_", " ") + "_" + str(upload.participant_id))


def build_download(root: Path, uploads: list[MoodleUpload], *, folders: bool, version: str = "4.1",
                   as_zip: bool, name: str = "CS101-Hello MNIST-42") -> Path:
    members: dict[str, bytes] = {}
    for upload in uploads:
        plugin = f"assignsubmission_{upload.plugin}"
        for path, data in upload.files.items():
            if folders:
                folder = f"{prefix(upload)}_{plugin}" + ("_" if version < "4.1" else "")
                members[f"{folder}/{path}"] = data
            else:
                members[clean_filename(f"{prefix(upload)}_{plugin}_{path.rsplit('/', 1)[-1]}")] = data
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


WORKSHEET_HEADER = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                    "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]


def write_worksheet(path: Path, rows: list[dict[str, str]]) -> Path:
    """A grading worksheet as the assign grading table downloads it (English strings)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, WORKSHEET_HEADER)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in WORKSHEET_HEADER})
    return path


def write_participants(path: Path, rows: list[dict[str, str]]) -> Path:
    header = ["First name", "Last name", "Email address", "ID number"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in header})
    return path
