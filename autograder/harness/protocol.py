"""The wire format from the sandbox to the grader: one frame per probe, JSON header then raw files.

A frame is ``MAGIC + <header length, 8 hex digits> + b"\\n" + header JSON + file bytes``. The header
names the probe, carries the supervisor's status for it, and lists the files that follow with their
sizes. The grader reads it with hard caps (`read_frame`) and treats every byte as a claim; this module
is standard-library only because it is loaded on both sides of the trust boundary.
"""

from __future__ import annotations

import json
import re

MAGIC = b"AGFRAME1"
MAX_HEADER_BYTES = 64 * 1024
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class ProtocolError(ValueError):
    """The stream from the sandbox is not well-formed (truncated, oversized or malformed)."""


def encode_frame(probe: str, status: dict, files: list[tuple[str, bytes]]) -> bytes:
    header = json.dumps({
        "probe": probe,
        "status": status,
        "files": [{"name": name, "size": len(data)} for name, data in files],
    }).encode()
    return MAGIC + b"%08x\n" % len(header) + header + b"".join(data for _, data in files)


def read_exact(stream, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            raise ProtocolError(f"stream ended {remaining} bytes early")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(stream, *, max_file_bytes: int, max_frame_bytes: int):
    """Read one frame; return ``(header, [(name, bytes), ...])`` or ``None`` at a clean end of stream.

    Raises:
        ProtocolError: malformed header, bad file name, or a size above the caps.
    """
    magic = stream.read(len(MAGIC))
    if not magic:
        return None
    if magic != MAGIC:
        raise ProtocolError("frame does not start with the magic bytes")
    length_line = read_exact(stream, 9)
    try:
        length = int(length_line[:8], 16)
    except ValueError as error:
        raise ProtocolError("bad header length") from error
    if length > MAX_HEADER_BYTES or length_line[8:] != b"\n":
        raise ProtocolError("header too long or malformed")
    try:
        header = json.loads(read_exact(stream, length))
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError("header is not JSON") from error
    if not isinstance(header, dict) or not isinstance(header.get("probe"), str) \
            or not isinstance(header.get("status"), dict) or not isinstance(header.get("files"), list):
        raise ProtocolError("header lacks probe/status/files")
    files, total = [], 0
    for entry in header["files"]:
        if not isinstance(entry, dict):
            raise ProtocolError("file entry is not an object")
        name, size = entry.get("name"), entry.get("size")
        if not isinstance(name, str) or not FILE_NAME.match(name):
            raise ProtocolError(f"bad file name {name!r}")
        if not isinstance(size, int) or size < 0 or size > max_file_bytes:
            raise ProtocolError(f"file {name!r} has size {size!r} above the cap of {max_file_bytes}")
        total += size
        if total > max_frame_bytes:
            raise ProtocolError(f"frame larger than the cap of {max_frame_bytes} bytes")
        files.append((name, read_exact(stream, size)))
    return header, files
