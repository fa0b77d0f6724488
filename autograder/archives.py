"""Open zip files from students at a bounded cost: the central directory is sized up before it is parsed.

``zipfile.ZipFile`` parses the whole central directory on open: a 64 MiB ``model.keras`` with 1.4 million
entries cost the trusted process 548 MB and 6.8 s before any member count could be checked. Here the end
of central directory record (22 bytes, or its zip64 variant) is read first, and the archive is refused
when it declares more entries or a larger directory than the caller allows; ``zipfile`` then reads at
most that many directory bytes. Reading a member is capped too, and every way a damaged archive fails
(bad CRC, a broken deflate stream, a name flagged UTF-8 that is not) becomes one ``ArchiveError``.

Example:
    >>> with open_zip(path, max_entries=16, max_directory_bytes=64 * 1024) as archive:
    ...     data = read_member(archive, archive.getinfo("config.json"), limit=2**20)
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .text import inert

EOCD = b"PK\x05\x06"
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_EOCD = b"PK\x06\x06"
MAX_COMMENT = 65535
# Everything reading a damaged archive may raise (zlib.error: a corrupt deflate stream; UnicodeDecodeError:
# a member name flagged UTF-8 that is not; struct.error and ValueError: truncated or absurd headers).
DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, UnicodeDecodeError, struct.error,
           ValueError, NotImplementedError, RuntimeError, OverflowError, KeyError, IndexError)


class ArchiveError(ValueError):
    """The archive is damaged, or larger than allowed; ``str()`` says which, for the student."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class DirectoryInfo:
    entries: int
    directory_bytes: int


def directory_info(path: Path) -> DirectoryInfo:
    """The entry count and central-directory size a zip file declares, from its last 64 KiB.

    Raises:
        ArchiveError: no end-of-central-directory record (not a zip, or truncated).
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        start = max(0, size - (MAX_COMMENT + 22))
        handle.seek(start)
        tail = handle.read()
        found = tail.rfind(EOCD)
        if found < 0 or len(tail) - found < 22:
            raise ArchiveError("it is not a zip archive (or it was cut short)")
        (_, _, _, _, entries, directory_bytes, _, _) = struct.unpack("<4sHHHHIIH", tail[found:found + 22])
        if entries == 0xFFFF or directory_bytes == 0xFFFFFFFF:
            locator = found - 20
            if locator < 0 or tail[locator:locator + 4] != ZIP64_LOCATOR:
                raise ArchiveError("its zip64 directory record is missing")
            (_, _, offset, _) = struct.unpack("<4sIQI", tail[locator:locator + 20])
            if offset > size - 56:
                raise ArchiveError("its zip64 directory record points outside the file")
            handle.seek(offset)
            record = handle.read(56)
            if record[:4] != ZIP64_EOCD:
                raise ArchiveError("its zip64 directory record is damaged")
            (_, _, _, _, _, _, _, entries, directory_bytes, _) = struct.unpack("<4sQHHIIQQQQ", record)
    return DirectoryInfo(int(entries), int(directory_bytes))


def open_zip(path: Path, *, max_entries: int, max_directory_bytes: int) -> zipfile.ZipFile:
    """Open ``path`` after checking what its central directory declares.

    Raises:
        ArchiveError: not a zip, damaged, or more entries / directory bytes than allowed (``too_large``).
    """
    info = directory_info(Path(path))
    if info.entries > max_entries:
        raise ArchiveError(f"it holds {info.entries:,} files (at most {max_entries:,} are accepted)", too_large=True)
    if info.directory_bytes > max_directory_bytes:
        raise ArchiveError(f"its file list is {info.directory_bytes:,} bytes (at most {max_directory_bytes:,})",
                           too_large=True)
    try:
        archive = zipfile.ZipFile(path)
    except DAMAGED as error:
        raise ArchiveError(f"it is damaged ({type(error).__name__})") from None
    if len(archive.infolist()) > max_entries:  # the record lied; the directory read was still bounded
        archive.close()
        raise ArchiveError(f"it holds more than {max_entries:,} files", too_large=True)
    return archive


def read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, *, limit: int) -> bytes:
    """At most ``limit`` bytes of ``member``, whatever its header claims.

    Raises:
        ArchiveError: the member inflates beyond ``limit`` (``too_large``) or is damaged.
    """
    if member.file_size > limit:
        raise ArchiveError(f"{inert(member.filename[:80])} unpacks to more than {limit // 2**20} MB", too_large=True)
    try:
        with archive.open(member) as handle:
            data = handle.read(limit + 1)
    except DAMAGED as error:
        raise ArchiveError(f"{inert(member.filename[:80])} is damaged ({type(error).__name__})") from None
    if len(data) > limit:
        raise ArchiveError(f"{inert(member.filename[:80])} unpacks to more than {limit // 2**20} MB", too_large=True)
    return data
