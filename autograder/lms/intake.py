"""Intake of real LMS downloads: recognise the layout of a Canvas, Moodle or Gradescope download and read it.

``read_download(path)`` takes the download exactly as the LMS produced it (the zip, or the folder it was
unpacked into), recognises its layout from the names inside, and returns one ``Entry`` per student: the
student's identity as the LMS gives it, the files of the attempt to grade (the latest), and the older
attempts the download shows. Nothing is extracted; files are named by locators (see ``archive``).

Layouts, one class each in ``LAYOUTS`` (``layout=`` picks one by name):

``canvas``
    "Download Submissions": every file flat, named by Canvas's ``ContentZipper``
    (``lib/content_zipper.rb``)::

        <lastfirst>_[LATE_]<user id>_<attachment id>_<file name>     e.g. doejane_LATE_12345_678901_hello_mnist.py
        [LATE_]anon_<anonymous id>_<attachment id>_<file name>       anonymous grading
        <lastfirst>_[LATE_]<user id>_text.html | _link.html          text entry / URL submissions (no file)

    ``<lastfirst>`` is the sortable name ("Doe, Jane") lower-cased with every non-word character removed
    (Unicode letters stay: ``müllerjürgen``); for a group assignment it is the group's name and the id is the
    group representative's. The number after the user id is the id of the uploaded file (the brief called it
    the submission id; Canvas's own re-upload parser reads it as the attachment id). Canvas appends ``-N``
    before the extension when a student uploads a file whose name they used before
    (``Attachment.make_unique_filename``: ``hello_mnist-1.py``, up to ``-7``, then ``-<uuid>``), so the
    highest ``N`` (then the highest attachment id) is graded and the other copies are recorded as superseded
    attempts (attempt = N + 1). The download holds no times: ``submitted_at`` is None and ``late`` is
    Canvas's ``LATE_`` marker.
``moodle``
    "Download all submissions" with "Download submissions in folders" on (Moodle 3.1+ default;
    ``mod/assign/classes/downloader.php``): one folder per participant and submission plugin::

        <Full Name>_<participant id>_assignsubmission_file/<files as uploaded>      Moodle 4.1+
        <Full Name>_<participant id>_assignsubmission_file_/<files as uploaded>     Moodle 3.1-4.0

    The participant id is the assignment's ``get_uniqueid_for_user`` (the number in the grading
    worksheet's "Participant 731904"), not the Moodle user id. Underscores in names become spaces.
    ``assignsubmission_onlinetext`` folders are ignored (nothing to run). Team submissions use the group's
    name and, in 4.1+, the group id. Moodle ships only the latest attempt and no times.
``moodle-flat``
    The same download with "Download submissions in folders" off: files flat, named
    ``<Full Name>_<participant id>_assignsubmission_file_<file name>``.
``gradescope``
    "Export Submissions": ``submission_metadata.yml`` (usually under ``assignment_<id>_export/``) beside
    one ``submission_<id>/`` folder per active submission. The YAML maps each folder to ``:submitters``
    (``:name``, ``:sid``, ``:email``), ``:created_at`` and ``:history`` (earlier attempts: times and scores,
    no files). A group submission gives one entry per submitter, sharing files and ``group_id``.

Example:
    >>> download = read_download(Path("CS101-hello-mnist_submissions.zip"))
    >>> download.layout, download.entries[0].key, sorted(download.entries[0].files)
    ('canvas', 'canvas:12345', ['hello_mnist.py', 'model.keras'])
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

import yaml

from .archive import Listing, Member, MemberError, list_download, read_bytes
from .identity import identity_key, safe_folder_name

MAX_METADATA_BYTES = 32 * 1024 * 1024  # submission_metadata.yml of a class of thousands
WRAPPER_LEVELS = 2  # folders the download may sit in (Gradescope's assignment_<id>_export/, an unzip target)


class UnknownLayoutError(ValueError):
    """The path is not a download in any layout known here (or not in the one asked for): the TA's to fix."""


@dataclass(frozen=True)
class Attempt:
    """One attempt of a student, as far as the download shows it.

    Attributes:
        attempt: 1 for the first attempt; larger is later.
        submitted_at: when the LMS received it (timezone-aware), None when the download does not say.
        late: the LMS's own late marker (Canvas's ``LATE_``), None when the layout has none.
        files: file name as the student named it (LMS prefix and ``-N`` suffix removed, relative POSIX path
            for files in sub-folders) -> locator. Empty when the LMS shipped no files for this attempt
            (Gradescope's history).
        submission_id: the LMS's id of this submission or upload, when the layout carries one.
        lms_names: file name as the student named it -> the name it had in the download.
    """

    attempt: int
    submitted_at: datetime | None = None
    late: bool | None = None
    files: dict[str, str] = field(default_factory=dict)
    submission_id: str | None = None
    lms_names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """One student's submission in a download: identity from the LMS, the attempt to grade, older attempts.

    Attributes:
        lms: ``"canvas"``, ``"moodle"`` or ``"gradescope"``.
        user_id: the LMS's id (Canvas user id or ``anon_<id>``, Moodle participant id, Gradescope SID or
            the email when there is no SID).
        display_name: the name exactly as the download gives it (Unicode NFC), for people to read only.
        email, login, sis_id: when the layout carries them (Gradescope: email, and the SID as ``sis_id``).
        submitted_at, late, attempt, files, submission_id, lms_names: those of the attempt to grade (see
            ``Attempt``).
        superseded: older attempts, oldest first.
        group_id: set when the LMS submission belongs to a group (Gradescope: the submission folder).
        anonymous: True when the LMS hid the identity (Canvas anonymous grading).
    """

    lms: str
    user_id: str
    display_name: str
    email: str | None = None
    login: str | None = None
    sis_id: str | None = None
    submitted_at: datetime | None = None
    late: bool | None = None
    attempt: int = 1
    files: dict[str, str] = field(default_factory=dict)
    submission_id: str | None = None
    lms_names: dict[str, str] = field(default_factory=dict)
    superseded: list[Attempt] = field(default_factory=list)
    group_id: str | None = None
    anonymous: bool = False

    @property
    def key(self) -> str:
        """The stable identity string, e.g. ``"canvas:12345"``."""
        return identity_key(self.lms, self.user_id)

    @property
    def safe_folder(self) -> str:
        """A filesystem-safe folder name derived from the identity alone (see ``identity``)."""
        return safe_folder_name(self.lms, self.user_id, self.display_name)

    def as_attempt(self) -> Attempt:
        """The graded attempt as an ``Attempt``."""
        return Attempt(self.attempt, self.submitted_at, self.late, dict(self.files), self.submission_id,
                       dict(self.lms_names))


@dataclass
class Download:
    """A recognised download.

    Attributes:
        layout: the layout's name (``"canvas"``, ``"moodle"``, ``"moodle-flat"``, ``"gradescope"``).
        source: the folder or zip that was read.
        entries: one per student, sorted by ``key``.
        ignored: ``"<path>: <reason>"`` for everything in the download that is not part of an entry.
    """

    layout: str
    source: Path
    entries: list[Entry]
    ignored: list[str]

    def entry(self, key: str) -> Entry:
        """The entry of ``key`` (e.g. ``"canvas:12345"``); KeyError when absent."""
        for entry in self.entries:
            if entry.key == key:
                return entry
        raise KeyError(key)


def read_download(path: Path, *, layout: str | None = None) -> Download:
    """Read an LMS download (a zip or a folder) into one entry per student.

    Args:
        path: the download as the LMS produced it: the ``.zip``, or the folder it was unpacked into.
        layout: one of ``LAYOUTS``' names to insist on; None recognises the layout from the names inside.

    Returns:
        A ``Download``: the layout, one ``Entry`` per student (latest attempt to grade, older ones in
        ``superseded``), and what was ignored with why.

    Raises:
        UnknownLayoutError: no known layout matches (the message says what was found), or the one asked for
            does not.
        DownloadError: the zip is damaged or larger than allowed.
        ValueError: an unknown ``layout`` name.

    Example:
        >>> read_download(Path("hw1.zip"), layout="moodle").entries[0].key
        'moodle:731904'
    """
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)} (or None to recognise "
                         "it from the files).")
    listing = list_download(Path(path))
    candidates = [LAYOUTS[layout]] if layout else list(LAYOUTS.values())
    view = listing
    for _ in range(WRAPPER_LEVELS + 1):
        scores = [(candidate.recognise(view), candidate) for candidate in candidates]
        best = max(score for score, _ in scores)
        if best > 0:
            winners = [candidate for score, candidate in scores if score == best]
            if len(winners) > 1:
                raise UnknownLayoutError(
                    f"{listing.source} matches the layouts {', '.join(w.name for w in winners)} equally well "
                    f"({best} items each); choose one with layout=.")
            chosen = winners[0]
            entries, ignored = chosen.read(view)
            return Download(chosen.name, listing.source, _latest_per_student(entries),
                            sorted(listing.ignored + ignored))
        wrapper = _single_wrapper(view)
        if wrapper is None:
            break
        view = _strip_wrapper(view, wrapper)
    raise UnknownLayoutError(_describe_unknown(listing, layout))


# -- layouts ------------------------------------------------------------------------------------------------

class Layout:
    """One download layout: how to recognise it and how to read it. Subclasses fill ``name`` and ``lms``."""

    name = ""
    lms = ""
    pattern_help = ""

    def recognise(self, listing: Listing) -> int:
        """How many top-level items of ``listing`` are named like this layout (0: not this layout)."""
        raise NotImplementedError

    def read(self, listing: Listing) -> tuple[list[Entry], list[str]]:
        """The entries (possibly several per student) and the ignored items of a recognised listing."""
        raise NotImplementedError


# Canvas: lib/content_zipper.rb (get_filename, add_upload_submission, sanitize_*), app/models/assignment.rb
# (infer_comment_context_from_filename), app/models/attachment.rb (make_unique_filename)
# https://github.com/instructure/canvas-lms/blob/master/lib/content_zipper.rb
# https://github.com/instructure/canvas-lms/blob/master/app/models/assignment.rb
# <lastfirst> holds word characters only (sanitize_file_name removes the rest, spaces included), which is
# what tells it from Moodle's "<Full Name>_<id>_assignsubmission_file_<name>".
CANVAS_FILE = re.compile(r"^(?P<name>(?:(?!_assignsubmission_)\w)*?)_(?:(?P<late>LATE)_)?(?P<user>\d+)_"
                         r"(?P<attachment>\d+)_(?P<file>.+)$", re.S)
CANVAS_ANONYMOUS_FILE = re.compile(r"^(?:(?P<late>LATE)_)?anon_(?P<anonymous>[A-Za-z0-9]+)_(?P<attachment>\d+)_"
                                   r"(?P<file>.+)$", re.S)
CANVAS_TEXT_OR_LINK = re.compile(r"^(?:(?P<name>\w*?)_)?(?:LATE_)?(?P<user>\d+|anon_[A-Za-z0-9]+)_(?:text|link)\.html$")
# make_unique_filename: "<base>-<N><ext>" with ext = /(\.[A-Za-z][A-Za-z0-9]*)*(\.[A-Za-z0-9]*)$/, N in 1..7,
# then "<base>-<uuid><ext>".
CANVAS_EXTENSION = re.compile(r"(\.[A-Za-z][A-Za-z0-9]*)*(\.[A-Za-z0-9]*)$")
# (older Canvas counted on past 7; three digits at most, so a "-2024" a student wrote is left alone)
CANVAS_COPY_SUFFIX = re.compile(r"^(?P<base>.+?)-(?P<copy>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                                r"[0-9a-f]{12}|[1-9]\d{0,2})$")


def canvas_original_name(name: str) -> tuple[str, int]:
    """The file name a student uploaded, from Canvas's name for it, and Canvas's copy number.

    Canvas renames the N-th re-upload of a name to ``<base>-N<extension>`` (``Attachment.make_unique_filename``),
    so ``hello_mnist-2.py`` is ``("hello_mnist.py", 2)``, ``model.keras`` is ``("model.keras", 0)``, and a
    ``-<uuid>`` copy (after seven) counts as 8.
    """
    match = CANVAS_EXTENSION.search(name)
    extension = match.group(0) if match else ""
    stem = name[: len(name) - len(extension)] if extension else name
    copy = CANVAS_COPY_SUFFIX.match(stem)
    if not copy or not stem:
        return name, 0
    number = copy.group("copy")
    return copy.group("base") + extension, int(number) if number.isdigit() else 8


class CanvasLayout(Layout):
    name = "canvas"
    lms = "canvas"
    pattern_help = "Canvas's <lastfirst>_[LATE_]<userid>_<fileid>_<name> (e.g. doejane_12345_678901_hello_mnist.py)"

    def recognise(self, listing: Listing) -> int:
        return sum(1 for member in _top_files(listing)
                   if CANVAS_FILE.match(member.path) or CANVAS_ANONYMOUS_FILE.match(member.path)
                   or CANVAS_TEXT_OR_LINK.match(member.path))

    def read(self, listing: Listing) -> tuple[list[Entry], list[str]]:
        ignored: list[str] = []
        uploads: dict[str, list[_CanvasFile]] = {}
        for member in listing.members:
            if "/" in member.path:
                ignored.append(f"{member.path}: inside a folder; Canvas downloads are flat")
                continue
            if CANVAS_TEXT_OR_LINK.match(member.path) and not CANVAS_FILE.match(member.path):
                ignored.append(f"{member.path}: a Canvas text entry or URL submission (no file to grade)")
                continue
            anonymous = CANVAS_ANONYMOUS_FILE.match(member.path)
            match = anonymous or CANVAS_FILE.match(member.path)
            if not match:
                ignored.append(f"{member.path}: not named like {self.pattern_help}")
                continue
            user_id = f"anon_{match.group('anonymous')}" if anonymous else match.group("user")
            original, copy = canvas_original_name(match.group("file"))
            uploads.setdefault(user_id, []).append(_CanvasFile(
                original, copy, int(match.group("attachment")), member, "" if anonymous else match.group("name"),
                match.group("late") is not None))
        return [self._entry(user_id, files) for user_id, files in uploads.items()], ignored

    @staticmethod
    def _entry(user_id: str, files: list[_CanvasFile]) -> Entry:
        # The newest copy of each name is graded: the highest -N, then the highest (newest) attachment id;
        # older copies become superseded attempts, numbered N + 1 as Canvas counted the uploads.
        newest: dict[str, _CanvasFile] = {}
        older: dict[int, Attempt] = {}
        for upload in sorted(files, key=lambda upload: (upload.name, upload.copy, upload.attachment_id)):
            previous = newest.get(upload.name)
            if previous is not None:
                attempt = older.setdefault(previous.copy, Attempt(previous.copy + 1, None, previous.late))
                attempt.files[previous.name] = previous.member.locator
                attempt.lms_names[previous.name] = previous.member.path
            newest[upload.name] = upload
        anonymous = user_id.startswith("anon_")
        return Entry(
            lms="canvas", user_id=user_id,
            display_name=f"Anonymous {user_id[5:]}" if anonymous else _nfc(min(u.lastfirst for u in newest.values())),
            late=any(upload.late for upload in newest.values()),
            attempt=1 + max(upload.copy for upload in newest.values()),
            files={name: upload.member.locator for name, upload in sorted(newest.items())},
            lms_names={name: upload.member.path for name, upload in sorted(newest.items())},
            superseded=[older[copy] for copy in sorted(older)], anonymous=anonymous)


@dataclass(frozen=True)
class _CanvasFile:
    name: str  # as the student named it
    copy: int  # Canvas's -N
    attachment_id: int
    member: Member
    lastfirst: str
    late: bool


# Moodle: mod/assign/classes/downloader.php (4.1+), mod/assign/locallib.php download_submissions (3.1-4.0)
# https://github.com/moodle/moodle/blob/main/mod/assign/classes/downloader.php
# https://github.com/moodle/moodle/blob/main/mod/assign/locallib.php
# https://docs.moodle.org/401/en/Assignment_settings ("Download submissions in folders")
MOODLE_FOLDER = re.compile(r"^(?P<name>[^_/]*)_(?P<participant>\d+)_assignsubmission_(?P<plugin>[a-z0-9]+)_?$")
MOODLE_FLAT_FILE = re.compile(r"^(?P<name>[^_/]*)_(?P<participant>\d+)_assignsubmission_(?P<plugin>[a-z0-9]+)_"
                              r"(?P<file>[^/]+)$", re.S)


class MoodleLayout(Layout):
    name = "moodle"
    lms = "moodle"
    pattern_help = ("Moodle's <Full Name>_<participant id>_assignsubmission_file folders "
                    "(e.g. 'Jane Doe_731904_assignsubmission_file/')")

    def recognise(self, listing: Listing) -> int:
        folders = {member.path.split("/", 1)[0] for member in listing.members if "/" in member.path}
        return sum(1 for folder in folders if MOODLE_FOLDER.match(folder))

    def read(self, listing: Listing) -> tuple[list[Entry], list[str]]:
        ignored: list[str] = []
        grouped: dict[str, dict] = {}
        for member in listing.members:
            folder, _, inside = member.path.partition("/")
            match = MOODLE_FOLDER.match(folder) if inside else None
            if not match:
                ignored.append(f"{member.path}: not inside a folder named like {self.pattern_help}")
                continue
            if match.group("plugin") != "file":
                ignored.append(f"{member.path}: Moodle's {match.group('plugin')} submission (not a file to run)")
                continue
            record = grouped.setdefault(match.group("participant"), {"names": set(), "files": {}, "lms": {}})
            record["names"].add(match.group("name"))
            record["files"][inside] = member.locator
            record["lms"][inside] = member.path
        return _moodle_entries(grouped), ignored


class MoodleFlatLayout(Layout):
    name = "moodle-flat"
    lms = "moodle"
    pattern_help = ("Moodle's <Full Name>_<participant id>_assignsubmission_file_<name> "
                    "(e.g. 'Jane Doe_731904_assignsubmission_file_hello_mnist.py')")

    def recognise(self, listing: Listing) -> int:
        return sum(1 for member in _top_files(listing) if MOODLE_FLAT_FILE.match(member.path))

    def read(self, listing: Listing) -> tuple[list[Entry], list[str]]:
        ignored: list[str] = []
        grouped: dict[str, dict] = {}
        for member in listing.members:
            match = MOODLE_FLAT_FILE.match(member.path)
            if not match:
                ignored.append(f"{member.path}: not named like {self.pattern_help}")
                continue
            if match.group("plugin") != "file":
                ignored.append(f"{member.path}: Moodle's {match.group('plugin')} submission (not a file to run)")
                continue
            record = grouped.setdefault(match.group("participant"), {"names": set(), "files": {}, "lms": {}})
            record["names"].add(match.group("name"))
            record["files"][match.group("file")] = member.locator
            record["lms"][match.group("file")] = member.path
        return _moodle_entries(grouped), ignored


def _moodle_entries(grouped: dict[str, dict]) -> list[Entry]:
    return [Entry(lms="moodle", user_id=participant, display_name=_nfc(sorted(record["names"])[0]),
                  files=dict(sorted(record["files"].items())), lms_names=dict(sorted(record["lms"].items())))
            for participant, record in grouped.items()]


# Gradescope: "Export Submissions" (Assignment > Review Grades > Export Submissions)
# https://guides.gradescope.com/hc/en-us/articles/22066784117901-Grading-Online-Assignments ("Exporting Submission Data")
# https://gradescope-autograders.readthedocs.io/en/latest/submission_metadata/ (the same fields, as JSON)
GRADESCOPE_METADATA = "submission_metadata.yml"
# Ruby's YAML time: 2023-09-20 23:18:40.180402000 -07:00 (also ISO 8601 with T and Z)
RUBY_TIME = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
                       r"\s*(?P<zone>Z|UTC|[+-]\d{2}:?\d{2})?$")


class GradescopeLayout(Layout):
    name = "gradescope"
    lms = "gradescope"
    pattern_help = "Gradescope's submission_metadata.yml beside submission_<id>/ folders"

    def recognise(self, listing: Listing) -> int:
        if not any(member.path == GRADESCOPE_METADATA for member in listing.members):
            return 0
        # The metadata file is decisive, whatever else is there.
        return max(1, len(listing.members))

    def read(self, listing: Listing) -> tuple[list[Entry], list[str]]:
        ignored: list[str] = []
        metadata_member = next(member for member in listing.members if member.path == GRADESCOPE_METADATA)
        metadata = _load_gradescope_metadata(metadata_member)
        folders: dict[str, dict[str, Member]] = {}
        for member in listing.members:
            if member.path == GRADESCOPE_METADATA:
                continue
            folder, _, inside = member.path.partition("/")
            if not inside and PurePosixPath(folder).stem in metadata:
                # Submissions of PDF assignments come as submission_<id>.pdf beside the metadata.
                folder, inside = PurePosixPath(folder).stem, folder
            if not inside or folder not in metadata:
                ignored.append(f"{member.path}: not in a submission folder listed in {GRADESCOPE_METADATA}")
                continue
            folders.setdefault(folder, {})[inside] = member
        entries = []
        for folder, record in sorted(metadata.items()):
            if not isinstance(record, dict):
                ignored.append(f"{GRADESCOPE_METADATA}: the entry for {folder} is not a mapping")
                continue
            files = folders.get(folder, {})
            if not files:
                ignored.append(f"{folder}/: listed in {GRADESCOPE_METADATA} but the export has no files for it")
            submitters = _field(record, "submitters") or []
            submitted_at = _gradescope_time(_field(record, "created_at"))
            history = []
            for index, previous in enumerate(sorted(
                    (item for item in (_field(record, "history") or []) if isinstance(item, dict)),
                    key=lambda item: (_gradescope_time(_field(item, "created_at")) or _EPOCH))):
                history.append(Attempt(index + 1, _gradescope_time(_field(previous, "created_at")), None, {},
                                       _text(_field(previous, "id"))))
            people = [person for person in submitters if isinstance(person, dict)]
            if not people:
                ignored.append(f"{folder}/: {GRADESCOPE_METADATA} names no submitter for it")
                continue
            group = folder if len(people) > 1 else None
            submission_id = folder.removeprefix("submission_") if folder.startswith("submission_") else folder
            for person in people:
                sid, email = _text(_field(person, "sid")), _text(_field(person, "email"))
                user_id = sid or email
                if not user_id:
                    ignored.append(f"{folder}/: a submitter without SID or email ({_text(_field(person, 'name'))!r})")
                    continue
                entries.append(Entry(
                    lms="gradescope", user_id=user_id, display_name=_nfc(_text(_field(person, "name")) or user_id),
                    email=email, sis_id=sid, submitted_at=submitted_at, late=None, attempt=len(history) + 1,
                    files={inside: member.locator for inside, member in sorted(files.items())},
                    submission_id=submission_id,
                    lms_names={inside: member.path for inside, member in sorted(files.items())},
                    superseded=list(history), group_id=group))
        return entries, ignored


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in
                              (CanvasLayout(), MoodleLayout(), MoodleFlatLayout(), GradescopeLayout())}

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# -- helpers ------------------------------------------------------------------------------------------------

def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text or "")


def _text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _field(mapping: dict, name: str):
    """Gradescope writes Ruby symbols (``:name``); accept plain keys too."""
    if f":{name}" in mapping:
        return mapping[f":{name}"]
    return mapping.get(name)


def _gradescope_time(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        return None
    match = RUBY_TIME.match(value.strip())
    if not match:
        return None
    fraction = (match.group("fraction") or "0")[:6].ljust(6, "0")
    zone = match.group("zone") or "Z"
    if zone in ("Z", "UTC"):
        offset = timezone.utc
    else:
        digits = zone.replace(":", "")
        minutes = int(digits[1:3]) * 60 + int(digits[3:5])
        offset = timezone(timedelta(minutes=minutes if digits[0] == "+" else -minutes))
    return datetime.fromisoformat(f"{match.group('date')}T{match.group('time')}.{fraction}").replace(tzinfo=offset)


class _MetadataLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no object construction) with times left as text, parsed by ``_gradescope_time``."""


_MetadataLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _load_gradescope_metadata(member: Member) -> dict:
    try:
        text = read_bytes(member.locator, max_bytes=MAX_METADATA_BYTES).decode("utf-8-sig")
        data = yaml.load(text, Loader=_MetadataLoader)  # noqa: S506 - a SafeLoader subclass
    except MemberError as error:
        raise UnknownLayoutError(f"{GRADESCOPE_METADATA} could not be read: {error}") from None
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        raise UnknownLayoutError(f"{GRADESCOPE_METADATA} is not valid UTF-8 YAML ({type(error).__name__}); "
                                 "export the submissions from Gradescope again.") from None
    if not isinstance(data, dict):
        raise UnknownLayoutError(f"{GRADESCOPE_METADATA} does not map submission folders to their submitters "
                                 f"(it holds a {type(data).__name__}); export the submissions again.")
    return {str(key): value for key, value in data.items()}


def _top_files(listing: Listing) -> list[Member]:
    return [member for member in listing.members if "/" not in member.path]


def _single_wrapper(listing: Listing) -> str | None:
    """The one folder every member sits in, if there is exactly one and nothing beside it."""
    tops = {member.path.split("/", 1)[0] if "/" in member.path else None for member in listing.members}
    if len(tops) == 1 and None not in tops:
        return tops.pop()
    return None


def _strip_wrapper(listing: Listing, wrapper: str) -> Listing:
    prefix = wrapper + "/"
    return Listing(listing.source, listing.kind,
                   [replace(member, path=member.path[len(prefix):]) for member in listing.members],
                   list(listing.ignored))


def _latest_per_student(entries: list[Entry]) -> list[Entry]:
    """One entry per key: the latest attempt graded, every other one recorded as superseded."""
    by_key: dict[str, list[Entry]] = {}
    for entry in entries:
        by_key.setdefault(entry.key, []).append(entry)
    chosen = []
    for key in sorted(by_key):
        candidates = sorted(by_key[key], key=lambda e: (e.submitted_at or _EPOCH, e.attempt, e.submission_id or ""))
        latest = candidates[-1]
        if len(candidates) > 1:
            older = [attempt for candidate in candidates[:-1] for attempt in candidate.superseded + [candidate.as_attempt()]]
            older += latest.superseded
            older.sort(key=lambda attempt: (attempt.submitted_at or _EPOCH, attempt.attempt))
            latest = replace(latest, superseded=older)
        chosen.append(latest)
    return chosen


def _describe_unknown(listing: Listing, layout: str | None) -> str:
    files = [member.path for member in listing.members]
    top_files = [path for path in files if "/" not in path]
    folders = sorted({path.split("/", 1)[0] for path in files if "/" in path})
    found = (f"{len(top_files)} file{'s' if len(top_files) != 1 else ''} and {len(folders)} "
             f"folder{'s' if len(folders) != 1 else ''} at the top")
    examples = ", ".join(repr(name[:60]) for name in (top_files[:3] + [f + "/" for f in folders[:3]])) or "nothing"
    if layout:
        chosen = LAYOUTS[layout]
        return (f"{listing.source} was read as layout={layout!r}, but it holds {found} ({examples}) and none is "
                f"named like {chosen.pattern_help}. Check that this is the {chosen.lms.capitalize()} download "
                "as it was downloaded, or leave layout unset to recognise it.")
    return (f"{listing.source} is not a recognised LMS download: {found} ({examples}); none named like "
            f"{CanvasLayout.pattern_help}, no folder like {MoodleLayout.pattern_help}, no file like "
            f"{MoodleFlatLayout.pattern_help}, and no {GRADESCOPE_METADATA} (Gradescope's export). Give the "
            "zip or folder exactly as the LMS produced it (not renamed or regrouped), or choose layout= "
            f"({', '.join(LAYOUTS)}).")
