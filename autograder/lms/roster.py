"""The class roster from the LMS's own export, and the join of a download's entries to it.

``read_roster(path)`` reads one of the LMS's own files, recognised from its header (or chosen with
``format=``), one reader class per format in ``ROSTER_FORMATS``:

``canvas-gradebook``
    Gradebook > Export: ``Student, ID, [SIS User ID,] SIS Login ID, [Integration ID,] Section, ...``
    (``LastName, FirstName`` instead of ``Student`` when the course splits names), then a
    ``Points Possible`` row and possibly a ``Manual Posting`` row (lib/gradebook_exporter.rb). Canvas's test
    student ("Student, Test") is skipped. Comma or semicolon separated, as Canvas's importer accepts.
``moodle-worksheet``
    Assignment > "Download grading worksheet": ``Identifier`` ("Participant 731904", the participant id
    the download's folder names carry), ``Full name``, identity fields such as ``Email address``, ``Status``,
    ``Last modified (submission)``... (mod/assign/gradingtable.php). The best Moodle roster: it joins by id.
``moodle-participants``
    Participants > "Download table data as" CSV: ``First name``, ``Last name`` and the site's identity
    fields (``Email address``, ``ID number``, ``Username``; user/action_redir.php). It has no participant id,
    so Moodle downloads (which carry names and participant ids only) join to it by unique full name.
``gradescope-roster``
    Roster > download, or an assignment's "Download Grades" CSV: ``First Name``/``Last Name`` or ``Name``,
    ``SID``, ``Email``, ``Role`` (staff rows are skipped), ``Sections``, and in the grades file
    ``Status``, ``Submission Time`` and ``Lateness (H:M:S)``.

``join_roster(entries, roster)`` pairs each entry with one student: by the LMS id first (Canvas user id,
Moodle participant id, Gradescope SID), then by email, then login, then SIS id; Moodle participants, which
carry neither, by a full name that is unique on both sides. A fallback that would pair an entry with two
students, or two entries with one student, pairs nothing and is reported.

Example:
    >>> roster = read_roster(Path("2024-09-30T1201_Grades-CS101.csv"))
    >>> joined = join_roster(download.entries, roster)
    >>> [(m.entry.key, m.student.display_name, m.matched_by) for m in joined.matched][:1]
    [('canvas:12345', 'Doe, Jane', 'id')]
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable
from zoneinfo import ZoneInfo

from .identity import identity_key
from .intake import Entry

MAX_ROSTER_BYTES = 32 * 1024 * 1024
MAX_ROWS = 100_000
csv.field_size_limit(8 * 1024 * 1024)


class RosterError(ValueError):
    """The roster file cannot be read as the LMS export it should be: the TA's to fix."""


@dataclass(frozen=True)
class RosterStudent:
    """One student as the LMS's export lists them.

    Attributes:
        lms: ``"canvas"``, ``"moodle"`` or ``"gradescope"``.
        user_id: the LMS id the downloads carry (Canvas ID, Moodle participant id, Gradescope SID or email);
            None when the export has none (Moodle participants).
        display_name: the name as exported (Canvas: "Doe, Jane").
        email, login, sis_id, section: as exported, None when absent.
        status: the LMS's submission status when the export has one (Moodle, Gradescope).
        submitted_at: the LMS's submission time when the export has one and it can be read (timezone-aware).
        lateness: Gradescope's "Lateness (H:M:S)", when present.
        row: the line of the file the student came from (1 is the header).
    """

    lms: str
    user_id: str | None
    display_name: str
    email: str | None = None
    login: str | None = None
    sis_id: str | None = None
    section: str | None = None
    status: str | None = None
    submitted_at: datetime | None = None
    lateness: timedelta | None = None
    row: int = 0

    @property
    def key(self) -> str | None:
        """``"<lms>:<user id>"``, or None without a user id."""
        return identity_key(self.lms, self.user_id) if self.user_id else None


@dataclass
class Roster:
    """A roster file read.

    Attributes:
        format: the reader's name (``ROSTER_FORMATS``).
        students: in file order.
        skipped: ``"line N: <reason>"`` for rows that are not students (points possible, staff, test student).
    """

    format: str
    students: list[RosterStudent]
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Match:
    """An entry paired with its roster student, and which field paired them (``id``, ``email``, ...)."""

    entry: Entry
    student: RosterStudent
    matched_by: str

    @property
    def submitted_at(self) -> datetime | None:
        """The download's submission time, or else the roster's (Moodle worksheet, Gradescope grades)."""
        return self.entry.submitted_at or self.student.submitted_at


@dataclass
class Joined:
    """The result of ``join_roster``.

    Attributes:
        matched: entries paired with a student, in entry order.
        missing: roster students without a submission, in roster order.
        unknown: entries without a roster student, in entry order.
        notes: why a fallback match was refused (ambiguous), for the TA.
    """

    matched: list[Match]
    missing: list[RosterStudent]
    unknown: list[Entry]
    notes: list[str] = field(default_factory=list)


def read_roster(path: Path, *, format: str | None = None, timezone: str | None = None) -> Roster:
    """Read a roster exported by the LMS.

    Args:
        path: the CSV as the LMS exported it.
        format: one of ``ROSTER_FORMATS``' names; None recognises it from the header.
        timezone: an IANA zone (``"Europe/Berlin"``) for times the file writes without an offset (Moodle's
            "Last modified (submission)"); without it such times are left out (never guessed).

    Returns:
        A ``Roster``.

    Raises:
        RosterError: the file is missing, too large, not UTF-8, or its header matches no format (the
            message names the columns found and those expected).
        ValueError: an unknown ``format`` name.

    Example:
        >>> read_roster(Path("grading_worksheet.csv")).format
        'moodle-worksheet'
    """
    if format is not None and format not in ROSTER_FORMATS:
        raise ValueError(f"Unknown roster format {format!r}; choose one of {', '.join(ROSTER_FORMATS)}.")
    zone = ZoneInfo(timezone) if timezone else None
    rows = _read_csv(Path(path))
    if not rows:
        raise RosterError(f"{path} is empty; export the roster from the LMS again.")
    header = [cell.strip() for cell in rows[0]]
    readers = [ROSTER_FORMATS[format]] if format else list(ROSTER_FORMATS.values())
    for reader in readers:
        if reader.recognise(header):
            return reader.read(header, rows[1:], zone)
    if format:
        raise RosterError(f"{path} does not look like a {format} file: its columns are {_columns(header)}; "
                          f"expected {ROSTER_FORMATS[format].expected}.")
    expected = "; ".join(f"{name}: {reader.expected}" for name, reader in ROSTER_FORMATS.items())
    raise RosterError(f"{path} is not a roster export known here: its columns are {_columns(header)}. Expected "
                      f"one of {expected}. Export it from the LMS again without editing its header.")


def join_roster(entries: Iterable[Entry], roster: Roster) -> Joined:
    """Pair each entry of a download with its student on the roster.

    Args:
        entries: a download's entries (``Download.entries``).
        roster: from ``read_roster``.

    Returns:
        ``Joined``: the pairs, the students without a submission, the submissions without a student.

    Example:
        >>> joined = join_roster(download.entries, roster)
        >>> len(joined.matched) + len(joined.unknown) == len(download.entries)
        True
    """
    entries = list(entries)
    students = list(roster.students)
    indexes: dict[str, dict[str, list[int]]] = {name: {} for name in ("id", "email", "login", "sis_id", "name")}
    for position, student in enumerate(students):
        for name, value in _student_keys(student):
            indexes[name].setdefault(value, []).append(position)
    entry_keys = [dict(_entry_keys(entry)) for entry in entries]
    # How many entries claim each value, so a fallback shared by two entries pairs neither.
    claims: dict[tuple[str, str], int] = {}
    for keys in entry_keys:
        for name, value in keys.items():
            claims[(name, value)] = claims.get((name, value), 0) + 1
    taken: set[int] = set()
    matched, unknown, notes = [], [], []
    for entry, keys in zip(entries, entry_keys):
        found = None
        for name in ("id", "email", "login", "sis_id", "name"):
            value = keys.get(name)
            if value is None or value not in indexes[name]:
                continue
            positions = [p for p in indexes[name][value] if p not in taken]
            if len(indexes[name][value]) > 1 or claims[(name, value)] > 1:
                notes.append(f"{entry.key}: its {name} {value!r} fits {len(indexes[name][value])} roster rows and "
                             f"{claims[(name, value)]} submissions; not paired by {name}")
                continue
            if positions:
                found = (positions[0], name)
                break
        if found is None:
            unknown.append(entry)
            continue
        taken.add(found[0])
        matched.append(Match(entry, students[found[0]], found[1]))
    missing = [student for position, student in enumerate(students) if position not in taken]
    return Joined(matched, missing, unknown, notes)


# -- readers ------------------------------------------------------------------------------------------------

class RosterFormat:
    """One LMS export: how to recognise its header and read its rows."""

    name = ""
    lms = ""
    expected = ""

    def recognise(self, header: list[str]) -> bool:
        raise NotImplementedError

    def read(self, header: list[str], rows: list[list[str]], zone: ZoneInfo | None) -> Roster:
        raise NotImplementedError


# https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807
# https://github.com/instructure/canvas-lms/blob/master/lib/gradebook_exporter.rb
class CanvasGradebookRoster(RosterFormat):
    name = "canvas-gradebook"
    lms = "canvas"
    expected = "Student (or LastName, FirstName), ID, [SIS User ID,] SIS Login ID, Section, ..."

    def recognise(self, header):
        return (len(header) > 3 and "Student" in header[0] and header[1] == "ID" and "Section" in header) or (
            len(header) > 4 and header[0] == "LastName" and header[1] == "FirstName" and header[2] == "ID")

    def read(self, header, rows, zone):
        split_names = header[0] == "LastName"
        column = {name: header.index(name) for name in ("ID", "SIS User ID", "SIS Login ID", "Section")
                  if name in header}
        roster = Roster(self.name, [])
        for line, row in enumerate(rows, start=2):
            first = _cell(row, 0) or ""
            if "Points Possible" in first:
                roster.skipped.append(f"line {line}: the Points Possible row")
                continue
            if all(re.fullmatch(r"\s*(Muted|Manual Posting.*)?\s*", cell or "", re.I) for cell in row):
                roster.skipped.append(f"line {line}: the Muted / Manual Posting row")
                continue
            name = f"{_cell(row, 0) or ''}, {_cell(row, 1) or ''}".strip(", ") if split_names else _unguard(first)
            user_id = _cell(row, column["ID"])
            if name == "Student, Test":
                roster.skipped.append(f"line {line}: Canvas's test student")
                continue
            if not user_id:
                roster.skipped.append(f"line {line}: no Canvas ID")
                continue
            roster.students.append(RosterStudent(
                "canvas", user_id, _nfc(name), email=None, login=_cell(row, column.get("SIS Login ID")),
                sis_id=_cell(row, column.get("SIS User ID")), section=_cell(row, column.get("Section")), row=line))
        return roster


# https://docs.moodle.org/401/en/Assignment_settings ("Offline grading worksheet")
# https://github.com/moodle/moodle/blob/main/mod/assign/gradingtable.php
MOODLE_PARTICIPANT = re.compile(r"^Participant\s*(\d+)$")
MOODLE_DATE_FORMAT = "%A, %d %B %Y, %I:%M %p"  # strftimedatetime, as userdate() writes it in English


class MoodleWorksheetRoster(RosterFormat):
    name = "moodle-worksheet"
    lms = "moodle"
    expected = "Identifier, Full name, [Email address,] Status, Grade, ..., Last modified (grade)"

    def recognise(self, header):
        return "Identifier" in header and "Grade" in header

    def read(self, header, rows, zone):
        roster = Roster(self.name, [])
        find = {name: header.index(name) for name in header}
        for line, row in enumerate(rows, start=2):
            identifier = _cell(row, find["Identifier"]) or ""
            match = MOODLE_PARTICIPANT.match(identifier)
            if not match:
                roster.skipped.append(f"line {line}: identifier {identifier[:40]!r} is not 'Participant <number>'")
                continue
            roster.students.append(RosterStudent(
                "moodle", match.group(1), _nfc(_cell(row, find.get("Full name")) or identifier),
                email=_cell(row, find.get("Email address")), login=_cell(row, find.get("Username")),
                sis_id=_cell(row, find.get("ID number")), status=_cell(row, find.get("Status")),
                submitted_at=_moodle_time(_cell(row, find.get("Last modified (submission)")), zone), row=line))
        return roster


class MoodleParticipantsRoster(RosterFormat):
    name = "moodle-participants"
    lms = "moodle"
    expected = "First name, Last name, [Email address, ID number, Username]"

    def recognise(self, header):
        return "First name" in header and "Last name" in header

    def read(self, header, rows, zone):
        roster = Roster(self.name, [])
        find = {name: header.index(name) for name in header}
        for line, row in enumerate(rows, start=2):
            first, last = _cell(row, find["First name"]) or "", _cell(row, find["Last name"]) or ""
            if not (first or last):
                roster.skipped.append(f"line {line}: no name")
                continue
            roster.students.append(RosterStudent(
                "moodle", None, _nfc(f"{first} {last}".strip()), email=_cell(row, find.get("Email address")),
                login=_cell(row, find.get("Username")), sis_id=_cell(row, find.get("ID number")), row=line))
        return roster


# https://guides.gradescope.com/hc/en-us/articles/21926598776333-Adding-Students-and-Staff
# (and the "Download Grades" CSV of an assignment: Review Grades > Download Grades)
class GradescopeRoster(RosterFormat):
    name = "gradescope-roster"
    lms = "gradescope"
    expected = "Name (or First Name, Last Name), SID, Email, [Role, Sections, Status, Submission Time]"

    def recognise(self, header):
        has_name = "Name" in header or ("First Name" in header and "Last Name" in header)
        return has_name and "Email" in header and ("SID" in header or "Role" in header or "Total Score" in header)

    def read(self, header, rows, zone):
        roster = Roster(self.name, [])
        find = {name: header.index(name) for name in header}
        sections = find.get("Sections", find.get("section_name"))
        for line, row in enumerate(rows, start=2):
            role = (_cell(row, find.get("Role")) or "Student").strip()
            if role.lower() != "student":
                roster.skipped.append(f"line {line}: role {role!r}, not a student")
                continue
            name = _cell(row, find.get("Name")) if "Name" in find else \
                f"{_cell(row, find['First Name']) or ''} {_cell(row, find['Last Name']) or ''}".strip()
            sid, email = _cell(row, find.get("SID")), _cell(row, find.get("Email"))
            if not (sid or email):
                roster.skipped.append(f"line {line}: neither SID nor Email")
                continue
            roster.students.append(RosterStudent(
                "gradescope", sid or email, _nfc(name or ""), email=email, sis_id=sid,
                section=_cell(row, sections), status=_cell(row, find.get("Status")),
                submitted_at=_gradescope_time(_cell(row, find.get("Submission Time"))),
                lateness=_hms(_cell(row, find.get("Lateness (H:M:S)"))), row=line))
        return roster


# Order matters: the Moodle worksheet also has "First name"-free headers; Gradescope's are capitalised.
ROSTER_FORMATS: dict[str, RosterFormat] = {reader.name: reader for reader in (
    CanvasGradebookRoster(), MoodleWorksheetRoster(), GradescopeRoster(), MoodleParticipantsRoster())}


# -- helpers ------------------------------------------------------------------------------------------------

def _read_csv(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise RosterError(f"{path} does not exist; give the CSV file the LMS exported.")
    if path.stat().st_size > MAX_ROSTER_BYTES:
        raise RosterError(f"{path} is {path.stat().st_size:,} bytes; a roster is at most {MAX_ROSTER_BYTES:,}.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RosterError(f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at {error.start}); "
                          "export it again, or save it as 'CSV UTF-8'.") from None
    first_line = text.split("\n", 1)[0]
    # Canvas's importer accepts ',' or ';'; Moodle offers ',', ';', ':' and tab.
    delimiter = max(",;\t", key=first_line.count) if any(c in first_line for c in ",;\t") else ","
    rows = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if len(rows) > MAX_ROWS:
                raise RosterError(f"{path} has more than {MAX_ROWS:,} rows; a class roster is smaller.")
            if any(cell.strip() for cell in row):
                rows.append(row)
    except csv.Error as error:
        raise RosterError(f"{path} is not valid CSV ({error}); export it from the LMS again.") from None
    return rows


def _cell(row: list[str], index: int | None) -> str | None:
    if index is None or index >= len(row):
        return None
    value = row[index].strip()
    return value or None


def _unguard(name: str) -> str:
    """Canvas writes a name starting with '=' as ="name" so spreadsheets do not run it."""
    match = re.fullmatch(r'="(.*)"', name.strip(), re.S)
    return match.group(1) if match else name.strip()


def _columns(header: list[str]) -> str:
    return ", ".join(repr(cell[:40]) for cell in header[:12]) + (" ..." if len(header) > 12 else "")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _fold(text: str | None) -> str | None:
    return _nfc(text).casefold().strip() if text else None


def _name_key(text: str | None) -> str | None:
    return " ".join(_fold(text).replace(",", " ").split()) if text else None


def _student_keys(student: RosterStudent):
    if student.user_id:
        yield "id", f"{student.lms}:{student.user_id}"
    if student.email:
        yield "email", _fold(student.email)
    if student.login:
        yield "login", _fold(student.login)
    if student.sis_id:
        yield "sis_id", student.sis_id
    if student.lms == "moodle" and student.user_id is None:
        yield "name", f"moodle:{_name_key(student.display_name)}"


def _entry_keys(entry: Entry):
    yield "id", entry.key
    if entry.email:
        yield "email", _fold(entry.email)
    if entry.login:
        yield "login", _fold(entry.login)
    if entry.sis_id:
        yield "sis_id", entry.sis_id
    if entry.lms == "moodle":
        yield "name", f"moodle:{_name_key(entry.display_name)}"


def _moodle_time(value: str | None, zone: ZoneInfo | None) -> datetime | None:
    if not value or value == "-" or zone is None:
        return None
    try:
        return datetime.strptime(value, MOODLE_DATE_FORMAT).replace(tzinfo=zone)
    except ValueError:
        return None


def _gradescope_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        return None
    return parsed


def _hms(value: str | None) -> timedelta | None:
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2})", value or "")
    if not match:
        return None
    hours, minutes, seconds = (int(part) for part in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)
