"""Between the LMS modules and the grader, data flowing one way:

* in: a download (folder or zip) recognised by its layout becomes one submission per student, keyed by the
  LMS identity (``canvas:12345``), its files read from the download by locator when it is staged;
* out: the gradebook's latest grades, joined to the roster, with the late policy's penalty beside the points
  and the TA's overrides, become the ``GradeRow``s every export writes.

The identity a submission keeps from the LMS (``entry_metadata``) is stored with its report in the gradebook,
so exports need nothing but the gradebook, the roster and the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .exports import GradeRow
from .archive import DownloadError
from .intake import LAYOUTS, Download, Entry, UnknownLayoutError, read_download
from .late import LatePolicy, extension_for, late_penalty, parse_time
from .roster import Roster, join_roster

AUTO, NONE = "auto", "none"
LAYOUT_CHOICES = (AUTO, NONE, *LAYOUTS)


def recognise(path: Path, layout: str = AUTO) -> Download | None:
    """``path`` read as an LMS download, or None when it is none (only with ``layout="auto"``).

    With ``"auto"`` a damaged zip is not a download either: it is graded as one submission, whose report says
    the zip is corrupt.

    Raises:
        UnknownLayoutError: a layout was asked for and ``path`` is not one (the message says what was found).
        DownloadError: a layout was asked for and ``path`` is a damaged or oversized zip.
    """
    if layout == NONE:
        return None
    try:
        return read_download(Path(path), layout=None if layout == AUTO else layout)
    except (UnknownLayoutError, DownloadError):
        if layout == AUTO:
            return None
        raise


def entry_metadata(entry: Entry, layout: str) -> dict:
    """What the grader keeps of an entry (plain JSON), with the submission's report."""
    return {"layout": layout, "lms": entry.lms, "user_id": entry.user_id, "display_name": entry.display_name,
            "email": entry.email, "login": entry.login, "sis_id": entry.sis_id,
            "submitted_at": entry.submitted_at.isoformat() if entry.submitted_at else None, "late": entry.late,
            "attempt": entry.attempt, "submission_id": entry.submission_id, "anonymous": entry.anonymous,
            "files": sorted(entry.files), "superseded": [attempt.attempt for attempt in entry.superseded]}


def entry_from_metadata(metadata: dict) -> Entry:
    """The entry back from ``entry_metadata`` (without its files), for a roster join."""
    submitted = metadata.get("submitted_at")
    return Entry(lms=metadata["lms"], user_id=str(metadata["user_id"]), display_name=metadata.get("display_name") or "",
                 email=metadata.get("email"), login=metadata.get("login"), sis_id=metadata.get("sis_id"),
                 submitted_at=datetime.fromisoformat(submitted) if submitted else None, late=metadata.get("late"),
                 attempt=int(metadata.get("attempt") or 1), submission_id=metadata.get("submission_id"),
                 anonymous=bool(metadata.get("anonymous")))


@dataclass
class LateSettings:
    """The due date, the instructor's rule and the extensions (``identifier -> new due date``)."""
    due: datetime
    policy: LatePolicy
    extensions: dict[str, datetime] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, table: dict | None, *, due: str | None = None, extensions: dict | None = None,
                      timezone: str | None = None) -> "LateSettings | None":
        """From a version manifest's ``[late]`` table (``due``, ``percent_per_day``, ``max_percent``,
        ``grace_minutes``, ``basis``, ``marker_only_days``), ``due`` overriding it; None without a due date."""
        table = dict(table or {})
        due = due or table.pop("due", None)
        table.pop("due", None)
        if not due:
            return None
        from zoneinfo import ZoneInfo
        zone = ZoneInfo(timezone or table.pop("timezone", "UTC"))
        table.pop("timezone", None)
        return cls(parse_time(str(due), zone=zone, where="the due date"), LatePolicy(**table), extensions or {})


@dataclass
class Rows:
    """What an export writes, and what the TA should hear about."""
    rows: list[GradeRow]
    missing: list[str]          # roster students without a submission ("Name (id)")
    unknown: list[str]          # graded submissions that are on no roster row (their keys)
    notes: list[str]


def grade_rows(latest: list[dict], reports: dict, *, out_dir: Path, roster: Roster | None = None,
               late: LateSettings | None = None, overrides: dict[str, dict] | None = None) -> Rows:
    """One ``GradeRow`` per graded submission (and per roster student without one).

    Args:
        latest: the gradebook's latest grade per submission (``Gradebook.latest()``).
        reports: ``key -> SubmissionReport`` of those grades.
        out_dir: the grading output folder (feedback files are linked from there).
        roster: the LMS's roster; None to export the graded submissions only.
        late: the late settings; None for no late columns.
        overrides: ``key -> {"score", "comment", "by", "at"}``, the latest override per student.
    """
    overrides = overrides or {}
    by_key = {row["key"]: row for row in latest}
    entries = {key: entry_from_metadata(reports[key].lms) for key in by_key if reports[key].lms.get("lms")}
    students, missing, unknown, notes = {}, [], [], []
    if roster is not None:
        joined = join_roster(entries.values(), roster)
        students = {match.entry.key: match.student for match in joined.matched}
        missing = [f"{student.display_name} ({student.user_id or student.email or 'no id'})" for student in joined.missing]
        unknown = [entry.key for entry in joined.unknown] + [key for key in by_key if key not in entries]
        notes = list(joined.notes)
    rows = []
    for key, row in by_key.items():
        report = reports[key]
        entry = entries.get(key)
        student = students.get(key)
        score = float(row["total"]) if report.graded and row.get("total") is not None else None
        max_score = float(row.get("max_total") or report.max_total)
        days = points = None
        if late is not None and entry is not None and score is not None:
            penalty = late_penalty(entry.submitted_at, due=late.due, policy=late.policy, max_score=max_score,
                                   extension=extension_for(late.extensions, key=key, user_id=entry.user_id,
                                                           email=entry.email, login=entry.login),
                                   late_marker=entry.late, score=score)
            days, points = penalty.late_days, penalty.penalty_points
            if penalty.needs_review:
                notes.append(f"{key}: {penalty.reason}")
        override = overrides.get(key)
        final = float(override["score"]) if override else (None if score is None else max(0.0, score - (points or 0.0)))
        feedback = out_dir / "submissions" / report.name / "feedback.html"
        rows.append(GradeRow(
            key=key, user_id=(entry.user_id if entry else (student.user_id if student else key)) or key,
            display_name=(student.display_name if student else None) or report.shown_name,
            email=(student.email if student else None) or (entry.email if entry else None),
            login=(student.login if student else None) or (entry.login if entry else None),
            sis_id=(student.sis_id if student else None) or (entry.sis_id if entry else None),
            section=student.section if student else None, score=score, max_score=max_score,
            feedback_text=_feedback_text(report, override), feedback_html_path=feedback if feedback.exists() else None,
            late_days=days, penalty_points=points, final_score=final,
            override_comment=override["comment"] if override else None,
            submitted_at=entry.submitted_at if entry else None, submission_id=entry.submission_id if entry else None))
    if roster is not None:
        for student in joined.missing:
            rows.append(GradeRow(
                key=student.key or f"missing:{student.row}", user_id=student.user_id or "", display_name=student.display_name,
                email=student.email, login=student.login, sis_id=student.sis_id, section=student.section, score=None,
                max_score=max((r.max_score for r in rows), default=100.0), feedback_text="No submission.",
                feedback_html_path=None, late_days=None, penalty_points=None, final_score=None, override_comment=None,
                submitted=False))
    return Rows(rows, missing, unknown, notes)


def _feedback_text(report, override) -> str:
    """The comment an LMS shows beside the grade: the score, then each function that lost points with the first
    reason (the full page is the feedback file)."""
    from ..report import summary_text
    from ..text import one_line
    if not report.graded:
        text = "Not graded yet: your TA will grade it again."
    else:
        lines = [summary_text(report)]
        for function, (score, max_score) in report.by_function().items():
            if score >= max_score:
                continue
            reasons = [one_line(test["output"]) for test in report.tests
                       if test["function"] == function and test["score"] < test["max_score"] and test["output"]]
            reason = f": {reasons[0][:300]}" if reasons else ""
            lines.append(f"{function} {score:g} / {max_score:g}{reason}")
        text = "\n".join(lines)
    if override:
        text += f"\nYour TA set the grade to {override['score']:g}: {override['comment']}"
    return text

