"""Isolation tiers: which one this machine allows, which one grading uses, and the container tier's chores.

Two tiers isolate student code; SECURITY.md says what each guarantees and what it does not:

* ``namespaces`` (the strongest): bubblewrap and the kernel's namespaces (isolation.py, harness/isolate.py).
  Needs user namespaces, or root with CAP_SYS_ADMIN.
* ``container``: for Docker-like hosts (Gradescope) where namespaces are refused but the grader runs as root.
  The student's process runs as a separate unprivileged uid, one per slot (``setresuid``), with no
  capabilities, ``no_new_privs``, rlimits, seccomp, a scratch folder of its own and a scrubbed environment;
  the grader's files, the inputs and the results are made unreadable to other users (``lock_down``); after
  each launch everything that uid left (processes, files in world-writable folders, System V IPC) is removed
  (``sweep``).

``none`` is ``--unsafe-no-sandbox``, for development only. ``select()`` probes once per process, takes the
strongest tier allowed (or the one asked for) and refuses, with the reason, anything below the configured
``minimum_isolation``: grading refuses loudly rather than grade without the isolation the instructor asked for.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..harness import isolate
from ..settings import REPO_DIR, Settings

RANK = {"none": 0, "container": 1, "namespaces": 2}
DESCRIPTIONS = {
    "namespaces": "namespaces: bubblewrap, private user, mount, PID, network and IPC namespaces",
    "container": "container: a separate unprivileged uid per slot, no capabilities, rlimits, seccomp, the "
                 "grader's files unreadable to it, no namespaces",
    "none": "none: --unsafe-no-sandbox, student code ran as a plain subprocess (development only)",
}
class IsolationRefused(RuntimeError):
    """No tier at least as strong as the configured minimum is available; the message says what was tried."""


@dataclass(frozen=True)
class Tier:
    name: str                 # "namespaces" | "container" | "none"
    why_not_stronger: str = ""  # what the stronger tier's probe said, when this is not the strongest

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.name]

    @property
    def container(self) -> bool:
        return self.name == "container"

    def line(self) -> str:
        """One line for the TA and the results."""
        return f"Isolation: {self.description}" + (f" ({self.why_not_stronger})" if self.why_not_stronger else "")


def select(settings: Settings) -> Tier:
    """The tier grading uses with ``settings`` (probed once per process and settings).

    Raises:
        IsolationRefused: the tier asked for is unavailable, or the best available is below the minimum.
    """
    return _select(settings.isolation, settings.minimum_isolation, settings.unsafe_no_sandbox)


@functools.lru_cache(maxsize=None)
def _select(requested: str, minimum: str, unsafe: bool) -> Tier:
    if unsafe:
        tier = Tier("none", "--unsafe-no-sandbox")
    elif requested == "namespaces":
        reason = namespaces_unavailable()
        if reason:
            raise IsolationRefused(f"isolation = namespaces was asked for, but {reason}")
        tier = Tier("namespaces")
    elif requested == "container":
        reason = container_unavailable()
        if reason:
            raise IsolationRefused(f"isolation = container was asked for, but {reason}")
        tier = Tier("container")
    else:
        namespaces = namespaces_unavailable()
        if not namespaces:
            tier = Tier("namespaces")
        else:
            container = container_unavailable()
            if container:
                raise IsolationRefused(f"No isolation tier works here. Namespaces: {namespaces}\nContainer tier: "
                                       f"{container}")
            tier = Tier("container", f"namespaces refused: {first_line(namespaces)}")
    if unsafe and RANK[minimum] > RANK["none"]:
        raise IsolationRefused(f"--unsafe-no-sandbox runs student code without isolation, and minimum_isolation is "
                               f"{minimum}: refusing. For development only, add --minimum-isolation none.")
    if RANK[tier.name] < RANK[minimum]:
        raise IsolationRefused(
            f"This machine allows only the {tier.name} isolation tier ({tier.why_not_stronger or tier.description}), "
            f"and minimum_isolation is {minimum}: refusing to grade rather than grade without the isolation asked "
            f"for. Grade on a machine that allows {minimum}, or lower minimum_isolation ([tool.autograder] in "
            f"pyproject.toml, AUTOGRADER_MINIMUM_ISOLATION, --minimum-isolation) if SECURITY.md's account of the "
            f"{tier.name} tier is enough for this course.")
    return tier


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def namespaces_unavailable() -> str:
    """Why bubblewrap cannot isolate here ('' when it can)."""
    from .isolation import IsolationUnavailable, check_available
    try:
        check_available()
    except IsolationUnavailable as error:
        return str(error)
    return ""


@functools.lru_cache(maxsize=None)
def container_unavailable() -> str:
    """Why the container tier cannot isolate here ('' when it can): it needs root with CAP_SETUID, CAP_SETGID,
    CAP_KILL and CAP_CHOWN (Docker's default set has them), prlimit, and seccomp for the student's filter."""
    if os.geteuid() != 0:
        return ("the container tier switches the student's process to another uid, which needs the grader to run "
                "as root (as in a Docker container); this grader runs as uid "
                f"{os.geteuid()}.")
    if shutil.which("prlimit") is None:
        return "prlimit is not installed (Debian/Ubuntu: apt-get install util-linux)."
    probe = [sys.executable, "-I", "-c",
             "import os, sys; sys.path.insert(0, sys.argv[1]); from autograder.harness import isolate, seccomp; "
             "import sysconfig; paths = sysconfig.get_paths(); "
             "os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534); "
             "isolate.drop_capabilities(); seccomp.deny_keyrings(); "
             "[os.listdir(paths[key]) for key in ('stdlib', 'platstdlib', 'purelib', 'platlib')]", str(REPO_DIR)]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the probe could not run: {error}"
    if result.returncode != 0:
        return ("a process could not become an unprivileged uid with no capabilities and the seccomp filter, "
                "and read the Python installation as that uid (it must be readable by other users, and so must "
                "the folders above it): " + (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1])
    return ""


# -- the container tier's files ---------------------------------------------------------------------------

def secret_paths(extra: list[Path] = ()) -> list[Path]:
    """What the student's uid must not read in the container tier: the project (engine, graders, solutions,
    reference scores, data) but the interpreter's own folders inside it, the datasets, and ``extra`` (the
    submissions and the output folder of the run)."""
    from .. import assignment as assignments
    interpreter = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, Path(sys.executable).resolve().parent.parent)]
    paths: list[Path] = []

    def add(path: Path) -> None:
        path = Path(path).resolve()
        inside = [p for p in interpreter if p == path or path in p.parents]
        if not inside:
            paths.append(path)
        elif path.is_dir() and all(p != path for p in inside):  # the interpreter lives below: lock its siblings
            for child in sorted(path.iterdir()):
                add(child)

    add(REPO_DIR)
    for version in assignments.versions():
        for folder in assignments.load(version).dataset.folders:
            if os.path.exists(folder):
                add(Path(folder))
        from ..datasets import configured_folder
        configured = configured_folder(assignments.load(version).dataset.as_dict())
        if configured is not None and configured.exists():
            add(configured)
    for path in extra:
        if Path(path).exists():
            add(Path(path))
    unique = []
    for path in paths:
        if path not in unique and not any(parent in unique for parent in path.parents):
            unique.append(path)
    return unique


def lock_down(paths: list[Path], uid: int) -> list[Path]:
    """Make ``paths`` unreadable to other users (``chmod o-rwx``), then check, as ``uid``, that none can be read.

    Returns:
        The paths whose mode was changed (the caller says so).

    Raises:
        IsolationRefused: a path stays readable to ``uid`` (a read-only file system, say).
    """
    changed = []
    for path in paths:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            continue
        if mode & 0o007 and not os.path.islink(path):
            try:
                os.chmod(path, mode & ~0o007 & 0o7777)
                changed.append(path)
            except OSError:
                pass  # the check below says whether it matters
    readable = readable_by(uid, paths)
    if readable:
        raise IsolationRefused("The container tier could not make these unreadable to the student's uid (chmod o-rwx "
                               "failed): " + ", ".join(readable) + ". Make them unreadable to other users, or grade "
                               "on a machine with namespaces.")
    return changed


def readable_by(uid: int, paths: list[Path]) -> list[str]:
    """Which of ``paths`` a process of ``uid`` (no groups) can list or open."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            found = []
            for path in paths:
                try:
                    if os.path.isdir(path):
                        os.listdir(path)
                    else:
                        with open(path, "rb") as handle:
                            handle.read(1)
                    found.append(str(path))
                except OSError:
                    pass
            os.write(write, "\n".join(found).encode())
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise IsolationRefused(f"could not check what uid {uid} can read (the check's process failed)")
    return [line for line in b"".join(chunks).decode().splitlines() if line]


def student_root(slot: int) -> Path:
    """A fresh folder the student's uid can traverse (not list), for its scratch folders in one launch."""
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix=f"autograder-student-{slot}-"))
    os.chmod(folder, 0o711)
    return folder


def sweep(uid: int, *, scratch: Path | None = None) -> None:
    """After a launch in the container tier: kill every process of ``uid``, remove ``scratch`` and whatever
    ``uid`` owns at the top of the world-writable folders, and its System V IPC objects."""
    isolate.kill_uid(uid)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    isolate.remove_paths(isolate.owned_entries(uid))
    remove_ipc(uid)


def remove_ipc(uid: int) -> int:
    """Remove the System V shared memory segments, message queues and semaphore sets ``uid`` owns."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    IPC_RMID = 0
    removed = 0
    for kind, remove in (("shm", lambda ident: libc.shmctl(ident, IPC_RMID, None)),
                         ("msg", lambda ident: libc.msgctl(ident, IPC_RMID, None)),
                         ("sem", lambda ident: libc.semctl(ident, 0, IPC_RMID))):
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        if not lines:
            continue
        header = lines[0].split()
        try:
            id_column, uid_column = header.index(f"{kind}id" if kind != "msg" else "msqid"), header.index("uid")
        except ValueError:
            continue
        for line in lines[1:]:
            fields = line.split()
            try:
                if int(fields[uid_column]) == uid and remove(int(fields[id_column])) == 0:
                    removed += 1
            except (IndexError, ValueError):
                continue
    return removed
