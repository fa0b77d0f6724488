"""Late submissions: how many days late, and the instructor's penalty for it, kept apart from the points.

The due date and the per-student extensions are the assignment's configuration (extensions come from a
small CSV, ``identifier,new_due_date``); when a submission arrived comes from the LMS (its timestamp, or
only its late marker); the penalty rule (``LatePolicy``: percent per day, a cap, a grace period) is the
instructor's. ``late_penalty`` is a pure function of those, and its result is reported as its own column
beside the autograder's points, never folded into them.

Counting: a submission up to ``grace_minutes`` after its due date (the extension's, if the student has
one) is on time; later, every started 24 hours counts as a day (1 minute past the grace is 1 day,
24 h 1 min is 2 days). The penalty is ``min(max_percent, percent_per_day * days)`` percent of the maximum
score (``basis="max_score"``, the default) or of the student's score (``basis="score"``).

When the LMS gives a late marker but no time (Canvas's ``LATE_`` in its download, which carries no
times): the marker says "after Canvas's due date" and nothing about how long, so the student is charged
``marker_only_days`` days (default 1, the least a late submission can be) and the result is marked
``needs_review`` with the reason; ``marker_only_days=None`` charges nothing and only flags it. If the
student has an extension here, a Canvas marker (computed against Canvas's own due date) cannot tell
whether the extension covered the submission: nothing is charged, and it is flagged. Without time and
without marker (Moodle's download), lateness is unknown: nothing is charged, and it is flagged. With a
timestamp the marker is not needed (a disagreement is noted in the reason).

Example:
    >>> policy = LatePolicy(percent_per_day=10, max_percent=50, grace_minutes=15)
    >>> due = datetime(2024, 10, 1, 23, 59, tzinfo=timezone.utc)
    >>> late_penalty(due + timedelta(hours=30), due=due, policy=policy, max_score=100)
    LatePenalty(late_days=2, penalty_percent=20.0, penalty_points=20.0, needs_review=False, reason='30.0 hours after the due date: 2 days late')
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

MAX_EXTENSIONS_BYTES = 4 * 1024 * 1024
EXTENSION_COLUMNS = ("identifier", "new_due_date")
DAY = timedelta(days=1)


class LateConfigurationError(ValueError):
    """The due date, an extension or the policy is wrong: the instructor's to fix."""


@dataclass(frozen=True)
class LatePolicy:
    """The instructor's late rule.

    Attributes:
        percent_per_day: percent taken off per day late (0: no penalty, lateness still reported).
        max_percent: the cap on the total percent taken off.
        grace_minutes: minutes after the due date still counted as on time.
        basis: ``"max_score"`` (percent of the points possible) or ``"score"`` (percent of the student's).
        marker_only_days: days charged when the LMS marks a submission late but gives no time; None charges
            nothing (the submission is flagged either way).
    """

    percent_per_day: float = 0.0
    max_percent: float = 100.0
    grace_minutes: float = 0.0
    basis: str = "max_score"
    marker_only_days: int | None = 1

    def __post_init__(self):
        if self.basis not in ("max_score", "score"):
            raise LateConfigurationError(f"basis is {self.basis!r}; it must be 'max_score' or 'score'.")
        for name in ("percent_per_day", "max_percent", "grace_minutes"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
                raise LateConfigurationError(f"{name} is {value!r}; it must be a number >= 0.")
        if self.max_percent > 100:
            raise LateConfigurationError(f"max_percent is {self.max_percent}; a penalty cannot exceed 100 percent.")
        if self.marker_only_days is not None and (not isinstance(self.marker_only_days, int)
                                                  or self.marker_only_days < 0):
            raise LateConfigurationError(f"marker_only_days is {self.marker_only_days!r}; give a whole number >= 0 "
                                         "or None.")


@dataclass(frozen=True)
class LatePenalty:
    """The outcome for one submission.

    Attributes:
        late_days: whole days late (0 on time); None when it cannot be told.
        penalty_percent: percent taken off; None when it cannot be told.
        penalty_points: points taken off (``apply_penalty`` subtracts them); None when it cannot be told.
        needs_review: True when a person should look (assumed or unknown lateness).
        reason: one sentence saying how the figures were reached.
    """

    late_days: int | None
    penalty_percent: float | None
    penalty_points: float | None
    needs_review: bool
    reason: str


def late_penalty(submitted_at: datetime | None, *, due: datetime, policy: LatePolicy, max_score: float,
                 extension: datetime | None = None, late_marker: bool | None = None,
                 score: float | None = None) -> LatePenalty:
    """Days late and the penalty for one submission (a pure function).

    Args:
        submitted_at: when the LMS received the submission (timezone-aware), None when it does not say.
        due: the assignment's due date (timezone-aware).
        policy: the instructor's ``LatePolicy``.
        max_score: the points possible.
        extension: the student's new due date, if they have one (replaces ``due``; must not be earlier).
        late_marker: the LMS's own late flag (Canvas's ``LATE_``), None when the layout has none.
        score: the student's points (needed only for ``basis="score"``).

    Returns:
        A ``LatePenalty``.

    Raises:
        LateConfigurationError: a naive datetime, or an extension earlier than the due date.

    Example:
        >>> late_penalty(None, due=due, policy=LatePolicy(percent_per_day=10), max_score=100, late_marker=True)
        LatePenalty(late_days=1, penalty_percent=10.0, penalty_points=10.0, needs_review=True, reason=...)
    """
    for name, value in (("due", due), ("submitted_at", submitted_at), ("extension", extension)):
        if value is not None and value.tzinfo is None:
            raise LateConfigurationError(f"{name} ({value.isoformat()}) has no timezone; give times with an offset "
                                         "(2024-10-01T23:59:00+02:00) or a zone.")
    if extension is not None and extension < due:
        raise LateConfigurationError(f"The extension {extension.isoformat()} is earlier than the due date "
                                     f"{due.isoformat()}; an extension is a later due date. Fix the extensions CSV.")
    effective_due = extension or due
    which = "the extended due date" if extension else "the due date"
    if submitted_at is None:
        if late_marker is None:
            return LatePenalty(None, 0.0, 0.0, True, "the LMS gave neither a submission time nor a late marker; "
                               "lateness unknown, nothing charged")
        if late_marker is False:
            return LatePenalty(0, 0.0, 0.0, False, "the LMS marks it on time (no submission time given)")
        if extension is not None:
            return LatePenalty(None, None, None, True, "the LMS marks it late against its own due date, but this "
                               "student has an extension and the LMS gave no time; nothing charged, check the time")
        if policy.marker_only_days is None:
            return LatePenalty(None, None, None, True, "the LMS marks it late but gave no time; nothing charged "
                               "(marker_only_days=None), check the time")
        days = policy.marker_only_days
        percent, points = _penalty(days, policy, max_score, score)
        return LatePenalty(days, percent, points, True, f"the LMS marks it late but gave no time: charged {days} "
                           f"day{'s' if days != 1 else ''} (the least a late submission can be); check the time")
    delta = submitted_at - effective_due
    grace = timedelta(minutes=policy.grace_minutes)
    if delta <= grace:
        note = " (within the grace period)" if delta > timedelta(0) else ""
        disagree = "; the LMS marked it late against its own due date" if late_marker else ""
        return LatePenalty(0, 0.0, 0.0, False, f"on time{note}{disagree}")
    days = math.ceil(delta / DAY)
    percent, points = _penalty(days, policy, max_score, score)
    hours = delta.total_seconds() / 3600
    disagree = "; the LMS did not mark it late" if late_marker is False else ""
    return LatePenalty(days, percent, points, points is None,
                       f"{hours:.1f} hours after {which}: {days} day{'s' if days != 1 else ''} late{disagree}"
                       + ("; no score to take a percent of" if points is None else ""))


def apply_penalty(score: float | None, penalty_points: float | None) -> float | None:
    """The score to post: ``score`` less the penalty, never below 0; None stays None (no grade).

    Example:
        >>> apply_penalty(7.5, 10.0), apply_penalty(None, 1.0), apply_penalty(8.0, None)
        (0.0, None, 8.0)
    """
    if score is None:
        return None
    return max(0.0, score - (penalty_points or 0.0))


def read_extensions(path: Path, *, timezone: str | None = None) -> dict[str, datetime]:
    """Read the extensions CSV: a header ``identifier,new_due_date``, then one row per student.

    Args:
        path: the CSV. ``identifier`` is the student's LMS id, identity key (``canvas:12345``), email,
            login or SIS id; ``new_due_date`` is ISO 8601, with an offset (``2024-10-08T23:59:00+02:00``)
            unless ``timezone`` is given.
        timezone: an IANA zone for dates written without an offset (``"Europe/Berlin"``).

    Returns:
        Identifier (emails and logins case-folded) -> new due date (timezone-aware).

    Raises:
        LateConfigurationError: a wrong header, an unreadable date, a date without offset and no
            ``timezone``, or an identifier listed twice (the message names the line).

    Example:
        >>> read_extensions(Path("extensions.csv"))["canvas:12345"]
        datetime.datetime(2024, 10, 8, 23, 59, tzinfo=datetime.timezone(datetime.timedelta(seconds=7200)))
    """
    path = Path(path)
    if not path.is_file():
        raise LateConfigurationError(f"The extensions file {path} does not exist.")
    if path.stat().st_size > MAX_EXTENSIONS_BYTES:
        raise LateConfigurationError(f"The extensions file {path} is larger than {MAX_EXTENSIONS_BYTES:,} bytes.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LateConfigurationError(f"The extensions file {path} is not UTF-8 text; save it as CSV UTF-8.") from None
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if any(cell.strip() for cell in row)]
    if not rows or tuple(cell.strip().lower() for cell in rows[0]) != EXTENSION_COLUMNS:
        found = ",".join(rows[0]) if rows else "nothing"
        raise LateConfigurationError(f"{path} must start with the header 'identifier,new_due_date'; it starts with "
                                     f"{found[:80]!r}.")
    zone = ZoneInfo(timezone) if timezone else None
    extensions: dict[str, datetime] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[0].strip():
            raise LateConfigurationError(f"{path} line {line}: expected 'identifier,new_due_date', found {row!r}.")
        identifier = normalize_identifier(row[0])
        if identifier in extensions:
            raise LateConfigurationError(f"{path} line {line}: {row[0].strip()!r} already has an extension; keep one "
                                         "row per student.")
        extensions[identifier] = parse_time(row[1], zone=zone, where=f"{path} line {line}")
    return extensions


def extension_for(extensions: dict[str, datetime], *, key: str, user_id: str | None = None,
                  email: str | None = None, login: str | None = None, sis_id: str | None = None) -> datetime | None:
    """The extension of one student, looked up by identity key, LMS id, email, login or SIS id in that order.

    Example:
        >>> extension_for(extensions, key="canvas:12345", user_id="12345", email="jane@uni.edu")
        datetime.datetime(2024, 10, 8, 23, 59, tzinfo=...)
    """
    for identifier in (key, user_id, email, login, sis_id):
        if identifier and normalize_identifier(identifier) in extensions:
            return extensions[normalize_identifier(identifier)]
    return None


def normalize_identifier(text: str) -> str:
    """How identifiers are compared: trimmed, Unicode NFC, case-folded (emails and logins ignore case)."""
    return unicodedata.normalize("NFC", text.strip()).casefold()


def parse_time(text: str, *, zone: ZoneInfo | None = None, where: str = "") -> datetime:
    """An ISO 8601 date and time, timezone-aware (``zone`` applies when the text has no offset).

    Raises:
        LateConfigurationError: not ISO 8601, or no offset and no ``zone``.
    """
    value = text.strip()
    prefix = f"{where}: " if where else ""
    try:
        parsed = datetime.fromisoformat(re.sub(r"Z$", "+00:00", value))
    except ValueError:
        raise LateConfigurationError(f"{prefix}{value[:40]!r} is not an ISO 8601 date and time; write it like "
                                     "2024-10-08T23:59:00+02:00.") from None
    if parsed.tzinfo is None:
        if zone is None:
            raise LateConfigurationError(f"{prefix}{value!r} has no UTC offset; add one (2024-10-08T23:59:00+02:00) "
                                         "or pass timezone= with the course's zone.")
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def _penalty(days: int, policy: LatePolicy, max_score: float, score: float | None) -> tuple[float, float | None]:
    percent = float(min(policy.max_percent, policy.percent_per_day * days))
    base = max_score if policy.basis == "max_score" else score
    if base is None:
        return percent, None
    return percent, round(base * percent / 100.0, 6)
