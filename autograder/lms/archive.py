"""Read an LMS download, as a folder or as the downloaded zip itself, without trusting it.

A download is listed once, at a bounded cost, into ``Member`` rows (relative path, declared size, locator);
nothing is extracted. For a zip the end-of-central-directory record (22 bytes, or its zip64 variant) is read
before ``zipfile`` parses the directory, so a zip declaring a million entries or a 500 MB directory is refused
for the price of reading 64 KiB. Junk that archivers add (``__MACOSX/``, ``._*`` AppleDouble files,
``.DS_Store``, ``Thumbs.db``) is ignored; absolute paths, ``..``, drive letters, symbolic links and encrypted
members are ignored and listed with the reason. A folder is walked without following links.

A locator says where a member's bytes are:

* a member of a folder download: its absolute path, e.g. ``/data/hw1/doejane_12_34_hello_mnist.py``;
* a member of a zip download: ``zip:<zip path>#<member name>``, both parts percent-encoded
  (``urllib.parse.quote``), e.g. ``zip:/data/hw1/submissions.zip#doejane_12_34_hello_mnist.py``.

``read_bytes(locator, max_bytes=...)`` and ``copy_to(locator, folder, name, max_bytes=...)`` are the only ways
to get at the bytes, and both stop at ``max_bytes`` whatever a zip header claims.

Example:
    >>> listing = list_download(Path("submissions.zip"))
    >>> [member.path for member in listing.members][:1]
    ['doejane_12345_67890_hello_mnist.py']
    >>> read_bytes(listing.members[0].locator, max_bytes=2**20)[:6]
    b'import'
"""

from __future__ import annotations

import os
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote

from ..archives import DAMAGED, ArchiveError, open_zip

MAX_MEMBERS = 20_000  # a class of 1,000 with 20 files each
MAX_DIRECTORY_BYTES = 16 * 1024 * 1024  # about 100,000 central-directory records of typical length
MAX_DEPTH = 16
MAX_NAME_CHARACTERS = 1024
JUNK_FOLDERS = {"__MACOSX"}
JUNK_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}



class DownloadError(ValueError):
    """The download as a whole cannot be read (not a zip, damaged, too many files): the TA's to fix."""


class MemberError(ValueError):
    """One file of the download cannot be read (too large, damaged, gone): one student's problem."""


@dataclass(frozen=True)
class Member:
    """One regular file of a download.

    Attributes:
        path: relative POSIX path inside the download, Unicode NFC (``sub/folder/name.py``).
        size: bytes the file has (for a zip member: the size its header declares, not yet verified).
        locator: where its bytes are; see the module docstring.
    """

    path: str
    size: int
    locator: str


@dataclass
class Listing:
    """Every regular file of a download, and what was left out.

    Attributes:
        source: the folder or zip that was listed.
        kind: ``"folder"`` or ``"zip"``.
        members: the files, sorted by path.
        ignored: ``"<path>: <reason>"`` for each entry left out (junk, links, unsafe names).
    """

    source: Path
    kind: str
    members: list[Member] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def list_download(path: Path, *, max_members: int = MAX_MEMBERS,
                  max_directory_bytes: int = MAX_DIRECTORY_BYTES) -> Listing:
    """List the files of a download folder or zip at a bounded cost.

    Args:
        path: a folder (the unpacked download) or a ``.zip`` file (the download itself).
        max_members: refuse a download with more entries than this.
        max_directory_bytes: refuse a zip whose central directory is larger than this.

    Returns:
        A ``Listing``; nothing is extracted.

    Raises:
        DownloadError: the path does not exist, is neither a folder nor a zip, the zip is damaged, or it
            declares more entries or a larger directory than allowed.

    Example:
        >>> list_download(Path("hw1_submissions")).kind
        'folder'
    """
    path = Path(path)
    if path.is_dir():
        return _list_folder(path.absolute(), max_members)
    if path.is_file():
        return _list_zip(path.absolute(), max_members, max_directory_bytes)
    raise DownloadError(f"{path} does not exist. Give the LMS download: the .zip file as it was downloaded, "
                        "or the folder it was unpacked into.")


def read_bytes(locator: str, *, max_bytes: int) -> bytes:
    """Read one member's bytes, never more than ``max_bytes`` (whatever a zip header declares).

    Args:
        locator: a ``Member.locator``.
        max_bytes: the largest file accepted.

    Returns:
        The file's bytes.

    Raises:
        MemberError: the file is larger than ``max_bytes``, is a link or special file, is gone, or its
            zip entry is damaged or encrypted.

    Example:
        >>> read_bytes("zip:/data/a.zip#doejane_1_2_hello_mnist.py", max_bytes=2**20)[:6]
        b'import'
    """
    if locator.startswith("zip:"):
        zip_path, member = parse_zip_locator(locator)
        try:
            with _open_zip(zip_path, MAX_MEMBERS, MAX_DIRECTORY_BYTES) as archive:
                info = archive.getinfo(member)
                if info.flag_bits & 0x1:
                    raise MemberError(f"{member} is encrypted; it cannot be read.")
                if info.file_size > max_bytes:
                    raise MemberError(_too_large(member, info.file_size, max_bytes))
                with archive.open(info) as handle:
                    data = handle.read(max_bytes + 1)
        except MemberError:
            raise
        except DownloadError as error:
            raise MemberError(str(error)) from None
        except DAMAGED as error:
            raise MemberError(f"{member} could not be read from the zip ({type(error).__name__}); the download "
                              "may be damaged: download it again.") from None
        if len(data) > max_bytes:
            raise MemberError(f"{member} unpacks to more than {max_bytes:,} bytes although its header says "
                              f"{info.file_size:,} (a zip bomb?); it was not read.")
        return data
    return _read_plain_file(Path(locator), max_bytes)


def copy_to(locator: str, folder: Path, name: str, *, max_bytes: int) -> Path:
    """Copy one member into ``folder`` under ``name``, never outside ``folder``.

    Args:
        locator: a ``Member.locator``.
        folder: the target folder (created if missing).
        name: the file name to write, a relative POSIX path (e.g. ``hello_mnist.py``); ``..``, absolute
            paths and links are refused.
        max_bytes: the largest file accepted.

    Returns:
        The path written.

    Raises:
        MemberError: as ``read_bytes``, or ``name`` would land outside ``folder``.

    Example:
        >>> copy_to(member.locator, Path("out/doe-jane_canvas-12"), "hello_mnist.py", max_bytes=2**20)
        PosixPath('out/doe-jane_canvas-12/hello_mnist.py')
    """
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in name:
        raise MemberError(f"{name!r} is not a safe relative file name.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    target = root.joinpath(*parts)
    if root not in target.parents:
        raise MemberError(f"{name!r} would be written outside {folder}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.parent.resolve() != target.parent or target.is_symlink():
        raise MemberError(f"{name!r} would be written through a symbolic link.")
    data = read_bytes(locator, max_bytes=max_bytes)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return target


def zip_locator(zip_path: Path, member: str) -> str:
    """The locator of ``member`` inside ``zip_path`` (see the module docstring)."""
    return f"zip:{quote(str(zip_path))}#{quote(member)}"


def parse_zip_locator(locator: str) -> tuple[Path, str]:
    """Split a ``zip:`` locator into the zip's path and the member name.

    Raises:
        MemberError: the text is not a zip locator.
    """
    if not locator.startswith("zip:") or "#" not in locator:
        raise MemberError(f"{locator!r} is not a zip locator (zip:<path>#<member>).")
    path_part, member_part = locator[4:].split("#", 1)
    return Path(unquote(path_part)), unquote(member_part)


def _too_large(name: str, size: int, limit: int) -> str:
    return f"{name} is {size:,} bytes; the limit is {limit:,} bytes."


def _read_plain_file(path: Path, max_bytes: int) -> bytes:
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
            raise MemberError(f"{path.name} is a link or special file; it was not read.")
        if info.st_size > max_bytes:
            raise MemberError(_too_large(path.name, info.st_size, max_bytes))
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise MemberError(f"{path.name} could not be read ({error.strerror or error}).") from None
    if len(data) > max_bytes:
        raise MemberError(f"{path.name} grew past {max_bytes:,} bytes while it was read; it was not read.")
    return data


def _junk_reason(parts: tuple[str, ...]) -> str | None:
    if any(part in JUNK_FOLDERS for part in parts):
        return "macOS archive metadata (__MACOSX)"
    if parts[-1] in JUNK_FILES:
        return "operating-system metadata"
    if parts[-1].startswith("._"):
        return "macOS AppleDouble metadata"
    return None


def _list_folder(root: Path, max_members: int) -> Listing:
    listing = Listing(source=root, kind="folder")
    seen = 0
    for directory, folders, files in os.walk(root, followlinks=False):
        relative_directory = Path(directory).relative_to(root)
        depth = len(relative_directory.parts)
        for name in sorted(folders):
            if os.path.islink(os.path.join(directory, name)):
                listing.ignored.append(f"{(relative_directory / name).as_posix()}: a symbolic link")
            elif name in JUNK_FOLDERS:
                listing.ignored.append(f"{(relative_directory / name).as_posix()}/: macOS archive metadata (__MACOSX)")
        folders[:] = sorted(name for name in folders
                            if not os.path.islink(os.path.join(directory, name)) and name not in JUNK_FOLDERS)
        if depth >= MAX_DEPTH:
            listing.ignored.append(f"{relative_directory.as_posix()}: nested deeper than {MAX_DEPTH} folders")
            folders[:] = []
            continue
        for name in sorted(files):
            seen += 1
            if seen > max_members:
                raise DownloadError(f"{root} holds more than {max_members:,} files; an LMS download of one "
                                    "assignment is far smaller. Give the download folder itself.")
            relative = unicodedata.normalize("NFC", (relative_directory / name).as_posix())
            full = os.path.join(directory, name)
            reason = _junk_reason(PurePosixPath(relative).parts)
            if reason:
                listing.ignored.append(f"{relative}: {reason}")
                continue
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                listing.ignored.append(f"{relative}: a symbolic link")
                continue
            if not stat.S_ISREG(info.st_mode):
                listing.ignored.append(f"{relative}: not a regular file")
                continue
            listing.members.append(Member(relative, info.st_size, full))
    listing.members.sort(key=lambda member: member.path)
    return listing


def _open_zip(path: Path, max_members: int, max_directory_bytes: int) -> zipfile.ZipFile:
    """The download opened after sizing up its central directory (``archives.open_zip``)."""
    try:
        return open_zip(path, max_entries=max_members, max_directory_bytes=max_directory_bytes)
    except ArchiveError as error:
        raise DownloadError(f"{path.name} was not opened: {error}. Download it again, or give the folder it was "
                            "unpacked into.") from None


def _safe_member_name(name: str) -> tuple[str | None, str]:
    """(relative path, "") for a safe member name, or (None, reason)."""
    if "\x00" in name:
        return None, "a name with a NUL character"
    if len(name) > MAX_NAME_CHARACTERS:
        return None, f"a name longer than {MAX_NAME_CHARACTERS} characters"
    cleaned = name.replace("\\", "/")
    parts = [part for part in cleaned.split("/") if part not in ("", ".")]
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":") or ".." in parts:
        return None, "an absolute path or one that climbs out with '..' (never extracted)"
    if not parts:
        return None, "an empty name"
    if len(parts) > MAX_DEPTH:
        return None, f"nested deeper than {MAX_DEPTH} folders"
    return unicodedata.normalize("NFC", "/".join(parts)), ""


def _list_zip(path: Path, max_members: int, max_directory_bytes: int) -> Listing:
    listing = Listing(source=path, kind="zip")
    by_path: dict[str, Member] = {}
    with _open_zip(path, max_members, max_directory_bytes) as archive:
        try:
            infos = archive.infolist()
        except DAMAGED as error:
            raise DownloadError(f"{path.name} is a damaged zip ({type(error).__name__}).") from None
        for info in infos:
            if info.is_dir():
                continue
            relative, reason = _safe_member_name(info.filename)
            shown = relative or info.filename[:200]
            if relative is None:
                listing.ignored.append(f"{shown}: {reason}")
                continue
            junk = _junk_reason(PurePosixPath(relative).parts)
            if junk:
                listing.ignored.append(f"{relative}: {junk}")
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                listing.ignored.append(f"{relative}: a symbolic link")
                continue
            if info.flag_bits & 0x1:
                listing.ignored.append(f"{relative}: encrypted")
                continue
            if relative in by_path:
                # zipfile resolves a repeated name to its last entry, so the listing does the same.
                listing.ignored.append(f"{relative}: an earlier entry with the same name (the last one is read)")
            by_path[relative] = Member(relative, info.file_size, zip_locator(path, info.filename))
    listing.members = sorted(by_path.values(), key=lambda member: member.path)
    return listing
