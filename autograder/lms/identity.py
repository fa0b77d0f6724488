"""Who a submission belongs to, as the LMS says it, and the filesystem-safe folder name derived from that.

The identity of a student is the LMS and the LMS's own id (``canvas:12345``, ``moodle:731904`` for Moodle's
participant id, ``gradescope:SID`` or ``gradescope:email`` when Gradescope has no SID). The display name is
kept exactly as the LMS gives it, in full Unicode, for people to read; it never becomes a path. The folder
name is derived from the identity alone, so it never depends on who else is in the class:

    <ascii name>_<lms>-<ascii id>[_<8 hex digits of sha256(key)>]

The name part is the display name transliterated to ASCII by ``anyascii`` (ISC licence; ``unidecode`` is
GPL), lower case, runs of anything but letters and digits turned into one ``-``, at most 40 characters.
The hash is appended whenever either part lost information (non-ASCII letters, dropped characters, an id
that is not plain ``[a-z0-9]``), so two different identities can never share a folder even when their
transliterations coincide ("Zoë" and "Zoe" with ids that sanitize alike).

Example:
    >>> safe_folder_name("canvas", "12345", "Doe, Jane")
    'doe-jane_canvas-12345'
    >>> safe_folder_name("canvas", "12346", "Zoë Ñúñez")
    'zoe-nunez_canvas-12346_73be41d7'
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from anyascii import anyascii

NAME_CHARACTERS = 40
ID_CHARACTERS = 40
NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")
LMS_NAMES = ("canvas", "moodle", "gradescope")


def identity_key(lms: str, user_id: str) -> str:
    """The stable identity string of a student: ``"<lms>:<user id>"``.

    Args:
        lms: ``"canvas"``, ``"moodle"`` or ``"gradescope"``.
        user_id: the LMS's own id for the student (Canvas user id, Moodle participant id, Gradescope SID).

    Returns:
        For example ``"canvas:12345"``.

    Raises:
        ValueError: an unknown LMS, or an empty id.

    Example:
        >>> identity_key("moodle", "731904")
        'moodle:731904'
    """
    if lms not in LMS_NAMES:
        raise ValueError(f"Unknown LMS {lms!r}; expected one of {', '.join(LMS_NAMES)}.")
    if not user_id or not user_id.strip():
        raise ValueError(f"A {lms} identity needs a non-empty user id.")
    return f"{lms}:{user_id.strip()}"


def ascii_slug(text: str, limit: int) -> tuple[str, bool]:
    """``text`` as lower-case ASCII letters and digits joined by ``-``; and whether information was lost.

    Only separators (spaces, commas, periods, hyphens, apostrophes...) turning into one ``-`` and upper case
    turning into lower case count as lossless; a transliterated letter, a dropped symbol or a cut at
    ``limit`` characters is a loss.
    """
    normalized = unicodedata.normalize("NFC", text)
    transliterated = anyascii(normalized)
    lossy = transliterated != normalized
    slug = NOT_ALPHANUMERIC.sub("-", transliterated.lower()).strip("-")
    if len(slug) > limit:
        slug = slug[:limit].rstrip("-")
        lossy = True
    # Separators are the only characters a lossless slug may drop; anything else dropped (emoji, symbols
    # anyascii has no letters for) is a loss.
    kept = re.sub(r"[\s,.'’\-_()]+", "", transliterated.lower())
    if re.sub(r"[^a-z0-9]", "", kept) != kept:
        lossy = True
    return slug, lossy


def safe_folder_name(lms: str, user_id: str, display_name: str) -> str:
    """A deterministic, filesystem-safe ASCII folder name for one student (see the module docstring).

    Args:
        lms: ``"canvas"``, ``"moodle"`` or ``"gradescope"``.
        user_id: the LMS's id for the student.
        display_name: the name as the LMS gives it (any Unicode; never trusted as a path).

    Returns:
        A name of at most 100 characters from ``[a-z0-9_-]``, never ``.`` or ``..``, never a reserved
        Windows device name (it always contains ``_``).

    Raises:
        ValueError: as ``identity_key``.

    Example:
        >>> safe_folder_name("gradescope", "jane@uni.edu", "Jane Doe")
        'jane-doe_gradescope-jane-uni-edu_f5c289c9'
    """
    key = identity_key(lms, user_id)
    name_slug, name_lossy = ascii_slug(display_name or "", NAME_CHARACTERS)
    id_slug, _ = ascii_slug(user_id.strip(), ID_CHARACTERS)
    id_lossy = id_slug != user_id.strip()
    folder = f"{name_slug or 'student'}_{lms}-{id_slug or 'id'}"
    if name_lossy or id_lossy or not name_slug:
        folder += "_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return folder
