"""The gradebook: every grading run and every grade, append-only, in SQLite or any SQLAlchemy database.

A regrade adds rows; nothing is updated or deleted, so the history of a student's scores stays. A
grade is written in one transaction together with its per-test rows, after the submission's files
are complete, so a crash leaves either the whole grade or none of it.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (Column, Float, ForeignKey, Integer, MetaData, String, Table, Text, create_engine, event,
                        func, select)
from sqlalchemy.exc import SQLAlchemyError

from .report import SubmissionReport
from .rubric import FUNCTIONS

metadata = MetaData()

runs = Table(
    "grading_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
    Column("status", String(16), nullable=False),        # running, finished, interrupted
    Column("command", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),   # graders + rubric + harness + thresholds
    Column("host", String(255), nullable=False),
    Column("settings", Text, nullable=False),
)

grades = Table(
    "grades", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("grading_runs.id"), nullable=False, index=True),
    Column("submission", String(255), nullable=False, index=True),
    Column("digest", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("total", Float, nullable=False),
    Column("max_total", Float, nullable=False),
    Column("flags", Text, nullable=False),
    Column("results", Text, nullable=False),              # the results.json that was written
    Column("graded_at", String(32), nullable=False),
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


class GradebookError(RuntimeError):
    """The database cannot be opened or written (wrong URL, permissions, full disk)."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_url(out_dir: Path) -> str:
    return f"sqlite:///{Path(out_dir).resolve() / 'gradebook.sqlite'}"


class Gradebook:
    """Append-only store of runs and grades.

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
        except SQLAlchemyError as error:
            raise GradebookError(f"Cannot open the gradebook {url}: {error}") from None
        self.url = url
        self._lock = threading.Lock()

    def start_run(self, *, command: str, fingerprint: str, settings: dict) -> int:
        with self._write() as connection:
            result = connection.execute(runs.insert().values(
                started_at=now(), status="running", command=command, fingerprint=fingerprint,
                host=socket.gethostname(), settings=json.dumps(settings, sort_keys=True)))
            return int(result.inserted_primary_key[0])

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        with self._write() as connection:
            connection.execute(runs.update().where(runs.c.id == run_id).values(finished_at=now(), status=status))

    def record(self, run_id: int, report: SubmissionReport, *, fingerprint: str, results: dict) -> int:
        """Store one grade and its tests in a single transaction; returns the grade id."""
        with self._write() as connection:
            grade_id = int(connection.execute(grades.insert().values(
                run_id=run_id, submission=report.name, digest=report.digest, fingerprint=fingerprint,
                total=report.total, max_total=report.max_total, flags=" ".join(report.flags),
                results=json.dumps(results), graded_at=now())).inserted_primary_key[0])
            connection.execute(test_results.insert(), [
                {"grade_id": grade_id, "rubric_id": t["rubric_id"], "name": t["name"], "function": t["function"],
                 "score": t["score"], "max_score": t["max_score"], "status": t["status"]} for t in report.tests])
            return grade_id

    def is_graded(self, submission: str, digest: str, fingerprint: str) -> bool:
        query = select(func.count()).select_from(grades).where(
            grades.c.submission == submission, grades.c.digest == digest, grades.c.fingerprint == fingerprint)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one() > 0

    def latest(self) -> list[dict]:
        """The newest grade of every submission."""
        newest = select(grades.c.submission, func.max(grades.c.id).label("id")).group_by(grades.c.submission).subquery()
        query = select(grades).join(newest, grades.c.id == newest.c.id).order_by(grades.c.submission)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def history(self) -> list[dict]:
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(select(grades).order_by(grades.c.id))]

    def counts(self) -> dict:
        with self.engine.connect() as connection:
            return {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                    for table in (runs, grades, test_results)}

    def export_csv(self, *, history: bool = False) -> str:
        """CSV of the latest grade per submission (or every grade with ``history``), points per function."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["submission", *FUNCTIONS, "total", "max_total", "flags", "graded_at", "run_id", "digest"])
        for row in (self.history() if history else self.latest()):
            per_function = {name: 0.0 for name in FUNCTIONS}
            for test in json.loads(row["results"]).get("tests", []):
                for tag in test.get("tags", []):
                    if tag in per_function:
                        per_function[tag] += float(test.get("score", 0))
            writer.writerow([row["submission"], *(f"{per_function[f]:g}" for f in FUNCTIONS), f"{row['total']:g}",
                             f"{row['max_total']:g}", row["flags"], row["graded_at"], row["run_id"], row["digest"]])
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
        if not (Path(out_dir) / "gradebook.sqlite").exists() and not Path(out_dir).is_dir():
            raise GradebookError(f"{out_dir} is not a grading output folder.")
        url = default_url(Path(out_dir))
    return Gradebook(url)
