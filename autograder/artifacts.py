"""Read what a sandbox run left behind, as untrusted claims: capped sizes, JSON only, npy without pickle.

Also turns a probe that did not complete (student exception, timeout, limit, early exit) into the
sentence the student reads. Every grader goes through `Artifacts`; nothing else opens these files.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np

from .text import inert

MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_ARRAY_BYTES = 48 * 1024 * 1024
NUMERIC_KINDS = "biuf"

# Which probe carries which graded function's calls.
PROBE_OF = {"forward_loop": "forward", "forward_matrix": "forward"}


class ProbeFailed(Exception):
    """The probe cannot support a verdict; ``str()`` is the student-facing reason, ``flag`` the TA's."""

    def __init__(self, message: str, flag: str | None = None):
        super().__init__(message)
        self.flag = flag


class Artifacts:
    """Read-only view of ``artifacts/<probe>/...`` for one submission."""

    def __init__(self, root: Path, *, module: str = "the module", notebook: dict | None = None):
        self.root = Path(root)
        self.module = module  # the graded module's file name, for messages
        # A notebook submission (intake.json's "notebook"): its file name and where each module line came from,
        # so feedback points at the student's cell and line, not at the module built from the notebook.
        self.source = SourceMap.of(module, notebook)
        self._results: dict[str, dict] = {}

    # -- raw reads ---------------------------------------------------------------------------
    def _json(self, path: Path):
        if not path.is_file() or path.is_symlink():
            return None
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ProbeFailed("The probe's output was too large to read.", flag="oversized_artifact")
        try:
            return json.loads(path.read_bytes())
        except (ValueError, RecursionError, UnicodeDecodeError):
            raise ProbeFailed("The probe's output was not readable.", flag="malformed_artifact") from None

    def status(self, probe: str) -> dict:
        value = self._json(self.root / probe / "status.json")
        return value if isinstance(value, dict) else {"not_run": True}

    def output(self, probe: str, limit: int = 4000) -> str:
        path = self.root / probe / "output.txt"
        if not path.is_file() or path.is_symlink():
            return ""
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")

    def progress(self, probe: str) -> str:
        path = self.root / probe / "progress.txt"
        if not path.is_file() or path.is_symlink():
            return ""
        with open(path, "rb") as handle:
            lines = handle.read(20000).decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""

    def result(self, probe: str) -> dict:
        """The probe's ``result.json`` after checking that the probe ran to its end.

        Raises:
            ProbeFailed: timeout, limit, early exit, sandbox death or malformed output.
        """
        if probe in self._results:
            return self._results[probe]
        status = self.status(probe)
        payload = self._json(self.root / probe / "result.json")
        # A result.json is only the harness's if its process ended normally: student code can write one
        # itself and then hang or get itself killed before the harness would have overwritten it.
        ended_badly = bool(status.get("timed_out")) or status.get("signal") is not None \
            or status.get("exit_code") not in (0, None) or bool(status.get("sandbox_died")) \
            or bool(status.get("unfinished"))
        if not isinstance(payload, dict) or payload.get("completed") is not True or ended_badly:
            raise ProbeFailed(*explain_incomplete(status, self.progress(probe)))
        record, errors = payload.get("record"), payload.get("errors")
        if not isinstance(record, dict) or not isinstance(errors, list):
            raise ProbeFailed("The probe's output was not readable.", flag="malformed_artifact")
        payload["errors"] = [e for e in errors if isinstance(e, dict)]
        self._results[probe] = payload
        return payload

    def record(self, probe: str, case: str | None = None) -> dict:
        """The probe's record (or one case of it); raise the student's error if that part failed."""
        payload = self.result(probe)
        for error in payload["errors"]:
            if error.get("case") == "probe" or (case is not None and error.get("case") == case):
                raise ProbeFailed(*explain_error(error, self.module, source=self.source))
        value = payload["record"] if case is None else payload["record"].get(case)
        if case is not None and "cases" in payload["record"] and value is None:
            value = payload["record"]["cases"].get(case) if isinstance(payload["record"]["cases"], dict) else None
        if not isinstance(value, dict):
            raise ProbeFailed("The autograder found no result for this check.", flag="malformed_artifact")
        return value

    def case_error(self, probe: str, case: str) -> str | None:
        """The student-facing error of one case, or None when it ran."""
        for error in self.result(probe)["errors"]:
            if error.get("case") in (case, "probe"):
                return explain_error(error, self.module, source=self.source)[0]
        return None

    def array(self, probe: str, key: str, *, case: str | None = None,
              max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
        """Load ``<probe>/<key>.npy`` without pickle, numeric dtypes only.

        Raises:
            ProbeFailed: the student's error for this probe (or ``case``), or a missing, too large,
                non-numeric or unreadable array.
        """
        for error in self.result(probe)["errors"]:
            if error.get("case") in ("probe", case or key):
                raise ProbeFailed(*explain_error(error, self.module, source=self.source))
        path = self.root / probe / f"{key}.npy"
        if not path.is_file() or path.is_symlink():
            raise ProbeFailed(f"No array {key!r} was produced.", flag=None)
        if path.stat().st_size > max_bytes:
            raise ProbeFailed(f"The array {key!r} is larger than {max_bytes // 2**20} MB.", flag="oversized_artifact")
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            raise ProbeFailed(f"The array {key!r} was not a readable numeric array.", flag="malformed_artifact") from None
        if not isinstance(array, np.ndarray) or array.dtype.kind not in NUMERIC_KINDS:
            raise ProbeFailed(f"The array {key!r} does not hold plain numbers (dtype {getattr(array, 'dtype', '?')}).")
        return array


class SourceMap:
    """Where a line of the graded module is in what the student handed in: the module itself, or the cell and
    line of the notebook it was built from (notebook_intake's ``line_to_cell``)."""

    def __init__(self, module: str, notebook_file: str = "", line_to_cell: dict | None = None):
        self.module, self.notebook_file, self.line_to_cell = module, notebook_file, line_to_cell or {}

    @classmethod
    def of(cls, module: str, notebook: dict | None) -> "SourceMap":
        if not isinstance(notebook, dict) or not isinstance(notebook.get("line_to_cell"), dict):
            return cls(module)
        return cls(module, str(notebook.get("file") or "the notebook"), notebook["line_to_cell"])

    @property
    def handed_in(self) -> str:
        """The file the student handed in, for messages."""
        return inert(self.notebook_file[:120]) if self.notebook_file else self.module

    def where(self, line) -> str:
        """``hello_mnist.py line 12``, or ``hello_mnist.ipynb cell 7, line 3`` for a notebook's line."""
        place = self.line_to_cell.get(str(line)) if self.notebook_file else None
        if isinstance(place, list) and len(place) == 2 and all(isinstance(n, int) for n in place):
            return f"{self.handed_in} cell {place[0]}, line {place[1]}"
        return f"{self.module} line {line}"

    def import_hint(self, stem: str) -> str:
        if self.notebook_file:
            return "restart the notebook's kernel and run all its cells from the top to see the error"
        return f"run `python -c 'import {stem}'` to see the error"


def explain_error(error: dict, module: str = "the module", *, source: SourceMap | None = None) -> tuple[str, str | None]:
    """A recorded student error as ``(message, flag)``; every part the student controls is made inert.
    ``source`` points the place of the error at what the student handed in (a notebook's cell and line)."""
    source = source or SourceMap(module)
    stem = module[:-3] if module.endswith(".py") else module
    function = str(error.get("function", "?"))
    kind = str(error.get("kind", "error"))
    shown_kind = kind if kind.isidentifier() else inert(kind[:80])
    message = inert(str(error.get("message", ""))[:600])
    frames = error.get("frames") if isinstance(error.get("frames"), list) else []
    where = ""
    if frames and isinstance(frames[-1], dict):
        frame = frames[-1]
        name = str(frame.get("function"))
        name = name if name.isidentifier() else inert(name[:80])
        where = f" ({source.where(frame.get('line'))}, in {name}: {inert(str(frame.get('code', ''))[:120])})"
    if function == "import":
        return (f"{source.handed_in} could not be imported: {shown_kind}: {message}{where}. Nothing in it can be "
                f"graded until it imports; {source.import_hint(stem)}.", "import_error")
    if kind == "missing":
        return (f"{module} has no function named `{function}`. The autograder looks for exactly this name "
                "(check spelling and indentation).", None)
    if kind == "NotImplementedError":
        return (f"`{function}` still raises NotImplementedError: replace the `raise NotImplementedError` line "
                "with your code.", None)
    if kind == "SystemExit":
        return f"`{function}` called sys.exit(); a graded function must return a value instead{where}.", "early_exit"
    if kind == "harness":
        return ("The autograder could not finish this check on your submission; your TA has the details.",
                "grader_error")
    if kind == "refused":
        return f"`{function}`: {message}.", "refused_object"
    if kind in ("return", "yield", "not_callable"):
        return f"`{function}`: {message}.", None
    return f"`{function}` raised {shown_kind}: {message}{where}", None


def explain_incomplete(status: dict, progress: str) -> tuple[str, str | None]:
    """Why a probe left no result, from the supervisor's status and the runner's own observations."""
    during = f" (last step: {inert(progress)})" if progress else ""
    if status.get("skipped"):
        return (f"Not checked: {status.get('reason', 'the submission could not be run')}", None)
    if status.get("over_cap"):
        return ("Not checked: your code sent more than the grader accepts from one submission (files and output "
                "in all), so its sandbox was stopped.", "artifacts_too_large")
    if status.get("not_run"):
        return ("This check did not run: the sandbox stopped earlier and ran out of restarts.", "sandbox_died")
    if status.get("sandbox_died"):
        return (f"The sandbox was stopped while this check ran{during}: it hit the memory, CPU or process limit "
                "or the total time limit.", "limit_hit")
    if status.get("protocol_violation"):
        return (f"Your code wrote to the grader's channel{during} (something that is not a function's answer), so "
                "this check was stopped. Graded functions must only return their results.", "protocol_violation")
    if status.get("memory_limit"):
        return (f"Your code was stopped{during} for using more memory than allowed.", "limit_hit")
    if status.get("scratch_full"):
        return (f"Your code wrote more files than its scratch space holds{during}, so it was stopped. Graded "
                "functions need no files of their own but save_model's.", "limit_hit")
    if status.get("timed_out"):
        seconds = status.get("timeout_s")
        return (f"Your code did not finish within {seconds:.0f} s{during}. Look for an infinite loop, a sleep, "
                "or training that is far larger than asked.", "timeout")
    number = status.get("signal")
    if isinstance(number, int):
        if number == signal.SIGXCPU:
            return f"Your code used up its CPU-time limit{during}.", "limit_hit"
        if number == signal.SIGXFSZ:
            return f"Your code tried to write a file larger than the size limit{during}.", "limit_hit"
        if number == signal.SIGKILL:
            return (f"Your code was killed{during}, most likely for using more memory than allowed.", "limit_hit")
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        return f"Your code crashed with signal {name}{during}.", "abnormal_exit"
    code = status.get("exit_code")
    if isinstance(code, int):
        return (f"Your code ended the process (exit code {code}, e.g. sys.exit or os._exit){during} before the "
                "check could finish; graded functions must return normally.", "early_exit")
    return "This check produced no result.", "abnormal_exit"
