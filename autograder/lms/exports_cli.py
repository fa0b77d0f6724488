"""What ``grade --roster`` and ``gradebook export --format canvas|moodle|gradescope`` do, after the CLI parsed
them: read the gradebook, the roster and the late settings, build the rows (``grading.grade_rows``) and write
the LMS's files under ``<out>/exports/`` (or where ``--csv`` says).

Every function here returns the lines to print; errors are the LMS modules' own (``RosterError``,
``LateConfigurationError``, ``ExportError``), each naming what to fix.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .exports import write_canvas_feedback_folders, write_export, write_moodle_feedback_zip
from .grading import LateSettings, Rows, grade_rows
from .late import LateConfigurationError, read_extensions
from .roster import read_roster

# --format -> (the exports module's format, the default file name under <out>/exports/)
FORMATS = {"canvas": ("canvas-gradebook", "canvas-gradebook.csv"),
           "moodle": ("moodle-worksheet", "moodle-worksheet.csv"),
           "gradescope": ("gradescope-scores", "gradescope-scores.csv")}
FEEDBACK = {"canvas": "canvas-feedback", "moodle": "moodle-feedback.zip", "gradescope": "feedback"}


def latest_reports(book) -> tuple[list[dict], dict]:
    """The gradebook's latest rows and their reports (each parsed once)."""
    from ..gradebook import report_of
    latest = book.latest()
    return latest, {row["key"]: report_of(row) for row in latest}


def rows_of(book, out_dir: Path | None, *, roster_path: Path | None = None, late: LateSettings | None = None,
            latest: tuple[list[dict], dict] | None = None) -> Rows:
    """The export rows of ``book``'s latest grades (``latest_reports``, read here unless given), joined to the
    roster at ``roster_path`` if given."""
    latest, reports = latest or latest_reports(book)
    roster = read_roster(Path(roster_path)) if roster_path is not None else None
    return grade_rows(latest, reports, out_dir=Path(out_dir) if out_dir else Path("."), roster=roster, late=late,
                      overrides=book.overrides())


def roster_report(out_dir: Path, gradebook_url: str | None, roster_path: Path) -> str:
    """The closing lines of ``grade --roster``: who is on the roster without a submission, and which graded
    submissions are on no roster row."""
    from ..gradebook import open_gradebook
    rows = rows_of(open_gradebook(gradebook_url, out_dir), out_dir, roster_path=roster_path)
    return "\n".join(_roster_lines(rows))


def _roster_lines(rows: Rows) -> list[str]:
    lines = []
    if rows.missing:
        lines.append(f"{len(rows.missing)} on the roster handed nothing in: {'; '.join(rows.missing)}")
    else:
        lines.append("Everyone on the roster has a graded submission.")
    if rows.unknown:
        lines.append(f"{len(rows.unknown)} graded submissions are on no roster row (check the roster or the "
                     f"download): {', '.join(rows.unknown)}")
    lines.extend(f"note: {note}" for note in rows.notes)
    return lines


def late_settings(args, version_manifest: dict | None) -> LateSettings | None:
    """The late settings from the CLI (``--due`` and the penalty options) over the version's ``[late]`` table."""
    table = dict((version_manifest or {}).get("late") or {})
    for option, key in (("late_percent_per_day", "percent_per_day"), ("late_max_percent", "max_percent"),
                        ("grace_minutes", "grace_minutes")):
        value = getattr(args, option, None)
        if value is not None:
            table[key] = value
    extensions = read_extensions(args.extensions) if getattr(args, "extensions", None) else {}
    try:
        return LateSettings.from_manifest(table, due=args.due, extensions=extensions)
    except TypeError as error:  # an unknown key in [late]
        raise LateConfigurationError(f"The [late] settings are not understood ({error}); use due, percent_per_day, "
                                     f"max_percent, grace_minutes, basis, marker_only_days, timezone.") from None


def export(args, book) -> Iterator[str]:
    """Write the file ``args.format``'s LMS imports (and with ``--feedback`` the feedback files for upload);
    yield what to print."""
    format_name, file_name = FORMATS[args.format]
    out_dir = Path(args.out) if args.out else None
    if args.csv is None and out_dir is None:
        raise ValueError("Give --out (the exports go to <out>/exports/) or --csv FILE.")
    target = Path(args.csv) if args.csv else out_dir / "exports" / file_name
    latest = latest_reports(book)
    reports = latest[1].values()
    late = late_settings(args, _manifest_of(reports))
    rows = rows_of(book, out_dir, roster_path=args.roster, late=late, latest=latest)
    options = {}
    if args.format == "canvas":
        title = next((report.title for report in reports if report.title), None)
        options = {"assignment_name": args.assignment_name or title or "Assignment",
                   "assignment_id": args.assignment_id}
    elif args.format == "moodle":
        options = {"modified_at": datetime.now(timezone.utc)}
    target.parent.mkdir(parents=True, exist_ok=True)
    write_export(format_name, rows.rows, target, **options)
    posted = sum(1 for row in rows.rows if row.final_score is not None)
    yield f"{args.format}: {posted} grades written to {target}"
    if late is not None:
        penalised = [row for row in rows.rows if row.penalty_points]
        yield f"late: {len(penalised)} penalised (due {late.due.isoformat()})"
    overridden = [row for row in rows.rows if row.override_comment]
    if overridden:
        yield f"overrides posted: {', '.join(row.key for row in overridden)}"
    if args.feedback:
        folder = target.parent
        if args.format == "moodle":
            path = write_moodle_feedback_zip([row for row in rows.rows if row.submitted], folder / FEEDBACK["moodle"])
        else:
            path = write_canvas_feedback_folders([row for row in rows.rows if row.submitted],
                                                 folder / FEEDBACK[args.format])
        yield f"feedback for upload: {path}"
    if args.roster is not None:
        yield from _roster_lines(rows)
    else:
        yield from (f"note: {note}" for note in rows.notes)


def _manifest_of(reports) -> dict | None:
    """The manifest of the version the latest grades were made against (the newest one if mixed)."""
    from .. import assignment as assignments
    used = {report.version for report in reports}
    versions = [name for name in assignments.versions() if name in used]  # oldest first: v2 before v10
    if not versions:
        return None
    try:
        return assignments.load(versions[-1]).manifest
    except assignments.AssignmentError:
        return None
