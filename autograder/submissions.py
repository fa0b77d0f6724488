"""Submissions in: find them on disk, give each a stable identity, and stage a clean copy (grading's first stage).

A submission is a folder, a ``.zip`` of one, or a bare module (``hello_mnist.py``); a folder of such things
is a class. Each submission is keyed by where it came from: the name of its folder, zip or file as given, in
full Unicode (``Zoé``), never by a position or a counter that shifts when a classmate is added. Its files
live under a filesystem-safe folder name derived from that key alone (``Zoe-5d1c2a7b``), so two students
never share a folder and no student's folder depends on who else is in the class. Staging copies only the
graded module and the trained model (with size caps, never following links, never extracting a zip member
outside the copy), so a submission's ``conftest.py``, ``sitecustomize.py`` or ``.pth`` files never reach
the sandbox, and finds which assignment version the submission is for (``resolve_version``). Every
problem becomes a message for the student and a flag for the TA; nothing a submission holds can make
staging raise.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import stat
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from anyascii import anyascii

from .archives import ArchiveError, open_zip, read_member
from .model_file import check_model_file
from .syntax_rescue import rescue
from .notebook_intake import MAX_NOTEBOOK_BYTES
from .text import inert, one_line

SUBMITTED_SUFFIX = ".submitted.py"  # <module>.submitted.py: the text as submitted, kept when a syntax error was cut out
# The first lines of a released module say which version it is: "... (hello_mnist v1); instructors: ...".
VERSION_HEADER = re.compile(r"\(([A-Za-z_][A-Za-z0-9_]*) (v\d[A-Za-z0-9._-]*)\)")
MAX_MODULE_BYTES = 1024 * 1024
MISSING_DEFINITION = "No code cell defines `"  # notebook_intake's message for a graded function it did not find
MAX_KEPT_NOTEBOOK_BYTES = 8 * 1024 * 1024  # a submitted notebook up to this size is kept beside what was graded
MAX_MODEL_BYTES = 64 * 1024 * 1024
MAX_ZIP_BYTES = 256 * 1024 * 1024
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_DIRECTORY_BYTES = 2 * 1024 * 1024
MAX_FOLDER_ENTRIES = 500      # entries looked at in one submission folder (sub-folders included)
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.@+-]+")
MAX_FOLDER_NAME = 60
# What a folder of submissions never holds, and a repository or a home folder usually does.
NOT_A_SUBMISSION = {".git", "pyproject.toml", "setup.cfg", "node_modules", ".venv", "package.json", ".hg"}
GRADABLE_SUFFIXES = (".py", ".ipynb", ".keras", ".zip", ".h5")


class SubmissionPathError(ValueError):
    """A path given on the command line does not exist or is not a submission (the TA's to fix)."""


@dataclass(frozen=True)
class Layout:
    """What one assignment version expects in a submission."""
    version: str
    name: str                # the assignment's name, as the released module's header gives it
    module: str              # the graded module's file name
    model: str               # the trained model's file name
    notebook: str = ""
    rescue_syntax_errors: bool = True
    functions: tuple[str, ...] = ()   # the graded functions the module defines (a notebook's are read for these)
    accepts_notebook: bool = False    # the manifest's ``accepts`` lists "notebook"
    answers: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (name, grade_id, variables) of "your turn" cells


@dataclass(frozen=True)
class Expected:
    """Every version a submission may be for, the one assumed when nothing says which, and the TA's choice."""
    layouts: tuple[Layout, ...]
    default: str
    requested: str | None = None

    def layout(self, version: str) -> Layout:
        return next(layout for layout in self.layouts if layout.version == version)

    @property
    def module_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(layout.module for layout in self.layouts))

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(layout.model for layout in self.layouts))

    @property
    def notebook_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(layout.notebook for layout in self.layouts if layout.notebook))


def expected_from(*, module: str, model: str) -> Expected:
    """A one-version ``Expected`` (for tests and tools that know exactly what they stage)."""
    return Expected((Layout("v0", Path(module).stem, module, model),), default="v0")


@dataclass(frozen=True)
class Submission:
    """One student's hand-in, before staging.

    ``key`` is its identity in the gradebook, ``display_name`` the name as given (for people), ``folder``
    where its files go in the output folder, ``source`` where it came from.
    """
    key: str
    display_name: str
    folder: str
    source: Path
    kind: str  # "folder", "zip", "file", or "lms" (one student's files in an LMS download)
    flags: tuple[str, ...] = ()
    # kind "lms": (file name as the student named it, locator in the download), and what the LMS says of the
    # student (lms/grading.py entry_metadata), kept with the report in the gradebook.
    members: tuple[tuple[str, str], ...] = ()
    lms: dict | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.folder


@dataclass
class Staged:
    submission: Submission
    directory: Path
    digest: str = ""
    has_module: bool = False
    model_file: dict = field(default_factory=lambda: {"present": False})
    problems: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    version: str = ""
    module: str = ""         # the graded module's file name in ``directory`` (the version's name for it)
    model: str = ""
    notebook: dict | None = None  # a notebook submission: what notebook_intake kept and dropped (plain JSON)
    # The module or notebook as handed in, (name, bytes): what a cluster worker stages again (cluster.py).
    handed_in: tuple[str, bytes] | None = field(default=None, repr=False, compare=False)

    def intake(self) -> dict:
        """What the graders and the report learn about intake (plain JSON)."""
        submission = self.submission
        return {"key": submission.key, "display_name": submission.display_name, "name": submission.folder,
                "source": str(submission.source), "kind": submission.kind, "digest": self.digest,
                "version": self.version, "module": self.module, "has_module": self.has_module,
                "model_file": self.model_file, "problems": self.problems, "flags": self.flags,
                "notebook": self.notebook}


# ---------------------------------------------------------------------------------------------
# Discovery and identity
# ---------------------------------------------------------------------------------------------

def safe_folder(key: str) -> str:
    """A filesystem-safe folder name that depends on ``key`` alone.

    ASCII keys made of safe characters are used as they are; anything else is transliterated
    (``anyascii``: ``Zoé`` -> ``Zoe``, ``王芳`` -> ``WangFang``) and gets the first 8 hex digits of the
    key's SHA-256, so ``Zoé`` and ``Zoë`` never share a folder.

    Example:
        >>> safe_folder("alice"), safe_folder("Zoé")[:4]
        ('alice', 'Zoe-')
    """
    text = key if key.isascii() else anyascii(key)
    slug = SAFE_NAME.sub("_", text).strip("._-")[:MAX_FOLDER_NAME]
    if slug != key or not slug:
        slug = f"{slug or 'submission'}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return slug


def _normalise(name: str) -> str:
    """The same name typed on macOS (decomposed) and on Linux (composed) is one student."""
    return unicodedata.normalize("NFC", name).strip()


def discover(paths: list[Path], *, module_names: tuple[str, ...] = (), lms: str = "auto") -> list[Submission]:
    """Expand command-line paths into submissions, each with its stable identity.

    ``module_names`` are the graded modules' file names of the known versions: a bare module handed in as a
    file is named after its folder (``alice/hello_mnist.py`` is alice's). A folder or zip that is an LMS
    download (``lms``: "auto" recognises Canvas, Moodle and Gradescope layouts, a layout's name insists on
    it, "none" never looks) gives one submission per student, keyed by the LMS identity (``canvas:12345``).

    Raises:
        SubmissionPathError: a path that does not exist, a folder with nothing to grade, a folder whose
            entries mostly are not submissions (the parent folder given by mistake), or not the LMS layout
            asked for.
    """
    from .lms.archive import DownloadError
    from .lms.grading import entry_metadata, recognise
    from .lms.intake import UnknownLayoutError
    found: list[tuple[str, Path, str]] = []
    downloads: list[Submission] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise SubmissionPathError(f"{path} does not exist. Give submission folders, .zip files, module files, "
                                      "or a folder that holds one submission per sub-folder.")
        if path.is_dir() or path.suffix == ".zip":
            try:
                download = recognise(path, lms)
            except (UnknownLayoutError, DownloadError) as error:
                raise SubmissionPathError(str(error)) from None
            if download is not None:
                downloads += [Submission(entry.key, entry.display_name, entry.safe_folder, path, "lms",
                                         members=tuple(sorted(entry.files.items())),
                                         lms=entry_metadata(entry, download.layout)) for entry in download.entries]
                continue
        if path.is_file():
            found.append(_file_entry(path, module_names))
        elif _looks_like_submission(path):
            found.append((path.name, path, "folder"))
        else:
            found += _class_entries(path, module_names)
    return _identities(found) + downloads


def _file_entry(path: Path, module_names: tuple[str, ...]) -> tuple[str, Path, str]:
    if path.suffix == ".zip":
        return path.stem, path, "zip"
    if path.suffix == ".py":
        return (path.resolve().parent.name if path.name in module_names else path.stem), path, "file"
    raise SubmissionPathError(f"{path} is neither a folder, a .zip nor a .py file.")


def _entries(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError as error:
        raise SubmissionPathError(f"{folder} cannot be read: {error.strerror}.") from None


def _looks_like_submission(folder: Path) -> bool:
    """A folder that holds a student's files itself (rather than one folder per student)."""
    names = set(_entries(folder))
    if names & NOT_A_SUBMISSION:
        return False
    return any(name.endswith((".py", ".keras", ".ipynb")) for name in names)


def _is_submission_like(child: Path) -> bool:
    """Could this entry of a class folder be one student's submission? (Empty folders can: an LMS that
    dropped a student's files still lists the student.)"""
    if child.is_file():
        return child.suffix in (".zip", ".py")
    try:
        names = os.listdir(child)
    except OSError:
        return False
    if not names:
        return True
    if set(names) & NOT_A_SUBMISSION or len(names) > MAX_FOLDER_ENTRIES:
        return False
    try:  # the student's files, or one or two folder levels down (a zipped-up folder, an LMS's nesting)
        return any(name.endswith(GRADABLE_SUFFIXES) for depth, folder in _walk(child, max_depth=2)
                   for name in os.listdir(folder)[:MAX_FOLDER_ENTRIES])
    except OSError:
        return False


def _class_entries(path: Path, module_names: tuple[str, ...]) -> list[tuple[str, Path, str]]:
    children = [path / name for name in _entries(path) if not name.startswith(".")]
    children = [child for child in children if child.is_dir() or child.suffix in (".zip", ".py")]
    if not children:
        raise SubmissionPathError(f"{path} holds no submissions (no module, no sub-folders, no .zip).")
    unlike = [child for child in children if not _is_submission_like(child)]
    if len(unlike) * 2 > len(children):
        shown = ", ".join(one_line(child.name, limit=40) for child in unlike[:6])
        raise SubmissionPathError(
            f"{path} does not look like a folder of submissions: {len(unlike)} of its {len(children)} entries hold "
            f"no .py, .ipynb, .keras or .zip file or look like a project or home folder ({shown}"
            f"{', ...' if len(unlike) > 6 else ''}). Give the folder that holds one sub-folder or .zip per student, "
            "or the submissions themselves. Nothing was graded.")
    entries = []
    for child in children:
        if child.is_dir():
            entries.append((child.name, child, "folder"))
        else:
            entries.append(_file_entry(child, module_names))
    return entries


def _identities(found: list[tuple[str, Path, str]]) -> list[Submission]:
    """Key each entry by its name; entries that claim the same key are told apart by their source."""
    by_key: dict[str, list[tuple[str, Path, str]]] = {}
    for name, path, kind in found:
        by_key.setdefault(_normalise(name) or "submission", []).append((name, path, kind))
    submissions = []
    for key, group in by_key.items():
        unique_sources = {str(Path(p).resolve()) for _, p, _ in group}
        for name, path, kind in group:
            display = _normalise(name) or "submission"
            if len(unique_sources) == 1:
                if any(s.key == key for s in submissions):
                    continue  # the same path given twice
                submissions.append(Submission(key, display, safe_folder(key), path, kind))
            else:
                # Two different sources claim one name (alice/ and alice.zip, or two folders named alice):
                # neither may take the other's grades, so each is keyed by its own source, and flagged.
                source_key = f"{key}#{hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:6]}"
                submissions.append(Submission(source_key, display, safe_folder(source_key), path, kind,
                                              flags=("name_collision",)))
    return submissions


# ---------------------------------------------------------------------------------------------
# Staging
# ---------------------------------------------------------------------------------------------

def stage(submission: Submission, destination: Path, *, expected: Expected) -> Staged:
    """Copy the gradable files of ``submission`` into ``destination`` (created, world-readable).

    The module and the model are looked for under every known version's names; which version the
    submission is for comes from the files themselves (``resolve_version``) unless the TA chose one, and
    they are staged under that version's names. Never raises for anything the submission holds: a file that
    cannot be read, a damaged archive or an odd model file becomes a problem (for the student) and a flag
    (for the TA); only the grader's own disk (``destination``) can raise ``OSError``. When the version's
    rubric says so, a module with a syntax error is graded function by function (``syntax_rescue``): the
    broken block is replaced by a stub, the submitted text is kept beside it as ``<module>.submitted.py``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    staged = Staged(submission, destination, flags=list(submission.flags))
    if "name_collision" in submission.flags:
        staged.problems.append(f"Another submission in this class is also named {inert(submission.display_name)}; "
                               "this one was graded separately, under its own source.")
    found: dict[str, tuple[str, bytes]] = {}   # role -> (the name it was submitted under, its bytes)
    try:
        if submission.kind == "zip":
            found = _from_zip(submission.source, staged, expected)
        elif submission.kind == "file":
            data = _read_file(submission.source, module_limit(submission.source.name), staged)
            found = {"module": (submission.source.name, data)} if data is not None else {}
        elif submission.kind == "lms":
            found = _from_members(submission.members, staged, expected, destination.parent)
        else:
            found = _from_folder(submission.source, staged, expected)
    except OSError as error:
        staged.problems.append(f"The submission could not be read ({one_line(error.strerror or error)}).")
        staged.flags.append("unreadable")
    except (MemoryError, RecursionError, ValueError, UnicodeError) as error:
        staged.problems.append(f"The submission could not be read ({type(error).__name__}).")
        staged.flags.append("unreadable")
    layout = resolve_version(found, expected, staged)
    staged.version, staged.module, staged.model = layout.version, layout.module, layout.model
    staged.handed_in = found.get("module")
    files = {role: data for role, (_, data) in found.items()}
    digest = hashlib.sha256()
    for role, name in (("module", layout.module), ("model", layout.model)):
        if files.get(role) is not None:
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[role]).digest())
    staged.digest = digest.hexdigest()  # of what was submitted, before any rescue
    answers = b""
    if files.get("module") is not None and found["module"][0].endswith(".ipynb"):
        files["module"], answers = _from_notebook(found["module"][0], files["module"], staged, layout, destination)
        if files["module"] is None:
            del files["module"]
    if files.get("module") is not None:
        graded = _check_source(files["module"], staged, layout, rescue_syntax_errors=layout.rescue_syntax_errors)
        if graded is not files["module"]:
            _write(destination / (Path(layout.module).stem + SUBMITTED_SUFFIX), files["module"])
            files["module"] = graded
        files["module"] += answers  # the grader's own runner of the answer cells, after the checks of the text
    for role, name in (("module", layout.module), ("model", layout.model)):
        if files.get(role) is not None:
            _write(destination / name, files[role])  # the grader's disk: a full one raises OSError(ENOSPC)
    os.chmod(destination, 0o755)
    staged.has_module = "module" in files
    if not staged.has_module and not any(layout.module in p for p in staged.problems):
        staged.problems.append(f"No {layout.module} was found in the submission; nothing in it can be graded.")
        staged.flags.append("missing_module")
    staged.model_file = _checked_model(destination / layout.model, staged, layout)
    return staged


def peek_version(submission: Submission, expected: Expected) -> str:
    """The version ``stage`` will grade ``submission`` as, reading only its module (to prepare that version's
    inputs before grading starts). Anything unreadable resolves as ``stage`` resolves it: the default."""
    staged = Staged(submission, Path("/nonexistent"))
    found: dict[str, tuple[str, bytes]] = {}
    try:
        if submission.kind == "zip":
            found = _from_zip(submission.source, staged, expected, roles=("module",))
        elif submission.kind == "file":
            data = _read_file(submission.source, module_limit(submission.source.name), staged)
            found = {"module": (submission.source.name, data)} if data is not None else {}
        elif submission.kind == "lms":
            found = _from_members(submission.members, staged, expected, None, roles=("module",))
        else:
            found = _from_folder(submission.source, staged, expected, roles=("module",))
    except (OSError, MemoryError, RecursionError, ValueError, UnicodeError):
        pass
    return resolve_version(found, expected, staged).version


def resolve_version(found: dict[str, tuple[str, bytes]], expected: Expected, staged: Staged) -> Layout:
    """Which version a submission is for: the TA's ``--version``, else what the files say (the released module's
    first lines, its file name), else the default version. Anything doubtful is a flag and a message, never a
    silent choice."""
    claimed = _claimed_version(found, expected)
    known = {layout.version for layout in expected.layouts}
    if expected.requested is not None:
        if claimed is not None and claimed != expected.requested:
            staged.flags.append("version_mismatch")
            staged.problems.append(f"This module is from assignment {inert(claimed)}, but it was graded as "
                                   f"{expected.requested}, the version your TA chose for it; if that is wrong, ask "
                                   "for a regrade against the right version.")
        return expected.layout(expected.requested)
    if claimed in known:
        return expected.layout(claimed)
    if claimed is not None:
        staged.flags.append("unknown_version")
        staged.problems.append(f"The module says it is from assignment {inert(claimed)}, which this grader does not "
                               f"know (it knows {', '.join(sorted(known))}); it was graded as {expected.default}.")
    elif found:
        staged.flags.append("version_assumed")
        staged.problems.append(f"Nothing in the submission says which assignment version it is for (the released "
                               f"module's first line does); it was graded as {expected.default}, the current one.")
    return expected.layout(expected.default)


def _claimed_version(found: dict[str, tuple[str, bytes]], expected: Expected) -> str | None:
    name, data = found.get("module", ("", b""))
    if name.endswith(".ipynb"):  # the released notebook's first cell names it: "(hello_mnist v1)"
        match = VERSION_HEADER.search(data[:4096].decode("utf-8", "replace")) if data else None
        if match:
            return match.group(2)
        by_name = [layout.version for layout in expected.layouts if layout.notebook == name]
        if len(by_name) == 1:
            return by_name[0]
        return expected.layouts[0].version if len(expected.layouts) == 1 else None
    head = data[:2048].decode("utf-8", "replace").splitlines()[:5] if data else []
    for line in head:
        match = VERSION_HEADER.search(line)
        if match and line.lstrip().startswith("#"):
            return match.group(2)
    by_name = [layout.version for layout in expected.layouts if layout.module == name]
    if len(by_name) == 1:
        return by_name[0]
    if len(expected.layouts) == 1:
        return expected.layouts[0].version  # one version: nothing to tell apart
    return None


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o644)


def _checked_model(path: Path, staged: Staged, layout: Layout) -> dict:
    try:
        verdict = check_model_file(path, name=layout.model).as_dict()
    except Exception as error:  # a model file no check foresaw: its own zero, never the batch
        verdict = {"present": True, "accepted": False, "flag": "corrupt_model",
                   "reason": f"{layout.model} could not be checked ({type(error).__name__})"}
    if not verdict.get("present"):
        staged.flags.append("no_model")
    return verdict


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


def _folder_files(folder: Path) -> dict[str, Path]:
    """Regular files by name: the folder itself first, then sub-folders up to two levels deep (LMS downloads and
    students' own zips often nest one folder), never following links, looking at a bounded number of entries."""
    found: dict[str, Path] = {}
    seen = 0
    for depth, current in _walk(folder, max_depth=2):
        for name in sorted(os.listdir(current)):
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                return found
            path = current / name
            if name.startswith(".") or name == "__MACOSX":
                continue
            if not os.path.islink(path) and os.path.isfile(path) and name not in found:
                found[name] = path
            elif os.path.islink(path) and depth == 0 and name not in found:
                found[name] = path  # a link at the top: refused with a message when read
    return found


def _walk(folder: Path, *, max_depth: int):
    queue = [(0, folder)]
    while queue:
        depth, current = queue.pop(0)
        yield depth, current
        if depth < max_depth:
            for name in sorted(os.listdir(current))[:50]:
                path = current / name
                if not name.startswith(".") and name != "__MACOSX" and path.is_dir() and not path.is_symlink():
                    queue.append((depth + 1, path))


def _from_folder(folder: Path, staged: Staged, expected: Expected,
                 roles: tuple[str, ...] = ("module", "model")) -> dict[str, tuple[str, bytes]]:
    found: dict[str, tuple[str, bytes]] = {}
    available = _folder_files(folder)
    names = sorted(available)
    module_name = next((name for name in expected.module_names if name in available), None) \
        or _fallback_module(names, staged, expected)
    if module_name:
        path = available[module_name]
        if path.parent != folder:
            staged.problems.append(f"{inert(module_name)} was found in the sub-folder "
                                   f"{inert(str(path.parent.relative_to(folder)))} and graded from there.")
        data = _read_file(path, module_limit(module_name), staged)
        if data is not None:
            found["module"] = (module_name, data)
    model_name = next((name for name in expected.model_names if name in available), None)
    if model_name and "model" in roles:
        data = _read_file(available[model_name], MAX_MODEL_BYTES, staged)
        if data is not None:
            found["model"] = (model_name, data)
    return found


def _from_members(members: tuple[tuple[str, str], ...], staged: Staged, expected: Expected, scratch: Path | None,
                  roles: tuple[str, ...] = ("module", "model")) -> dict[str, tuple[str, bytes]]:
    """One student's files in an LMS download, read by locator with the same caps; a single zip the student
    uploaded is opened as a submission zip (copied into ``scratch`` first, capped)."""
    from .lms.archive import MemberError, read_bytes
    available: dict[str, str] = {}
    for name, locator in members:  # a file in a sub-folder counts by its own name; the first one wins
        available.setdefault(name.rsplit("/", 1)[-1], locator)
    names = sorted(available)

    def read(name: str, limit: int) -> bytes | None:
        try:
            return read_bytes(available[name], max_bytes=limit)
        except MemberError as error:
            staged.problems.append(f"{inert(name)} was not read: {one_line(str(error))}")
            staged.flags.append("oversized_file" if "larger" in str(error) else "unreadable")
            return None

    found: dict[str, tuple[str, bytes]] = {}
    zips = [name for name in names if name.endswith(".zip")]
    if not any(name in available for name in expected.module_names) and len(zips) == 1 and scratch is not None \
            and not any(name.endswith(".py") for name in names):
        data = read(zips[0], MAX_ZIP_BYTES)
        if data is None:
            return found
        path = scratch / f"{staged.submission.folder}.uploaded.zip"
        path.write_bytes(data)
        try:
            return _from_zip(path, staged, expected, roles)
        finally:
            path.unlink()
    module_name = next((name for name in expected.module_names if name in available), None) \
        or _fallback_module(names, staged, expected)
    if module_name:
        data = read(module_name, module_limit(module_name))
        if data is not None:
            found["module"] = (module_name, data)
    model_name = next((name for name in expected.model_names if name in available), None)
    if model_name and "model" in roles:
        data = read(model_name, MAX_MODEL_BYTES)
        if data is not None:
            found["model"] = (model_name, data)
    return found


def module_limit(name: str) -> int:
    """The most bytes read of a graded module handed in as ``name`` (a notebook carries its outputs)."""
    return MAX_NOTEBOOK_BYTES if name.endswith(".ipynb") else MAX_MODULE_BYTES


def _from_notebook(name: str, data: bytes, staged: Staged, layout: Layout,
                   destination: Path) -> tuple[bytes | None, bytes]:
    """The module text a submitted notebook defines (``notebook_intake``: read, never run), or None, and the
    functions that run its "your turn" answer cells (``answer_functions``), to append after the checks.

    The notebook itself is kept beside it as ``<module stem>.submitted.ipynb`` (up to ``MAX_KEPT_NOTEBOOK_BYTES``),
    so the TA sees what was handed in; what was kept and dropped goes to ``intake.json``."""
    from .notebook_intake import extract_answer_cells, extract_module, read_notebook
    if not layout.accepts_notebook:
        staged.problems.append(f"A notebook ({inert(name)}) was submitted, but assignment {layout.version} is handed "
                               f"in as {layout.module}: the graded functions live there; submit that file (and the "
                               "trained model).")
        staged.flags.append("notebook_instead_of_module")
        return None, b""
    sources = read_notebook(data)  # read once, for the functions and the answer cells
    extracted = extract_module(sources, graded_functions=layout.functions)
    problems, flags = list(extracted.problems), list(extracted.flags)
    if len(extracted.missing) >= 3:  # one paragraph and one flag, not one per function
        problems = [p for p in problems if not p.startswith(MISSING_DEFINITION)]
        flags = [f for f in flags if not f.startswith("notebook_missing_function:")] + ["notebook_missing_functions"]
        names = ", ".join(f"`{name}`" for name in extracted.missing)
        problems.insert(0, f"{len(extracted.missing)} of the {len(layout.functions)} graded functions are not defined "
                           f"at the top level of any code cell, so they were not graded: {names}. Define each with "
                           "`def name(...):` at the start of a line in a code cell, keeping the names and parameters "
                           f"given in the assignment (or hand in {layout.module}).")
    staged.problems += problems
    staged.flags += [flag for flag in flags if flag not in staged.flags]
    staged.notebook = {"file": name, **extracted.as_dict()}
    if len(data) <= MAX_KEPT_NOTEBOOK_BYTES:
        _write(destination / (Path(layout.module).stem + ".submitted.ipynb"), data)
    answers = b""
    if layout.answers and sources.readable:
        cells = extract_answer_cells(sources, answer_variables={grade_id: variables[0]
                                                                for _, grade_id, variables in layout.answers})
        staged.problems += [p for p in cells.problems if p not in staged.problems]
        staged.flags += [f for f in cells.flags if f not in staged.flags]
        staged.notebook["answers"] = {grade_id: {"cell": cell.cell, "found_by": cell.found_by, "parses": cell.parses}
                                      for grade_id, cell in cells.cells.items()}
        answers = answer_functions(layout.answers, cells.cells).encode()
    if not extracted.source:
        if not extracted.problems:
            staged.problems.append(f"{inert(name)} defines none of the graded functions.")
        return (b"# no graded function was found in the notebook\n" if answers else None), answers
    return extracted.source.encode(), answers


ANSWER_RUNNER = '''

# -- Added by the grader: the notebook's "your turn" cells, each run when its check calls it, in a namespace
# -- of this module's names and the inputs the check chooses (never the notebook's own experiments).
def _run_answer_cell(source, filename, variables, inputs):
    import ast as _ast
    import math as _math
    import numpy as _np
    namespace = {"math": _math, "np": _np, **globals(), **inputs}
    errors = []
    for node in _ast.parse(source, filename).body:
        try:
            exec(compile(_ast.Module([node], []), filename, "exec"), namespace)
        except Exception as error:  # a later line (a print of a name the check does not give) may fail
            errors.append(f"line {node.lineno}: {type(error).__name__}: {error}")
    unset = [name for name in variables if name not in namespace]
    if unset:
        why = f" (it stopped at {errors[0]})" if errors else ""
        raise NameError(f"the cell did not set {', '.join(unset)}{why}")
    values = []
    for name in variables:
        value = namespace[name]
        values.append(value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value)
    return tuple(values)
'''


def answer_functions(answers: tuple, cells: dict) -> str:
    """``your_turn_<name>(inputs)`` for each answer of the version: it runs the notebook's cell (found by its
    grade_id or variable) and returns the variables it set, or raises with what is wrong (no such cell, or
    one that does not parse). Text appended to the generated module; it runs only in the sandbox."""
    parts = [ANSWER_RUNNER]
    for name, grade_id, variables in answers:
        cell = cells.get(grade_id)
        parts.append(f"\n\ndef your_turn_{name}(inputs):")
        if cell is None:
            parts.append(f"    raise NameError({('no code cell of the notebook sets ' + variables[0] + ' (the ' + repr(grade_id) + ' cell)')!r})")
        elif not cell.parses:
            parts.append(f"    raise SyntaxError({('cell ' + str(cell.cell) + ': ' + str(cell.syntax_error))!r})")
        else:
            parts.append(f"    return _run_answer_cell({cell.source!r}, {('<notebook cell ' + str(cell.cell) + '>')!r}, "
                         f"{tuple(variables)!r}, inputs)")
    return "\n".join(parts) + "\n"


def _fallback_module(names: list[str], staged: Staged, expected: Expected) -> str | None:
    """No known module name: accept a single renamed .py file (LMS downloads rename), then a notebook where a
    version accepts one (the version's notebook name first, else a single ``.ipynb``); explain a notebook
    no version accepts."""
    python = [n for n in names if n.endswith(".py") and not n.endswith(SUBMITTED_SUFFIX)]
    wanted = " or ".join(expected.module_names)
    if len(python) == 1:
        staged.problems.append(f"Your module is named {inert(python[0])}; it was graded as the assignment's module. "
                               f"Name it {wanted} next time.")
        staged.flags.append("renamed_module")
        return python[0]
    notebooks = [n for n in names if n.endswith(".ipynb")]
    if notebooks and any(layout.accepts_notebook for layout in expected.layouts):
        named = [n for n in expected.notebook_names if n in notebooks]
        if named or len(notebooks) == 1:
            return (named or notebooks)[0]
        staged.problems.append(f"Several notebooks were submitted ({', '.join(inert(n) for n in notebooks[:5])}) and "
                               f"none is named {' or '.join(expected.notebook_names)}; hand in one.")
        staged.flags.append("ambiguous_notebook")
        return None
    if notebooks:
        staged.problems.append(f"A notebook was submitted where {wanted} was expected. The graded functions "
                               f"live in {wanted}; submit that file (and the trained model).")
        staged.flags.append("notebook_instead_of_module")
    return None


def _from_zip(path: Path, staged: Staged, expected: Expected,
              roles: tuple[str, ...] = ("module", "model")) -> dict[str, tuple[str, bytes]]:
    files: dict[str, tuple[str, bytes]] = {}
    if path.stat().st_size > MAX_ZIP_BYTES:
        staged.problems.append(f"The zip is larger than {MAX_ZIP_BYTES // 2**20} MB.")
        staged.flags.append("oversized_file")
        return files
    try:
        archive = open_zip(path, max_entries=MAX_ZIP_MEMBERS, max_directory_bytes=MAX_ZIP_DIRECTORY_BYTES)
    except ArchiveError as error:
        if error.too_large:
            staged.problems.append(f"The zip was not opened: {error}. Submit only the module and the trained model.")
            staged.flags.append("oversized_file")
        else:
            staged.problems.append(f"The zip file is damaged or empty ({error}); re-create it and submit again.")
            staged.flags.append("corrupt_zip")
        return files
    with archive:
        by_name: dict[str, object] = {}
        for member in archive.infolist():
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
        module_name = next((name for name in expected.module_names if name in by_name), None) \
            or _fallback_module(names, staged, expected)
        model_name = next((name for name in expected.model_names if name in by_name), None)
        for role, source_name, limit in (("module", module_name, module_limit(module_name or "")),
                                         ("model", model_name, MAX_MODEL_BYTES)):
            member = by_name.get(source_name) if source_name and role in roles else None
            if member is None:
                continue
            try:
                files[role] = (source_name, read_member(archive, member, limit=limit))
            except ArchiveError as error:
                if error.too_large:
                    staged.problems.append(f"{inert(member.filename[:80])} in the zip unpacks to more than "
                                           f"{limit // 2**20} MB (a zip bomb?); it was ignored.")
                    staged.flags.append("zip_bomb")
                else:
                    staged.problems.append(f"The zip's {inert(member.filename[:80])} is damaged; it was ignored. "
                                           "Re-create the zip and submit again.")
                    staged.flags.append("corrupt_zip")
    return files


# Text a graded module has no reason to contain or print: grading results (forging is pointless, but the TA
# should know it was tried).
FORGING = re.compile(r"results?\.json|/autograder/results|/tmp/out\b|progress\.txt|\"score\"\s*:"
                     r"|\bScore:\s*\d+\s*/\s*100", re.I)
# Calls a graded module has no reason to make; reported to the TA, never penalised by themselves.
SUSPICIOUS_NAMES = {"subprocess", "socket", "ctypes", "multiprocessing", "signal", "system", "popen", "fork",
                    "_exit", "kill", "setrlimit", "ptrace", "urllib", "requests", "http", "builtins", "__import__",
                    "exec", "eval", "__builtins__", "f_back", "f_globals", "gi_frame"}


def _check_source(source: bytes, staged: Staged, layout: Layout, *, rescue_syntax_errors: bool) -> bytes:
    """Flag what the TA should know about the source; return the module to grade (``source`` itself, or the
    rescued text when a syntax error was cut out of it)."""
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as error:
        staged.problems.append(f"{layout.module} is not UTF-8 text (byte {source[error.start]:#04x} at position "
                               f"{error.start}); save it as UTF-8.")
        staged.flags.append("not_utf8")
        return source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences: the student's, reported by Python later
            tree = ast.parse(text)  # parsing runs no code
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        rescued = rescue(text) if rescue_syntax_errors else None
        if rescued is None:
            return source  # the import fails in the sandbox and says where
        staged.flags.append("syntax_error")
        for block in rescued.broken:
            what = (f"{', '.join(f'`{name}`' for name in block.names)} could not be compiled and scored 0 on its checks"
                    if block.names else "the statement there could not be compiled and was skipped")
            staged.problems.append(f"{layout.module} line {block.line}: {inert(block.message)}. So {what}; the "
                                   "other functions were graded. Fix that line and check with "
                                   f"`python -c 'import {Path(layout.module).stem}'`.")
        _check_source(rescued.source.encode(), staged, layout, rescue_syntax_errors=False)
        return rescued.source.encode()
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
    return source
