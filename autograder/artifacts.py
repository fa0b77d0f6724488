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

    def __init__(self, root: Path, *, module: str = "the module"):
        self.root = Path(root)
        self.module = module  # the graded module's file name, for messages
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
                raise ProbeFailed(*explain_error(error, self.module))
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
                return explain_error(error, self.module)[0]
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
                raise ProbeFailed(*explain_error(error, self.module))
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


def explain_error(error: dict, module: str = "the module") -> tuple[str, str | None]:
    """A recorded student error as ``(message, flag)``; every part the student controls is made inert."""
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
        where = f" ({module} line {frame.get('line')}, in {name}: {inert(str(frame.get('code', ''))[:120])})"
    if function == "import":
        return (f"{module} could not be imported: {shown_kind}: {message}{where}. Nothing in the module can be "
                f"graded until it imports; run `python -c 'import {stem}'` to see the error.", "import_error")
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
