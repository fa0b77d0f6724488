"""Build the isolated command for one submission: bubblewrap namespaces, rlimits, uid, memory cgroup.

Layers, outermost first (each is a real kernel primitive, none is simulated):

* a memory cgroup per slot when the machine allows one (root, cgroup v1 or v2 memory controller);
* ``prlimit``: RLIMIT_AS, CPU, NPROC, FSIZE, NOFILE, CORE=0 for every process in the sandbox;
* ``bwrap``: private mount, PID, network (no interfaces but loopback), IPC and UTS namespaces;
  read-only system, interpreter and harness; the submission and the grader's inputs read-only;
  a size-capped private ``/tmp`` holding HOME and KERAS_HOME; a cleared environment;
* the supervisor runs as PID 1 of the namespace and, when the grader runs as root, drops to a
  per-slot unprivileged uid before anything else (``plan["uid"]``); as an ordinary user, bwrap's
  user namespace is the identity boundary.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from ..settings import PACKAGE_DIR, Settings

INSIDE_GRADER = "/opt/grader"           # the engine and the versions' graders, read-only, for the recorder
INSIDE_SUBMISSION = "/sandbox/submission"
INSIDE_INPUTS = "/sandbox/inputs"
INSIDE_SCRATCH = "/tmp"
# What the student's process must not see (``isolate.enter_executor_namespaces`` hides it under empty tmpfs):
# the grader's code and graders, the inputs, the plan, the submitted model file; and every version's dataset
# folder that a system package installs under the bound /usr (``hidden_paths``).
HIDDEN = ["/sandbox", INSIDE_GRADER]


@functools.lru_cache(maxsize=None)
def hidden_paths() -> list[str]:
    """HIDDEN and the installed dataset folders of every version: the student's code gets the data a call
    passes, never a copy of the whole dataset to match the retrain's images against."""
    from ..assignment import load, versions
    folders = {folder for version in versions() for folder in load(version).dataset.folders}
    return HIDDEN + sorted(folder for folder in folders if os.path.isdir(folder))
BOOT = (f"import sys; sys.path.insert(0, {INSIDE_GRADER!r}); "
        "from autograder.harness.main import main; sys.exit(main())")
ZYGOTE_BOOT = (f"import sys; sys.path.insert(0, {INSIDE_GRADER!r}); "
               "from autograder.harness.zygote import run; sys.exit(run())")


def grader_binds() -> list[tuple[Path, str]]:
    """The engine and every version's grading package, for the recorder (its probes live in the grader files).
    Never a version's solution, notebook or reference scores."""
    from .. import assignment as assignments
    binds = [(PACKAGE_DIR, f"{INSIDE_GRADER}/autograder"),
             (assignments.SOLUTIONS_DIR / "__init__.py", f"{INSIDE_GRADER}/solutions/__init__.py")]
    for version in assignments.versions():
        definition = assignments.load(version)
        relative = definition.source_dir.relative_to(assignments.SOLUTIONS_DIR)
        binds.append((definition.source_dir / "__init__.py", f"{INSIDE_GRADER}/solutions/{relative}/__init__.py"))
        binds.append((definition.grading_dir, f"{INSIDE_GRADER}/solutions/{relative}/grading"))
    return binds


def preload_modules() -> list[str]:
    """The grader modules a sandbox imports before any fork, so no submission pays for their import."""
    from .. import assignment as assignments
    from ..plan import grader_modules
    return [name for version in assignments.versions() for name in grader_modules(assignments.load(version))]
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "passwd", "group", "fonts")


class IsolationUnavailable(RuntimeError):
    """The sandbox cannot be set up on this machine; the message says what to install or change."""


def is_root() -> bool:
    return os.geteuid() == 0


def slot_uid(settings: Settings, slot: int) -> int | None:
    """The host uid a slot's sandbox runs as, when the grader is root; None otherwise."""
    return settings.first_uid + slot if is_root() else None


def interpreter_binds() -> list[str]:
    """Read-only binds for the Python interpreter, its standard library and the virtual environment."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    binds = []
    for path in sorted(paths):
        if path == Path("/usr") or str(path).startswith("/usr/"):
            continue  # the system itself is bound as a whole
        binds += traversable_parents(path) + ["--ro-bind", str(path), str(path)]
    return binds


def traversable_parents(path: Path | str) -> list[str]:
    """bwrap creates missing parents as 0700 (copying /root, say); the sandbox uid must traverse them."""
    args = []
    for parent in reversed(Path(path).parents):
        if str(parent) != "/":
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def system_binds() -> list[str]:
    binds = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            binds += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            binds += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        path = Path("/etc") / name
        if path.exists():
            binds += ["--ro-bind", str(path), str(path)]
    return binds


def environment_variables(settings: Settings, scratch: str = INSIDE_SCRATCH) -> dict[str, str]:
    """The whole environment of a sandbox (nothing of the grader's own)."""
    threads = str(settings.resolved_threads())
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": f"{scratch}/home",
        "KERAS_HOME": f"{scratch}/home/.keras",
        "MPLCONFIGDIR": f"{scratch}/home/.matplotlib",
        "USER": "student",
        "LANG": "C.UTF-8",
        "KERAS_BACKEND": settings.backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=" + threads,
    }


def environment(settings: Settings) -> list[str]:
    args = ["--clearenv"]
    for key, value in environment_variables(settings).items():
        args += ["--setenv", key, value]
    return args


def rlimits(settings: Settings, *, per_uid: bool = True) -> list[str]:
    """``prlimit`` for every process of a sandbox. ``per_uid=False`` (the container tier, whose supervisor is
    root among the grader's own processes) leaves RLIMIT_NPROC, a count per uid, to the student's process,
    which sets it for its own uid (isolate.enter_student_uid)."""
    mib = 1024 * 1024
    return ["prlimit",
            f"--as={settings.address_space_mb * mib}",
            f"--cpu={settings.cpu_seconds}",
            *([f"--nproc={settings.max_processes}"] if per_uid else []),
            f"--fsize={settings.max_file_mb * mib}",
            "--nofile=1024",
            "--core=0",
            "--"]


# -- the container tier (tiers.py): the same harness, started without bubblewrap, with the grader's paths ------
# The plan or worker file's path travels in the environment, not argv: a student's process in this tier sees the
# machine's process list, and command lines are readable to every uid, environments only to their own.
HOST_BOOT = ("import os, sys; sys.path.insert(0, os.environ.pop('AUTOGRADER_GRADER_PATH')); "
             "from autograder.harness.main import main; sys.exit(main(os.environ.pop('AUTOGRADER_PLAN')))")
HOST_ZYGOTE_BOOT = ("import os, sys; sys.path.insert(0, os.environ.pop('AUTOGRADER_GRADER_PATH')); "
                    "from autograder.harness.zygote import run; sys.exit(run(os.environ.pop('AUTOGRADER_WORKER')))")


def container_command(settings: Settings, *, zygote: bool = False, cgroup=None) -> list[str]:
    """argv of a container-tier sandbox's supervisor (or warm zygote): rlimits, then the harness."""
    argv = rlimits(settings, per_uid=False) + [sys.executable, "-I", "-c", HOST_ZYGOTE_BOOT if zygote else HOST_BOOT]
    return (cgroup.shell_prefix() + argv) if cgroup is not None else argv


def container_environment(settings: Settings, scratch: Path, **paths: str) -> dict[str, str]:
    """The environment of a container-tier supervisor: the sandbox's, with its scratch folder, and ``paths``
    (AUTOGRADER_PLAN or AUTOGRADER_WORKER), which the harness takes out before anything else runs."""
    from ..settings import REPO_DIR
    return {**environment_variables(settings, str(scratch)), "AUTOGRADER_GRADER_PATH": str(REPO_DIR), **paths}


def container_plan(settings: Settings, slot_uid_: int, student_root: Path) -> dict:
    """What a container-tier plan adds: who the student's process runs as and where its scratch folders go."""
    plan = {"tier": "container", "student_uid": slot_uid_, "student_root": str(student_root),
            "max_processes": settings.max_processes}
    if not submission_groups(settings).available:  # no memory cgroup: the supervisor's watch bounds memory
        plan["memory_bytes"] = settings.memory_mb * 2**20
    return plan


def bwrap_command(settings: Settings, *, binds: list[tuple[Path, str]], boot: str, zygote: bool = False,
                  extra_mounts: list[str] = (), own_cgroup_namespace: bool = True) -> list[str]:
    """bwrap argv running ``boot`` (Python source) with the harness and ``binds`` (host, inside) read-only.

    ``zygote``: the warm worker, whose children create their own namespaces (harness/isolate.py).
    """
    if is_root():
        # Privileged bwrap: no user namespace; the supervisor keeps SETUID/SETGID to drop to the slot's uid
        # at once and SYS_ADMIN to mount a fresh /proc first (harness/main.py prepare), after which it and its
        # children hold no capabilities. The zygote keeps SYS_ADMIN to create each submission's namespaces
        # and mounts; its children drop it (isolate.py).
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                      "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                      "--cap-add", "CAP_SYS_ADMIN"]
    else:
        # No --disable-userns: the supervisor gives the student's process a user namespace of its own, and that
        # process then forbids any further one (isolate.enter_executor_namespaces).
        namespaces = ["--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    if own_cgroup_namespace:  # not for a zygote: with nsdelegate it could not move its child into a group
        namespaces.append("--unshare-cgroup-try")
    mounts = []
    for host, inside in [*grader_binds(), *binds]:
        mounts += traversable_parents(inside) + ["--ro-bind", str(host), inside]
    return [
        "bwrap", *namespaces,
        "--die-with-parent", "--new-session", "--as-pid-1", "--hostname", "sandbox",
        *system_binds(),
        "--perms", "1777", "--size", str(settings.scratch_mb * 1024 * 1024), "--tmpfs", INSIDE_SCRATCH,
        *interpreter_binds(),  # after the tmpfs: a virtual environment may live under /tmp
        *mounts,
        "--proc", "/proc", "--dev", "/dev",
        *extra_mounts,  # a warm zygote's cgroup folders: before --remount-ro (not recursive), so they stay writable
        "--remount-ro", "/",
        "--chdir", INSIDE_SCRATCH,
        *environment(settings),
        sys.executable, "-I", "-c", boot,
    ]


def command(settings: Settings, *, binds: list[tuple[Path, str]], slot: int, zygote: bool = False,
            cgroup=None, extra_mounts: list[str] = ()) -> list[str]:
    """The full argv for slot ``slot``: joining ``cgroup`` (when given), rlimits, bwrap, the harness."""
    boot = ZYGOTE_BOOT if zygote else BOOT
    argv = rlimits(settings) + bwrap_command(settings, binds=binds, boot=boot, zygote=zygote,
                                             extra_mounts=list(extra_mounts), own_cgroup_namespace=not zygote)
    # Join the cgroup first, then exec the rest: every process of the sandbox is accounted there.
    return (cgroup.shell_prefix() + argv) if cgroup is not None else argv


_RUNS_MADE = 0


class SubmissionGroups:
    """The cgroups of one grading run (``cgroups.py``): one per slot, and in it one per launch of a
    submission's sandbox (memory limit, CPU weight, process limit), removed when that launch ends; a warm
    zygote sits in its slot's ``zygote`` group. Only as root on a machine that offers the memory, CPU and
    pids controllers; otherwise ``reason`` says why not, and rlimits alone bound a sandbox."""

    def __init__(self, settings: Settings):
        self.settings, self.run, self.reason = settings, None, None
        self._slots: dict[int, object] = {}
        self._count = 0
        self._lock = threading.Lock()
        if not is_root():
            self.reason = "cgroups need root"
            return
        if settings.memory_mb <= 0:
            self.reason = "memory_mb is 0"
            return
        from . import cgroups
        global _RUNS_MADE
        try:
            tree = cgroups.detect()
            tree.clean_stale()
            # Named after this process (clean_stale knows it is alive, and removes it once it is gone); a
            # further run group of the same process (tests, a second grading call) gets a number.
            self.run = tree.run_group(cgroups.default_run_name(_RUNS_MADE))
            _RUNS_MADE += 1
        except cgroups.CgroupError as error:
            self.reason = str(error)

    @property
    def available(self) -> bool:
        return self.run is not None

    def slot(self, slot: int):
        with self._lock:
            if slot not in self._slots:
                self._slots[slot] = self.run.slot(f"slot-{slot}")
            return self._slots[slot]

    def submission(self, slot: int, *, name: str | None = None):
        """A fresh group for one launch in ``slot``: the submission's memory and process limits, an equal
        CPU share beside its neighbours however many processes it starts."""
        with self._lock:
            self._count += 1
            name = name or f"sub-{self._count}"
        return self.slot(slot).submission(name, memory_bytes=self.settings.memory_mb * 2**20,
                                          pids_max=self.settings.max_processes)

    def close(self) -> None:
        if self.run is not None:
            try:
                self.run.remove()
            except Exception:  # noqa: BLE001  a group a process still holds: clean_stale takes it next run
                pass


_GROUPS: dict[tuple, SubmissionGroups] = {}
_GROUPS_LOCK = threading.Lock()


def submission_groups(settings: Settings) -> SubmissionGroups:
    """The grading run's cgroups for these settings (made once per process and settings; call it early,
    before threads start, where the cgroup tree may have to move this process)."""
    key = (settings.first_uid, settings.memory_mb, settings.max_processes)
    with _GROUPS_LOCK:
        if key not in _GROUPS:
            _GROUPS[key] = SubmissionGroups(settings)
        return _GROUPS[key]


def close_submission_groups() -> None:
    with _GROUPS_LOCK:
        for groups in _GROUPS.values():
            groups.close()
        _GROUPS.clear()


@functools.lru_cache(maxsize=None)
def check_available() -> None:
    """Raise IsolationUnavailable unless bwrap and prlimit work here (checked once per process)."""
    for tool, package in (("bwrap", "bubblewrap"), ("prlimit", "util-linux")):
        if shutil.which(tool) is None:
            raise IsolationUnavailable(
                f"{tool} is not installed, so student code cannot be isolated. Install it "
                f"(Debian/Ubuntu: sudo apt-get install {package}) and run again.")
    probe = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
             "--dev", "/dev", "true"]
    if is_root():
        probe = ["bwrap", "--unshare-pid", "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/",
                 "--proc", "/proc", "--dev", "/dev", "true"]
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise IsolationUnavailable(
            "bubblewrap cannot create namespaces here: " + (result.stderr.strip() or f"exit {result.returncode}")
            + "\nOn Ubuntu 24.04+ allow unprivileged user namespaces for bwrap (AppArmor), or run the grader "
              "as root in a container; see SECURITY.md.")
