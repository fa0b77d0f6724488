"""One cgroup per submission (memory limit, CPU weight, process limit) on cgroup v1 or v2, and its end.

Runs in the grader, as root. The tree it manages, on either version::

    autograder/                 ours; on v2 under the grader's own cgroup, on v1 at each hierarchy's root
      grader/                   v2 only, when needed: the grader itself (v2 forbids processes in a
                                group that hands controllers to child groups)
      <run>/                    one per grading run, ``run-<pid>-<start>`` unless named
        <slot>/                 one per worker slot: its directory is what a warm zygote is given
          zygote/               the zygote's own group (made with ``submission`` like the others)
          <submission>/         memory.max, cpu.weight, pids.max; every process of one submission
        <submission>/           a cold sandbox's group may also sit right under the run

Why a group per submission: the kernel shares CPU between sibling groups by weight, however many
processes or sessions each holds, so a submission that starts 60 busy processes in 60 sessions gets
one share, like its neighbour. Its processes, its memory and its counters end with the group, and
``kill_all`` reaches every process it started, however it hid (double-forked, ``setsid``, ignoring
SIGTERM), because a process cannot leave its cgroup without root.

On v2 (the pure unified hierarchy of Ubuntu 24.04 and most Docker hosts) the controllers are
enabled level by level in ``cgroup.subtree_control``. On v1 each controller is its own hierarchy
(``memory``; ``cpu`` or ``cpu,cpuacct``; ``cpuacct``; ``pids``) and every group is one directory in
each. Nothing outside our ``autograder`` directories is written, except (v2) the grader's own
group's ``cgroup.subtree_control`` and, where v2 requires it, moving the grader into ``grader/``.

Cold sandbox: ``shell_prefix() + bwrap_argv`` joins the group before bwrap starts.
Warm zygote: ``slot.bind_args()`` binds the slot's directories into the zygote's sandbox and
``submission.procs_files(inside_root=...)`` names the files its forked child writes its own pid to,
as uid 0, before it becomes the sandbox uid. On v2 with ``nsdelegate`` (``tree.nsdelegate``; systemd
mounts it so) a process may move another only within its own cgroup namespace, so the zygote must
not get a cgroup namespace of its own (no ``--unshare-cgroup`` for it); its child unshares one after
joining, so the submission sees its group as ``/``.

Typical use (cold sandbox)::

    tree = cgroups.detect()                       # raises CgroupsUnavailable(reason) where impossible
    run = tree.run_group()
    with run.slot("slot-0").submission("sub-1", memory_bytes=3 << 30) as cgroup:
        subprocess.run(cgroup.shell_prefix() + bwrap_argv)
        usage = cgroup.usage()                    # before the group goes: its counters go with it
    run.remove()
"""

from __future__ import annotations

import errno
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

REQUIRED_CONTROLLERS = ("memory", "cpu", "pids")
TREE_NAME = "autograder"
GRADER_LEAF = "grader"
RUN_PREFIX = "run-"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}")
V1_WEIGHT_TO_SHARES = 1024 / 100   # v2's default cpu.weight 100 is v1's default cpu.shares 1024
JOIN_SCRIPT = ('while [ "$#" -gt 0 ] && [ "$1" != -- ]; do '
               'echo $$ > "$1" || { echo "autograder: could not join the cgroup $1" >&2; exit 125; }; '
               'shift; done; shift; exec "$@"')
JOIN_FAILED_EXIT_CODE = 125


class CgroupError(RuntimeError):
    """A cgroup operation failed; the message names the file and what to check."""


class CgroupsUnavailable(CgroupError):
    """This machine offers no cgroups we may manage; the message (``reason``) says why and what to change."""

    @property
    def reason(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Hierarchy:
    """One mounted hierarchy we use: the v2 unified one, or one v1 controller mount.

    Attributes:
        version: 1 or 2.
        controllers: what this hierarchy gives our groups (v2: the ones we enabled; v1: its controllers).
        base: our ``autograder`` directory in it.
        name: the folder a slot's directory is bound to inside a sandbox (``unified``, ``memory``,
            ``cpu,cpuacct``...).
    """

    version: int
    controllers: frozenset[str]
    base: Path
    name: str


# -- finding the hierarchies ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Mount:
    root: str           # the mounted directory's path inside the hierarchy (field 4 of mountinfo)
    mount_point: Path
    fstype: str
    super_options: frozenset[str]
    read_only: bool


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def _mounts(mountinfo: str = "/proc/self/mountinfo") -> list[_Mount]:
    mounts = []
    for line in Path(mountinfo).read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 6 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append(_Mount(root=_unescape(fields[3]), mount_point=Path(_unescape(fields[4])), fstype=tail[0],
                             super_options=frozenset(tail[2].split(",")),
                             read_only="ro" in fields[5].split(",")))
    return mounts


def _own_cgroups(pid: int | str = "self") -> dict[str, str]:
    """This process's cgroup per hierarchy: ``{"": v2 path, "memory": v1 path, "cpu,cpuacct": ...}``."""
    groups = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        groups[controllers] = path.removesuffix(" (deleted)")
    return groups


def detect(*, controllers: tuple[str, ...] = REQUIRED_CONTROLLERS, version: int | None = None,
           evacuate_own_group: bool = False) -> CgroupTree:
    """Find cgroups this grader may manage and prepare our ``autograder`` subtree in them.

    Prefers v2 when the unified hierarchy offers every controller (a hybrid machine's v2 mount usually
    offers none and then v1 is used). On v2, the tree lives under the grader's own cgroup, which must
    hand the controllers on: a non-root v2 group that has processes cannot, so the grader moves itself
    into ``autograder/grader``. If other processes share its group (a ``docker exec`` shell, say),
    that fails unless ``evacuate_own_group`` moves them along, which is what container init scripts
    do. Call it at start-up, before the grader starts any process of its own.

    Args:
        controllers: what every submission group must have; the default is what grading needs.
            (Tests pass others, such as ``("hugetlb",)``, to exercise v2 on a v1 machine.)
        version: 1 or 2 to use only that version; None tries v2, then v1.
        evacuate_own_group: v2: also move the other processes of the grader's cgroup into the leaf.

    Returns:
        The tree, ready for ``run_group``.

    Raises:
        CgroupsUnavailable: not root, no hierarchy with these controllers, read-only cgroup mounts,
            or a v2 group shared with other processes; the message says which and how to fix it.

    Example:
        >>> try:
        ...     tree = detect()
        ... except CgroupsUnavailable as error:
        ...     print("no per-submission cgroups:", error.reason)
    """
    if os.geteuid() != 0:
        raise CgroupsUnavailable("the grader is not root, so it cannot create cgroups or move sandboxes into "
                                 "them; per-submission CPU, memory and process limits need root.")
    mounts = _mounts()
    reasons = []
    for candidate in ((2, 1) if version is None else (version,)):
        try:
            if candidate == 2:
                return _detect_v2(mounts, controllers, evacuate_own_group=evacuate_own_group)
            return _detect_v1(mounts, controllers)
        except CgroupsUnavailable as error:
            reasons.append(f"cgroup v{candidate}: {error.reason}")
    raise CgroupsUnavailable("; ".join(reasons))


def _detect_v2(mounts: list[_Mount], controllers: tuple[str, ...], *, evacuate_own_group: bool) -> CgroupTree:
    own = _own_cgroups().get("")
    candidates = [mount for mount in mounts if mount.fstype == "cgroup2"]
    if own is None or not candidates:
        raise CgroupsUnavailable("no cgroup2 hierarchy is mounted.")
    candidates.sort(key=lambda mount: mount.mount_point != Path("/sys/fs/cgroup"))
    problems = []
    for mount in candidates:
        if own != mount.root and not own.startswith(mount.root.rstrip("/") + "/"):
            problems.append(f"{mount.mount_point} shows {mount.root}, which does not hold our cgroup {own}")
            continue
        if mount.read_only:
            problems.append(f"{mount.mount_point} is mounted read-only (a container without a writable "
                            f"cgroup mount: docker run --privileged, or --cgroupns=private on a cgroup v2 host)")
            continue
        own_dir = mount.mount_point / os.path.relpath(own, mount.root)
        if own_dir.name == GRADER_LEAF and own_dir.parent.name == TREE_NAME:
            own_dir = own_dir.parent.parent  # a grader (this one or another run) already made our subtree
        offered = set(_read(own_dir / "cgroup.controllers").split())
        missing = [name for name in controllers if name not in offered]
        if missing:
            problems.append(
                f"our cgroup {own_dir} is offered {' '.join(sorted(offered)) or 'no controllers'} but not "
                f"{' '.join(missing)}; its parent must delegate them (systemd: run the grader with "
                f"Delegate=yes, e.g. systemd-run --scope -p Delegate=yes; docker: --cgroupns=private on a "
                f"cgroup v2 host)")
            continue
        _prepare_v2(own_dir, controllers, evacuate_own_group=evacuate_own_group)
        hierarchy = Hierarchy(version=2, controllers=frozenset(controllers), base=own_dir / TREE_NAME,
                              name="unified")
        return CgroupTree((hierarchy,), nsdelegate="nsdelegate" in mount.super_options)
    raise CgroupsUnavailable("; ".join(problems))


def _prepare_v2(own_dir: Path, controllers: tuple[str, ...], *, evacuate_own_group: bool) -> None:
    """Make ``own_dir/autograder`` hand ``controllers`` to its children, moving the grader into a leaf
    first when ``own_dir`` holds processes (v2's "no internal processes" rule)."""
    base, leaf = own_dir / TREE_NAME, own_dir / TREE_NAME / GRADER_LEAF
    enable = " ".join(f"+{name}" for name in controllers)
    try:
        base.mkdir(exist_ok=True)
    except OSError as error:
        raise CgroupsUnavailable(f"cannot create {base}: {error.strerror}; the cgroup mount must be writable "
                                 f"by the grader.") from error
    try:
        _write(own_dir / "cgroup.subtree_control", enable)  # the real root may, with processes in it
    except OSError as error:
        if error.errno != errno.EBUSY:
            raise CgroupsUnavailable(f"cannot enable {enable} in {own_dir}/cgroup.subtree_control: "
                                     f"{error.strerror}.") from error
        others = [pid for pid in _read_pids(own_dir / "cgroup.procs") if pid != os.getpid()]
        if others and not evacuate_own_group:
            _remove_if_empty(base)
            raise CgroupsUnavailable(
                f"our cgroup {own_dir} also holds processes {', '.join(map(str, others[:10]))}, and cgroup v2 "
                f"lets a group hand controllers to child groups only when it holds no processes. Start the "
                f"grader in a cgroup of its own (as the container's main process, or with systemd-run "
                f"--scope -p Delegate=yes), or pass evacuate_own_group=True to move them all into "
                f"{leaf}.") from error
        leaf.mkdir(exist_ok=True)
        for pid in [os.getpid(), *others]:
            try:
                _write(leaf / "cgroup.procs", str(pid))
            except ProcessLookupError:
                pass  # ended meanwhile
        try:
            _write(own_dir / "cgroup.subtree_control", enable)
        except OSError as second:
            raise CgroupsUnavailable(f"moved the grader into {leaf} but still cannot enable {enable} in "
                                     f"{own_dir}: {second.strerror} (a process started meanwhile?).") from second
    try:
        _write(base / "cgroup.subtree_control", enable)
    except OSError as error:
        raise CgroupsUnavailable(f"cannot enable {enable} in {base}/cgroup.subtree_control: {error.strerror}"
                                 f" (is a process left in {base} itself?).") from error


def _detect_v1(mounts: list[_Mount], controllers: tuple[str, ...]) -> CgroupTree:
    by_controller: dict[str, _Mount] = {}
    for mount in mounts:
        if mount.fstype == "cgroup":
            for option in mount.super_options:
                by_controller.setdefault(option, mount)
    wanted = [*controllers, *(["cpuacct"] if "cpu" in controllers else [])]  # cpuacct: for cpu_seconds
    missing = [name for name in controllers if name not in by_controller]
    if missing:
        raise CgroupsUnavailable(f"no cgroup v1 hierarchy is mounted for {' '.join(missing)}.")
    hierarchies = []
    for mount in dict.fromkeys(by_controller[name] for name in wanted if name in by_controller):
        kinds = sorted(option for option in mount.super_options if option in _V1_CONTROLLERS)
        if mount.read_only:
            raise CgroupsUnavailable(f"{mount.mount_point} is mounted read-only; run the grader where it may "
                                     f"write its cgroups (docker run --privileged).")
        base = mount.mount_point / TREE_NAME
        try:
            created = not base.exists()
            base.mkdir(exist_ok=True)
        except OSError as error:
            raise CgroupsUnavailable(f"cannot create {base}: {error.strerror}.") from error
        if created and "memory" in kinds:
            _write_if_present(base / "memory.use_hierarchy", "1")  # old kernels: limits and OOM per subtree
        hierarchies.append(Hierarchy(version=1, controllers=frozenset(kinds), base=base, name=",".join(kinds)))
    return CgroupTree(tuple(hierarchies), nsdelegate=False)


_V1_CONTROLLERS = frozenset({"memory", "cpu", "cpuacct", "pids", "cpuset", "blkio", "io", "devices", "freezer",
                             "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"})


# -- small file helpers -------------------------------------------------------------------------------

def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _read_pids(path: Path) -> list[int]:
    return [int(line) for line in _read(path).split()]


def _write(path: Path, text: str) -> None:
    with open(path, "w") as handle:  # one write(2) per call: cgroup files take one value per write
        handle.write(text)


def _write_if_present(path: Path, text: str) -> bool:
    try:
        _write(path, text)
        return True
    except OSError:
        return False


def _flat_keyed(path: Path) -> dict[str, int]:
    values = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def _remove_if_empty(*paths: Path) -> None:
    for path in paths:
        try:
            path.rmdir()
        except OSError:
            pass


def _check_name(name: str, what: str) -> None:
    if not NAME_PATTERN.fullmatch(name) or name == GRADER_LEAF:
        raise CgroupError(f"{what} name {name!r} is not usable: use 1 to 100 ASCII letters, digits, '_' or '-' "
                          f"(no dots, which cgroup control files use), and not {GRADER_LEAF!r}; for example "
                          f"'sub-17'.")


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (field 22 of /proc/<pid>/stat), to tell it from
    a later process that got the same pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text.rpartition(")")[2].split()[19])


# -- the tree and its groups ----------------------------------------------------------------------------

def default_run_name(number: int = 0, *, prefix: str = RUN_PREFIX) -> str:
    """``<prefix><pid>-<start time>`` of this process, with ``-<number>`` for its further run groups: names
    ``clean_stale`` recognises as this process's (alive while it runs, stale after)."""
    name = f"{prefix}{os.getpid()}-{_process_start(os.getpid())}"
    return f"{name}-{number}" if number else name


class CgroupTree:
    """Our ``autograder`` subtree, in one (v2) or several (v1) hierarchies. Made by ``detect()``."""

    def __init__(self, hierarchies: tuple[Hierarchy, ...], *, nsdelegate: bool):
        self.hierarchies = hierarchies
        self.version = hierarchies[0].version
        self.controllers = frozenset().union(*(hierarchy.controllers for hierarchy in hierarchies))
        self.nsdelegate = nsdelegate  # v2 mounted with nsdelegate: a cgroup namespace bounds who may move whom

    def describe(self) -> str:
        """One line for the log: version and where our groups live."""
        places = ", ".join(f"{hierarchy.name} at {hierarchy.base}" for hierarchy in self.hierarchies)
        return f"cgroup v{self.version}" + (" (nsdelegate)" if self.nsdelegate else "") + f": {places}"

    def run_group(self, name: str | None = None, *, prefix: str = RUN_PREFIX) -> RunGroup:
        """Create the group of one grading run.

        Args:
            name: unique among concurrent runs; by default ``<prefix><pid>-<start time>`` of this
                process, which ``clean_stale`` recognises as abandoned once this process is gone.
            prefix: the start of the default name.

        Returns:
            The new, empty run group.

        Raises:
            CgroupError: the name is not usable or already exists, or the kernel refused.
        """
        if name is None:
            name = default_run_name(prefix=prefix)
        _check_name(name, "a run group")
        return RunGroup._create(self, {hierarchy: hierarchy.base / name for hierarchy in self.hierarchies}, name)

    def run_group_names(self) -> list[str]:
        """The run groups that exist now (ours and other runs'), by name."""
        names = set()
        for hierarchy in self.hierarchies:
            if hierarchy.base.is_dir():
                names.update(entry.name for entry in hierarchy.base.iterdir()
                             if entry.is_dir() and entry.name != GRADER_LEAF)
        return sorted(names)

    def clean_stale(self, prefix: str = RUN_PREFIX) -> list[str]:
        """Remove the run groups an earlier, ended run left behind (a crash, a kill -9).

        A group named ``<prefix><pid>-<start>`` (``run_group``'s default) is stale when that process no
        longer runs; it is then removed with anything still in it. Another name starting with
        ``prefix`` is removed only when no process is left in it. Groups of live runs are never touched.

        Args:
            prefix: only groups whose name starts with it are considered.

        Returns:
            The names removed.

        Raises:
            CgroupError: a stale group could not be removed (the message says what is left in it).
        """
        removed = []
        for name in self.run_group_names():
            if not name.startswith(prefix):
                continue
            group = RunGroup(self, {hierarchy: hierarchy.base / name for hierarchy in self.hierarchies}, name)
            owner = re.fullmatch(re.escape(prefix) + r"(\d+)-(\d+)(?:-\d+)?", name)
            if owner:
                pid, start = int(owner.group(1)), int(owner.group(2))
                if _process_start(pid) == start:
                    continue  # that run is alive
            elif group.processes():
                continue  # not ours to judge: someone is using it
            group.remove()
            removed.append(name)
        return removed


class _Group:
    """A cgroup present in every hierarchy of the tree; what every level can do."""

    def __init__(self, tree: CgroupTree, paths: dict[Hierarchy, Path], name: str):
        self.tree, self.paths, self.name = tree, paths, name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.tree.describe()})"

    @classmethod
    def _create(cls, tree: CgroupTree, paths: dict[Hierarchy, Path], name: str, **attributes):
        made = []
        try:
            for hierarchy, path in paths.items():
                try:
                    path.mkdir()
                except FileExistsError:
                    raise CgroupError(f"the cgroup {path} already exists; a group is always made fresh, so its "
                                      f"counters and processes are its own. Choose a new name, or remove the "
                                      f"old one first (CgroupTree.clean_stale for a crashed run).") from None
                made.append(path)
            group = cls(tree, paths, name, **attributes)
            group._configure()
        except OSError as error:
            _remove_if_empty(*reversed(made))
            raise CgroupError(f"could not create the cgroup {name!r}: {error}") from error
        except BaseException:
            _remove_if_empty(*reversed(made))
            raise
        return group

    def _configure(self) -> None:
        """Intermediate groups hand the controllers on (v2); submissions override this with limits."""
        if self.tree.version == 2:
            for hierarchy, path in self.paths.items():
                _write(path / "cgroup.subtree_control", " ".join(f"+{name}" for name in sorted(hierarchy.controllers)))

    def _directories(self) -> list[Path]:
        """Every directory of this group and its descendants, in every hierarchy, deepest first."""
        directories = []
        for path in self.paths.values():
            for folder, subfolders, _ in os.walk(path, topdown=False):
                directories.append(Path(folder))
        return directories

    def exists(self) -> bool:
        """Whether the group's directory exists in any hierarchy."""
        return any(path.is_dir() for path in self.paths.values())

    def processes(self) -> list[int]:
        """The pids (in the grader's PID namespace) of every process in this group or below, sorted."""
        pids = set()
        for folder in self._directories():
            pids.update(_read_pids(folder / "cgroup.procs"))
        return sorted(pids)

    def cpu_seconds(self) -> float:
        """CPU time used by every process that was ever in this group or below, user and system.

        Raises:
            CgroupError: a v1 machine without the cpuacct controller.
        """
        for hierarchy, path in self.paths.items():
            if hierarchy.version == 2:
                return _flat_keyed(path / "cpu.stat").get("usage_usec", 0) / 1e6
            if "cpuacct" in hierarchy.controllers:
                text = _read(path / "cpuacct.usage").strip()
                return int(text or 0) / 1e9
        raise CgroupError("this machine's cgroup v1 has no cpuacct hierarchy, so CPU time per group is not "
                          "measured; mount it (mount -t cgroup -o cpuacct cgroup /sys/fs/cgroup/cpuacct).")

    def kill_all(self, *, timeout_s: float = 5.0) -> None:
        """SIGKILL every process in this group and below, until none is left.

        v2's ``cgroup.kill`` (Linux 5.14) kills the whole subtree at once, fork bombs included;
        elsewhere every listed process is killed through a pidfd (never a recycled pid) until the
        group is empty. Processes that were killed but not yet reaped by their parent do not count.

        Args:
            timeout_s: how long to keep trying.

        Raises:
            CgroupError: processes were still alive after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        pause = 0.001
        while True:
            pids = self.processes()
            if not pids:
                return
            if time.monotonic() > deadline:
                raise CgroupError(f"{len(pids)} processes of the cgroup {self.name!r} survived SIGKILL for "
                                  f"{timeout_s:.0f} s (pids {', '.join(map(str, pids[:10]))}); a process in "
                                  f"uninterruptible sleep (state D in /proc/<pid>/stat) ends only when its "
                                  f"I/O does.")
            if not self._kill_by_cgroup_kill():
                self._kill_each(pids)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _kill_by_cgroup_kill(self) -> bool:
        for hierarchy, path in self.paths.items():
            if hierarchy.version == 2 and (path / "cgroup.kill").exists():
                try:
                    _write(path / "cgroup.kill", "1")
                    return True
                except FileNotFoundError:
                    return True  # gone meanwhile
                except OSError:
                    return False
        return False

    def _kill_each(self, pids: list[int]) -> None:
        # A pid read from cgroup.procs may be reused by an unrelated process before we signal it: open a
        # pidfd first, then check the pid is still ours, then signal through the pidfd.
        handles = {}
        for pid in pids:
            try:
                handles[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            except OSError:  # kernel before 5.3: no pidfds
                handles[pid] = None
        try:
            still_ours = set(self.processes())
            for pid, handle in handles.items():
                if pid not in still_ours:
                    continue
                try:
                    if handle is None:
                        os.kill(pid, signal.SIGKILL)
                    else:
                        signal.pidfd_send_signal(handle, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            for handle in handles.values():
                if handle is not None:
                    os.close(handle)

    def remove(self, *, timeout_s: float = 5.0) -> None:
        """Kill everything in this group and below, then delete the group in every hierarchy.

        Never raises for a group that is already gone, in part or in whole.

        Args:
            timeout_s: how long to keep killing and retrying ``rmdir`` (a killed process leaves its
                cgroup a moment after the signal).

        Raises:
            CgroupError: something was still in the group after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        if not self.exists():
            return
        self.kill_all(timeout_s=timeout_s)
        for folder in self._directories():
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:
                    if error.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise CgroupError(f"could not remove the cgroup {folder}: {error.strerror}; still in it: "
                                          f"{_read_pids(folder / 'cgroup.procs') or 'no process'}.") from error
                    self.kill_all(timeout_s=max(0.0, deadline - time.monotonic()))
                    time.sleep(0.01)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


class _Parent(_Group):
    """A group that holds submission groups."""

    def submission(self, name: str, *, memory_bytes: int | None, cpu_weight: int = 100,
                   pids_max: int | None = 256) -> SubmissionCgroup:
        """Create the cgroup of one submission (or of a zygote), fresh, with its limits.

        Args:
            name: unique in this parent, e.g. ``"sub-17"`` (see ``NAME_PATTERN``).
            memory_bytes: memory limit, without swap (v2 memory.max and memory.swap.max=0; v1
                memory.limit_in_bytes and, where swap accounting is on, memory.memsw.limit_in_bytes);
                None for no limit. Above it, the kernel's OOM killer kills a process of this group.
            cpu_weight: share of the CPU against sibling groups when the CPU is contended, 1 to 10000
                (v2 cpu.weight; v1 cpu.shares = weight x 10.24). Equal weights: equal shares, however
                many processes each group runs.
            pids_max: most tasks (processes and threads) alive at once; None for no limit.

        Returns:
            The new, empty group.

        Raises:
            CgroupError: a bad value, the name exists already, or the kernel refused a limit.
        """
        _check_name(name, "a submission cgroup")
        if memory_bytes is not None and memory_bytes < 1 << 20:
            raise CgroupError(f"memory_bytes={memory_bytes} is below 1 MiB, too little for any process; pass "
                              f"bytes, e.g. 3 << 30 for 3 GiB.")
        if not 1 <= cpu_weight <= 10000:
            raise CgroupError(f"cpu_weight={cpu_weight} is outside 1..10000 (100 is the default share).")
        if pids_max is not None and pids_max < 1:
            raise CgroupError(f"pids_max={pids_max} must be at least 1 (or None for no limit).")
        return SubmissionCgroup._create(self.tree, {hierarchy: path / name for hierarchy, path in self.paths.items()},
                                        name, parent=self, memory_bytes=memory_bytes, cpu_weight=cpu_weight,
                                        pids_max=pids_max)


class RunGroup(_Parent):
    """One grading run: its slots and submissions. ``remove()`` removes everything the run made."""

    def slot(self, name: str) -> SlotGroup:
        """Create the group of one worker slot (its zygote and its submissions go inside).

        Raises:
            CgroupError: the name is not usable or exists already.
        """
        _check_name(name, "a slot group")
        return SlotGroup._create(self.tree, {hierarchy: path / name for hierarchy, path in self.paths.items()}, name)


class SlotGroup(_Parent):
    """One worker slot. Its directory, bound read-write into the slot's warm zygote, lets the zygote's
    child (still uid 0) join the submission's cgroup before it drops its privileges."""

    def bind_args(self, inside_root: str = "/sandbox/cgroup") -> list[str]:
        """bwrap arguments that bind this slot's directory of every hierarchy under ``inside_root``.

        Put them after the sandbox's other mounts and before ``--remount-ro /`` (which is not
        recursive, so the binds stay writable). ``inside_root`` is made 0700: the submission, once it
        runs as its own uid, cannot even look inside (and should unmount it, see the report).

        Args:
            inside_root: where the hierarchies appear in the sandbox, one folder each
                (``Hierarchy.name``: ``unified`` on v2; ``memory``, ``cpu``... on v1).

        Returns:
            ``["--perms", "0700", "--dir", inside_root, "--bind", host, inside, ...]``.
        """
        args = ["--perms", "0700", "--dir", inside_root]
        for hierarchy, path in self.paths.items():
            args += ["--bind", str(path), f"{inside_root}/{hierarchy.name}"]
        return args


@dataclass(frozen=True)
class Usage:
    """What a submission's group counted, read before it is removed (its counters go with it)."""

    cpu_seconds: float               # user + system CPU time of every process that was in the group
    memory_peak_bytes: int | None    # None where the kernel does not say (v2 before Linux 5.19)
    oom_kills: int                   # processes the OOM killer killed at the memory limit
    pids_limit_hits: int             # forks and clones refused at pids_max


class SubmissionCgroup(_Group):
    """The cgroup of one submission: its limits, its processes, its counters. A context manager that
    removes it (killing what is left) on exit."""

    def __init__(self, tree: CgroupTree, paths: dict[Hierarchy, Path], name: str, *, parent: _Group | None = None,
                 memory_bytes: int | None = None, cpu_weight: int = 100, pids_max: int | None = None):
        super().__init__(tree, paths, name)
        self.parent, self.memory_bytes, self.cpu_weight, self.pids_max = parent, memory_bytes, cpu_weight, pids_max

    def _configure(self) -> None:
        for hierarchy, path in self.paths.items():
            controllers = hierarchy.controllers
            if "memory" in controllers and self.memory_bytes is not None:
                limit = str(self.memory_bytes)
                if hierarchy.version == 2:
                    _write(path / "memory.max", limit)
                    _write_if_present(path / "memory.swap.max", "0")  # absent without swap accounting
                else:
                    _write(path / "memory.limit_in_bytes", limit)
                    if not _write_if_present(path / "memory.memsw.limit_in_bytes", limit):
                        _write_if_present(path / "memory.swappiness", "0")  # no swap accounting: avoid swap
            if "cpu" in controllers:
                if hierarchy.version == 2:
                    _write(path / "cpu.weight", str(self.cpu_weight))
                else:
                    _write(path / "cpu.shares", str(max(2, round(self.cpu_weight * V1_WEIGHT_TO_SHARES))))
            if "pids" in controllers and self.pids_max is not None:
                _write(path / "pids.max", str(self.pids_max))

    def procs_files(self, *, inside_root: str | None = None) -> list[Path]:
        """The ``cgroup.procs`` file of every hierarchy: writing a pid to all of them moves that process in.

        Args:
            inside_root: None for the grader's paths; the ``inside_root`` given to the slot's
                ``bind_args`` for the paths a zygote sees (only for a submission of a slot).

        Returns:
            One path per hierarchy.

        Raises:
            CgroupError: ``inside_root`` for a submission that is not in a slot.
        """
        if inside_root is None:
            return [path / "cgroup.procs" for path in self.paths.values()]
        if not isinstance(self.parent, SlotGroup):
            raise CgroupError(f"the cgroup {self.name!r} is not in a slot, so no sandbox has it bound; create it "
                              f"with RunGroup.slot(...).submission(...) for a warm worker.")
        return [Path(inside_root) / hierarchy.name / self.name / "cgroup.procs" for hierarchy in self.paths]

    def attach(self, pid: int) -> None:
        """Move the process ``pid`` (all its threads) into this group, in every hierarchy.

        Its children inherit the group from then on; those it already has stay where they are, which
        is why a sandbox should join before it starts (``shell_prefix``).

        Raises:
            CgroupError: the process is gone, or the kernel refused.
        """
        for procs in self.procs_files():
            try:
                _write(procs, str(pid))
            except ProcessLookupError:
                raise CgroupError(f"process {pid} ended before it could join the cgroup {self.name!r}.") from None
            except OSError as error:
                raise CgroupError(f"could not move process {pid} into {procs}: {error.strerror}.") from error

    def shell_prefix(self) -> list[str]:
        """An argv prefix that joins this group and then execs the rest: ``prefix + ["bwrap", ...]``.

        The shell writes its own pid into every ``cgroup.procs`` and execs the command, so the sandbox
        and everything it starts are in the group from their first instruction. If joining fails the
        command does not run and the exit code is ``JOIN_FAILED_EXIT_CODE`` (125).

        Returns:
            ``["/bin/sh", "-c", JOIN_SCRIPT, "autograder-cgroup-join", procs..., "--"]``.
        """
        return ["/bin/sh", "-c", JOIN_SCRIPT, "autograder-cgroup-join", *map(str, self.procs_files()), "--"]

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer killed in this group (0 without a memory controller)."""
        for hierarchy, path in self.paths.items():
            if "memory" in hierarchy.controllers:
                name = "memory.events" if hierarchy.version == 2 else "memory.oom_control"
                return _flat_keyed(path / name).get("oom_kill", 0)
        return 0

    def memory_peak_bytes(self) -> int | None:
        """The most memory the group used at once; None where the kernel does not say (v2 before 5.19)."""
        for hierarchy, path in self.paths.items():
            if "memory" in hierarchy.controllers:
                name = "memory.peak" if hierarchy.version == 2 else "memory.max_usage_in_bytes"
                text = _read(path / name).strip()
                return int(text) if text.isdigit() else None
        return None

    def pids_limit_hits(self) -> int:
        """How many times a fork or clone failed because the group was at ``pids_max``."""
        for hierarchy, path in self.paths.items():
            if "pids" in hierarchy.controllers:
                return _flat_keyed(path / "pids.events").get("max", 0)
        return 0

    def usage(self) -> Usage:
        """Every counter at once, for the submission's record; call it before ``remove()``.

        Returns:
            A ``Usage``; zeros (and None) for a controller this tree lacks.

        Raises:
            CgroupError: as ``cpu_seconds``.
        """
        return Usage(cpu_seconds=self.cpu_seconds(), memory_peak_bytes=self.memory_peak_bytes(),
                     oom_kills=self.oom_kills(), pids_limit_hits=self.pids_limit_hits())
