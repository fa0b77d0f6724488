"""Submissions in: find them on disk and stage a clean copy of each (the first stage of grading).

A submission is a folder, a ``.zip`` of one, or a bare ``hello_mnist.py``; a folder of such things is
a class. Staging copies only ``hello_mnist.py`` and ``model.keras`` (with size caps, never following
links, never extracting a zip member outside the copy), so a submission's ``conftest.py``,
``sitecustomize.py`` or ``.pth`` files never reach the sandbox. Problems become messages for the
student and flags for the TA; they never stop the batch.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .artifacts import inert
from .model_file import check_model_file

MODULE = "hello_mnist.py"
MODEL = "model.keras"
MAX_MODULE_BYTES = 1024 * 1024
MAX_MODEL_BYTES = 64 * 1024 * 1024
MAX_ZIP_BYTES = 256 * 1024 * 1024
MAX_ZIP_MEMBERS = 2000
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.@+-]+")


class SubmissionPathError(ValueError):
    """A path given on the command line does not exist or is not a submission (the TA's to fix)."""


@dataclass(frozen=True)
class Submission:
    name: str
    source: Path
    kind: str  # "folder", "zip" or "file"


@dataclass
class Staged:
    submission: Submission
    directory: Path
    digest: str = ""
    has_module: bool = False
    model_file: dict = field(default_factory=lambda: {"present": False})
    problems: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def intake(self) -> dict:
        """What the graders and the report learn about intake (plain JSON)."""
        return {"name": self.submission.name, "source": str(self.submission.source), "kind": self.submission.kind,
                "digest": self.digest, "has_module": self.has_module, "model_file": self.model_file,
                "problems": self.problems, "flags": self.flags}


def discover(paths: list[Path]) -> list[Submission]:
    """Expand command-line paths into submissions with unique, filesystem-safe names.

    Raises:
        SubmissionPathError: a path that does not exist, or a folder with nothing to grade.
    """
    found: list[tuple[str, Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise SubmissionPathError(f"{path} does not exist. Give submission folders, .zip files, hello_mnist.py "
                                      "files, or a folder that holds one submission per sub-folder.")
        if path.is_file():
            if path.suffix == ".zip":
                found.append((path.stem, path, "zip"))
            elif path.suffix == ".py":
                found.append((path.parent.name if path.stem == "hello_mnist" else path.stem, path, "file"))
            else:
                raise SubmissionPathError(f"{path} is neither a folder, a .zip nor a .py file.")
        elif _looks_like_submission(path):
            found.append((path.name, path, "folder"))
        else:
            children = sorted(p for p in path.iterdir()
                              if not p.name.startswith(".") and (p.is_dir() or p.suffix in (".zip", ".py")))
            if not children:
                raise SubmissionPathError(f"{path} holds no submissions (no hello_mnist.py, no sub-folders, no .zip).")
            for child in children:
                kind = "folder" if child.is_dir() else ("zip" if child.suffix == ".zip" else "file")
                found.append((child.stem if kind != "folder" else child.name, child, kind))
    submissions, used = [], set()
    for name, path, kind in found:
        base = SAFE_NAME.sub("_", name).strip("._") or "submission"
        unique, counter = base, 2
        while unique in used:
            unique, counter = f"{base}-{counter}", counter + 1
        used.add(unique)
        submissions.append(Submission(unique, path, kind))
    return submissions


def _looks_like_submission(folder: Path) -> bool:
    names = {p.name for p in folder.iterdir()}
    return bool(names & {MODULE, MODEL, "hello_mnist.ipynb"}) or any(n.endswith(".py") for n in names)


def stage(submission: Submission, destination: Path) -> Staged:
    """Copy the gradable files of ``submission`` into ``destination`` (created, world-readable)."""
    destination.mkdir(parents=True, exist_ok=True)
    staged = Staged(submission, destination)
    try:
        if submission.kind == "zip":
            files = _from_zip(submission.source, staged)
        elif submission.kind == "file":
            files = {MODULE: _read_file(submission.source, MAX_MODULE_BYTES, staged)}
        else:
            files = _from_folder(submission.source, staged)
    except OSError as error:
        staged.problems.append(f"The submission could not be read ({error.strerror or error}).")
        staged.flags.append("unreadable")
        files = {}
    digest = hashlib.sha256()
    for name in (MODULE, MODEL):
        data = files.get(name)
        if data is None:
            continue
        target = destination / name
        target.write_bytes(data)
        os.chmod(target, 0o644)
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    os.chmod(destination, 0o755)
    staged.digest = digest.hexdigest()
    staged.has_module = MODULE in files
    if not staged.has_module and not any("hello_mnist.py" in p for p in staged.problems):
        staged.problems.append("No hello_mnist.py was found in the submission; nothing in it can be graded.")
        staged.flags.append("missing_module")
    if staged.has_module:
        _check_source(files[MODULE], staged)
    staged.model_file = check_model_file(destination / MODEL).as_dict()
    return staged


def _read_file(path: Path, limit: int, staged: Staged) -> bytes | None:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        staged.problems.append(f"{inert(path.name)} is a link or special file; submit the file itself.")
        staged.flags.append("symlink")
        return None
    if info.st_size > limit:
        staged.problems.append(f"{inert(path.name)} is {info.st_size / 2**20:.1f} MB; the limit is {limit // 2**20} MB.")
        staged.flags.append("oversized_file")
        return None
    with open(path, "rb") as handle:
        return handle.read(limit + 1)[:limit]


def _from_folder(folder: Path, staged: Staged) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    names = sorted(os.listdir(folder))
    module_name = MODULE if MODULE in names else _fallback_module(names, staged)
    if module_name:
        data = _read_file(folder / module_name, MAX_MODULE_BYTES, staged)
        if data is not None:
            files[MODULE] = data
    if MODEL in names:
        data = _read_file(folder / MODEL, MAX_MODEL_BYTES, staged)
        if data is not None:
            files[MODEL] = data
    return files


def _fallback_module(names: list[str], staged: Staged) -> str | None:
    """No hello_mnist.py: accept a single renamed .py file (LMS downloads rename), explain a notebook."""
    python = [n for n in names if n.endswith(".py")]
    if len(python) == 1:
        staged.problems.append(f"Your module is named {inert(python[0])}; it was graded as hello_mnist.py. Name it "
                               "hello_mnist.py next time.")
        staged.flags.append("renamed_module")
        return python[0]
    if any(n.endswith(".ipynb") for n in names):
        staged.problems.append("A notebook was submitted where hello_mnist.py was expected. The graded functions "
                               "live in hello_mnist.py; submit that file (and model.keras).")
        staged.flags.append("notebook_instead_of_module")
    return None


def _from_zip(path: Path, staged: Staged) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if path.stat().st_size > MAX_ZIP_BYTES:
        staged.problems.append(f"The zip is larger than {MAX_ZIP_BYTES // 2**20} MB.")
        staged.flags.append("oversized_file")
        return files
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                staged.problems.append(f"The zip holds {len(members)} files; submit only hello_mnist.py and model.keras.")
                staged.flags.append("oversized_file")
                return files
            by_name: dict[str, zipfile.ZipInfo] = {}
            for member in members:
                name = member.filename.replace("\\", "/")
                parts = name.split("/")
                if name.startswith("/") or ".." in parts or re.match(r"^[A-Za-z]:", name):
                    staged.problems.append(f"The zip contains an unsafe path {inert(name[:80])}; it was ignored.")
                    staged.flags.append("zip_path_traversal")
                    continue
                if stat.S_ISLNK(member.external_attr >> 16):
                    staged.problems.append(f"The zip contains a symbolic link {inert(name[:80])}; it was ignored.")
                    staged.flags.append("zip_symlink")
                    continue
                if member.is_dir() or "__MACOSX" in parts or len(parts) > 3:
                    continue
                by_name.setdefault(parts[-1], member)
            names = sorted(by_name)
            module_name = MODULE if MODULE in by_name else _fallback_module(names, staged)
            for wanted, source_name, limit in ((MODULE, module_name, MAX_MODULE_BYTES), (MODEL, MODEL, MAX_MODEL_BYTES)):
                member = by_name.get(source_name) if source_name else None
                if member is None:
                    continue
                data = _read_member(archive, member, limit)
                if data is None:
                    staged.problems.append(f"{inert(member.filename[:80])} in the zip unpacks to more than "
                                           f"{limit // 2**20} MB (a zip bomb?); it was ignored.")
                    staged.flags.append("zip_bomb")
                    continue
                files[wanted] = data
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError, NotImplementedError) as error:
        staged.problems.append(f"The zip file is damaged or empty ({type(error).__name__}); re-create it and "
                               "submit again.")
        staged.flags.append("corrupt_zip")
    return files


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int) -> bytes | None:
    """Read at most ``limit`` bytes, whatever the header claims; None when there is more."""
    if member.file_size > limit:
        return None
    with archive.open(member) as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


# Text a graded module has no reason to contain or print: grading results (forging is pointless, but the TA
# should know it was tried).
FORGING = re.compile(r"results?\.json|/autograder/results|/tmp/out\b|progress\.txt|\"score\"\s*:"
                     r"|\bScore:\s*\d+\s*/\s*100", re.I)
# Calls a graded module has no reason to make; reported to the TA, never penalised by themselves.
SUSPICIOUS_NAMES = {"subprocess", "socket", "ctypes", "multiprocessing", "signal", "system", "popen", "fork",
                    "_exit", "kill", "setrlimit", "ptrace", "urllib", "requests", "http", "builtins", "__import__",
                    "exec", "eval", "__builtins__", "f_back", "f_globals", "gi_frame"}


def _check_source(source: bytes, staged: Staged) -> None:
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as error:
        staged.problems.append(f"hello_mnist.py is not UTF-8 text (byte {source[error.start]:#04x} at position "
                               f"{error.start}); save it as UTF-8.")
        staged.flags.append("not_utf8")
        return
    try:
        tree = ast.parse(text)  # parsing runs no code
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return  # the import probe reports syntax errors with their line
    used = set()
    forging = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and FORGING.search(node.value):
            forging = True
        if isinstance(node, ast.Import):
            used |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            used.add(node.module.split(".")[0])
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.Name):
            used.add(node.id)
    found = sorted(used & SUSPICIOUS_NAMES)
    if found:
        staged.flags.append("suspicious_code:" + ",".join(found))
    if forging:
        staged.flags.append("forged_output")
