"""The gradebook: every grading run and every grade, append-only, in SQLite or any SQLAlchemy database.

Nothing is ever updated or deleted but a run's own status. A regrade adds a row; a submission the grader
could not grade gets a row with status ``not_graded`` (never a score); a mistake is undone with a
tombstone (``void``), which exports and class files respect and ``--history`` still shows. Each grade
is written in one transaction together with its per-test rows, after the submission's files are
complete, so a crash leaves either the whole grade or none of it. Submissions are keyed by their
stable identity (``Submission.key``), and every row carries the source it came from.
"""

from __future__ import annotations

import csv
import errno
import getpass
import io
import json
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (Column, Float, ForeignKey, Integer, MetaData, String, Table, Text, create_engine, event,
                        func, inspect, select, text)
from sqlalchemy.exc import SQLAlchemyError

from .report import SubmissionReport
from .text import plain

metadata = MetaData()

runs = Table(
    "grading_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
    Column("status", String(16), nullable=False),        # running, finished, incomplete, interrupted
    Column("command", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),   # everything a verdict depends on (grade.fingerprint)
    Column("host", String(255), nullable=False),
    Column("settings", Text, nullable=False),
)

grades = Table(
    "grades", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("grading_runs.id"), nullable=False, index=True),
    Column("submission", String(255), nullable=False, index=True),   # the folder name in the output folder
    Column("digest", String(64), nullable=False),                    # of the files that were graded
    Column("fingerprint", String(64), nullable=False),
    Column("total", Float, nullable=True),                           # NULL when not graded
    Column("max_total", Float, nullable=False),
    Column("flags", Text, nullable=False),
    Column("results", Text, nullable=False),              # the results.json that was written
    Column("graded_at", String(32), nullable=False),
    # Since gradebook schema 2 (added to older gradebooks on open):
    Column("key", String(255), nullable=True, index=True),          # the stable identity (Submission.key)
    Column("display_name", Text, nullable=True),
    Column("source", Text, nullable=True),                           # where the files came from
    Column("status", String(16), nullable=True),                     # graded | not_graded
    Column("report", Text, nullable=True),                           # SubmissionReport as JSON
    Column("reused_from", Integer, nullable=True),                   # an earlier grade of the same files
    Column("version", String(32), nullable=True),                    # the assignment version graded against
    Column("manifest_hash", String(64), nullable=True),              # of that version's manifest and rubric
)

test_results = Table(
    "test_results", metadata,
    Column("id", Integer, primary_key=True),
    Column("grade_id", Integer, ForeignKey("grades.id"), nullable=False, index=True),
    Column("rubric_id", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("function", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("max_score", Float, nullable=False),
    Column("status", String(16), nullable=False),
)

voids = Table(
    "voids", metadata,
    Column("id", Integer, primary_key=True),
    Column("grade_id", Integer, ForeignKey("grades.id"), nullable=True, index=True),
    Column("run_id", Integer, ForeignKey("grading_runs.id"), nullable=True, index=True),
    Column("reason", Text, nullable=False),
    Column("voided_by", String(255), nullable=False),
    Column("voided_at", String(32), nullable=False),
)

# A TA's final score for one student, with the required reason: append-only (the newest per key counts); the
# autograder's own grade stays as it was, and exports say the score was set by hand.
score_overrides = Table(
    "overrides", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(255), nullable=False, index=True),
    Column("score", Float, nullable=False),
    Column("comment", Text, nullable=False),
    Column("set_by", String(255), nullable=False),
    Column("set_at", String(32), nullable=False),
)

ADDED_COLUMNS = ("key", "display_name", "source", "status", "report", "reused_from", "version", "manifest_hash")


class GradebookError(RuntimeError):
    """The database cannot be opened or written (wrong URL, permissions, full disk), or a request names
    something that is not in it."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_url(out_dir: Path) -> str:
    return f"sqlite:///{Path(out_dir).resolve() / 'gradebook.sqlite'}"


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "?"
    return f"{user}@{socket.gethostname()}"


class Gradebook:
    """Append-only store of runs, grades and voids.

    Example:
        >>> book = Gradebook("sqlite:///out/gradebook.sqlite")
        >>> run = book.start_run(command="grade ...", fingerprint="...", settings={})
    """

    def __init__(self, url: str):
        try:
            self.engine = create_engine(url, future=True)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            metadata.create_all(self.engine)
            self._upgrade()
        except SQLAlchemyError as error:
            raise GradebookError(f"Cannot open the gradebook {url}: {error}") from None
        self.url = url
        self._lock = threading.Lock()

    def _upgrade(self) -> None:
        """Add the columns of schema 2 to a gradebook an earlier version made (rows keep their values)."""
        present = {column["name"] for column in inspect(self.engine).get_columns("grades")}
        missing = [column for column in grades.columns if column.name in ADDED_COLUMNS and column.name not in present]
        if not missing:
            return
        with self.engine.begin() as connection:
            for column in missing:
                kind = column.type.compile(dialect=self.engine.dialect)
                connection.execute(text(f'ALTER TABLE grades ADD COLUMN "{column.name}" {kind}'))

    # -- runs -----------------------------------------------------------------------------------
    def start_run(self, *, command: str, fingerprint: str, settings: dict) -> int:
        with self._write() as connection:
            result = connection.execute(runs.insert().values(
                started_at=now(), status="running", command=command, fingerprint=fingerprint,
                host=socket.gethostname(), settings=json.dumps(settings, sort_keys=True, default=str)))
            return int(result.inserted_primary_key[0])

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        with self._write() as connection:
            connection.execute(runs.update().where(runs.c.id == run_id).values(finished_at=now(), status=status))

    # -- grades ---------------------------------------------------------------------------------
    def record(self, run_id: int, report: SubmissionReport, *, fingerprint: str, results: dict,
               reused_from: int | None = None) -> int:
        """Store one grade (or a not-graded outcome) and its tests in a single transaction; returns its id."""
        graded = report.status == "graded"
        with self._write() as connection:
            grade_id = int(connection.execute(grades.insert().values(
                run_id=run_id, submission=report.name, digest=report.digest, fingerprint=fingerprint,
                total=report.total if graded else None, max_total=report.max_total, flags=" ".join(report.flags),
                results=json.dumps(results), graded_at=now(), key=report.key or report.name,
                display_name=report.display_name or report.name, source=report.source, status=report.status,
                report=json.dumps(report.as_dict()), reused_from=reused_from, version=report.version,
                manifest_hash=report.manifest_hash)).inserted_primary_key[0])
            if graded and report.tests:
                connection.execute(test_results.insert(), [
                    {"grade_id": grade_id, "rubric_id": t["rubric_id"], "name": t["name"], "function": t["function"],
                     "score": t["score"], "max_score": t["max_score"], "status": t["status"]} for t in report.tests])
            return grade_id

    def find_grade(self, key: str, digest: str, fingerprint: str) -> dict | None:
        """The newest valid grade of exactly these files by exactly these graders, or None.

        Not-graded outcomes and voided grades never count: the next plain run grades those again.
        """
        query = (select(grades).where(grades.c.key == key, grades.c.digest == digest,
                                      grades.c.fingerprint == fingerprint, grades.c.status == "graded")
                 .order_by(grades.c.id.desc()))
        with self.engine.connect() as connection:
            voided, voided_runs = self._voided(connection)
            for row in connection.execute(query):
                if row.id not in voided and row.run_id not in voided_runs:
                    return _row(row)
        return None

    def latest(self) -> list[dict]:
        """The newest valid (not voided) grade or not-graded outcome of every submission, by key."""
        with self.engine.connect() as connection:
            voided, voided_runs = self._voided(connection)
            newest: dict[str, dict] = {}
            for row in connection.execute(select(grades).order_by(grades.c.id)):
                if row.id in voided or row.run_id in voided_runs:
                    continue
                newest[row.key or row.submission] = _row(row)
        return [newest[key] for key in sorted(newest)]

    def latest_for(self, key: str) -> dict | None:
        return next((row for row in self.latest() if row["key"] == key), None)

    def history(self) -> list[dict]:
        """Every row ever recorded, voided ones included (``voided`` says which and why)."""
        with self.engine.connect() as connection:
            reasons = {row.grade_id: row.reason for row in connection.execute(select(voids)) if row.grade_id}
            run_reasons = {row.run_id: row.reason for row in connection.execute(select(voids)) if row.run_id}
            rows = []
            for row in connection.execute(select(grades).order_by(grades.c.id)):
                entry = _row(row)
                entry["voided"] = reasons.get(row.id) or run_reasons.get(row.run_id) or ""
                rows.append(entry)
        return rows

    def reports(self) -> list[SubmissionReport]:
        """The latest report of every submission: what the class files show."""
        return [report_of(row) for row in self.latest()]

    def counts(self) -> dict:
        with self.engine.connect() as connection:
            return {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                    for table in (runs, grades, test_results)}

    # -- undo -----------------------------------------------------------------------------------
    def void(self, *, reason: str, key: str | None = None, run_id: int | None = None, by: str | None = None) -> int:
        """Tombstone the latest grade of ``key``, or every grade of run ``run_id``; returns how many grades.

        Raises:
            GradebookError: no reason given, neither or both of key and run, or nothing to void.
        """
        if not reason or not reason.strip():
            raise GradebookError("Say why with --reason; a void is kept for the record.")
        if (key is None) == (run_id is None):
            raise GradebookError("Void either one submission (--submission KEY) or one run (--run ID).")
        by = by or who()
        with self._write() as connection:
            if run_id is not None:
                count = connection.execute(select(func.count()).select_from(grades)
                                           .where(grades.c.run_id == run_id)).scalar_one()
                exists = connection.execute(select(runs.c.id).where(runs.c.id == run_id)).first()
                if exists is None:
                    raise GradebookError(f"There is no grading run {run_id} in {self.url}.")
                connection.execute(voids.insert().values(run_id=run_id, reason=reason.strip(), voided_by=by, voided_at=now()))
                return int(count)
        row = self.latest_for(key)
        if row is None:
            known = ", ".join(r["key"] for r in self.latest()[:8])
            raise GradebookError(f"No current grade for {key!r} in {self.url} (known: {known or 'none'}).")
        with self._write() as connection:
            connection.execute(voids.insert().values(grade_id=row["id"], reason=reason.strip(), voided_by=by, voided_at=now()))
        return 1

    # -- overrides ------------------------------------------------------------------------------
    def override(self, *, key: str, score: float, comment: str, by: str | None = None) -> None:
        """Record a TA's final score for ``key`` (a graded or not-graded submission), with why.

        Raises:
            GradebookError: no comment, a score outside 0..the points possible, or no such submission.
        """
        if not comment or not comment.strip():
            raise GradebookError("Say why with --comment; an override is shown to the student and kept for the record.")
        row = self.latest_for(key)
        if row is None:
            known = ", ".join(r["key"] for r in self.latest()[:8])
            raise GradebookError(f"No submission {key!r} in {self.url} (known: {known or 'none'}).")
        if not 0 <= score <= float(row["max_total"]):
            raise GradebookError(f"The score {score:g} is outside 0..{float(row['max_total']):g}.")
        with self._write() as connection:
            connection.execute(score_overrides.insert().values(key=key, score=float(score), comment=comment.strip(),
                                                         set_by=by or who(), set_at=now()))

    def overrides(self) -> dict[str, dict]:
        """The newest override of every key that has one: ``{"score", "comment", "by", "at"}``."""
        with self.engine.connect() as connection:
            newest = {}
            for row in connection.execute(select(score_overrides).order_by(score_overrides.c.id)):
                newest[row.key] = {"score": row.score, "comment": row.comment, "by": row.set_by, "at": row.set_at}
        return newest

    def _voided(self, connection) -> tuple[set[int], set[int]]:
        rows = list(connection.execute(select(voids.c.grade_id, voids.c.run_id)))
        return {r.grade_id for r in rows if r.grade_id}, {r.run_id for r in rows if r.run_id}

    # -- export ---------------------------------------------------------------------------------
    def export_csv(self, *, history: bool = False, functions: tuple[str, ...] = ()) -> str:
        """CSV of the latest valid grade per submission (or every row with ``history``), points per function.

        A submission the grader could not grade has status ``not_graded`` and an empty total, never 0.
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        header = ["key", "display_name", "source", "version", *functions, "total", "max_total", "status", "flags",
                  "graded_at", "run_id", "digest", "manifest_hash"]
        writer.writerow(header + (["voided"] if history else []))
        for row in (self.history() if history else self.latest()):
            per_function = {name: 0.0 for name in functions}
            for test in json.loads(row["results"]).get("tests", []):
                for tag in test.get("tags", []):
                    if tag in per_function:
                        per_function[tag] += float(test.get("score", 0))
            graded = row["status"] == "graded"
            own = set(report_of(row).functions) or set(functions)  # another version's function: empty, not 0
            cells = [plain(row["key"]), plain(row["display_name"]), plain(row["source"] or ""), row.get("version") or "",
                     *((f"{per_function[f]:g}" if graded and f in own else "") for f in functions),
                     f"{row['total']:g}" if graded and row["total"] is not None else "", f"{row['max_total']:g}",
                     row["status"], row["flags"], row["graded_at"], row["run_id"], row["digest"],
                     row.get("manifest_hash") or ""]
            writer.writerow([_csv_safe(cell) for cell in cells] + ([plain(row["voided"])] if history else []))
        return buffer.getvalue()

    @contextmanager
    def _write(self):
        """One transaction at a time from this process; SQLite would serialise them anyway."""
        try:
            with self._lock, self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as error:
            if "full" in str(error).lower():  # SQLite's "database or disk is full"
                raise OSError(errno.ENOSPC, f"No space left for the gradebook {self.url}") from error
            raise GradebookError(f"Could not write to the gradebook {self.url}: {error}") from error


def _row(row) -> dict:
    entry = dict(row._mapping)
    entry["key"] = entry.get("key") or entry["submission"]
    entry["display_name"] = entry.get("display_name") or entry["submission"]
    entry["status"] = entry.get("status") or "graded"
    return entry


def report_of(row: dict) -> SubmissionReport:
    """The report a gradebook row recorded (rows from before schema 2 are rebuilt from their results)."""
    if row.get("report"):
        return SubmissionReport.from_dict(json.loads(row["report"]))
    results = json.loads(row["results"])
    tests = [{"rubric_id": "", "name": t["name"], "function": (t.get("tags") or ["?"])[0], "score": t["score"],
              "max_score": t["max_score"], "status": t["status"], "output": t.get("output", ""), "flags": []}
             for t in results.get("tests", [])]
    return SubmissionReport(name=row["submission"], total=row["total"] or 0.0, max_total=row["max_total"],
                            tests=tests, flags=row["flags"].split(), digest=row["digest"], key=row["key"],
                            display_name=row["display_name"])


def _csv_safe(value) -> str:
    """A cell a spreadsheet will not run as a formula (student names and sources come from students)."""
    text_value = str(value)
    return "'" + text_value if text_value[:1] in ("=", "+", "-", "@") and not _is_number(text_value) else text_value


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")   # readers (exports) never block the grader
    cursor.execute("PRAGMA synchronous=FULL")   # a committed grade survives kill -9 and power loss
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def open_gradebook(url: str | None, out_dir: Path | None) -> Gradebook:
    if url is None:
        if out_dir is None:
            raise GradebookError("Give --gradebook URL or --out DIR (whose gradebook.sqlite is used).")
        if not (Path(out_dir) / "gradebook.sqlite").exists():
            raise GradebookError(f"{out_dir} is not a grading output folder (it has no gradebook.sqlite).")
        url = default_url(Path(out_dir))
    return Gradebook(url)
