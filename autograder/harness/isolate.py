"""Namespaces through Linux syscalls (ctypes): a submission's own (a warm zygote's child) and, inside it, the
student's process's own (``enter_executor_namespaces``).

``enter_private_namespaces()`` gives the calling, single-threaded process what a fresh bubblewrap
sandbox gives: its own user, mount, PID, network, IPC and UTS namespaces, a fresh size-capped /tmp,
a /proc that shows only its own PID namespace, no further user namespaces, and no capabilities. It
returns in the *child* that is PID 1 of the new PID namespace. Nothing of an earlier submission is
visible to it, and nothing it does outlives it: when that PID 1 exits the kernel kills the namespace.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    0x1, 0x2, 0x4, 0x8, 0x20, 0x1000, 0x4000, 1 << 18)
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG = 24, 38, 1
LINUX_CAPABILITY_VERSION_3 = 0x20080522
LAST_CAPABILITY = 63
STUDENT_UID = 1000  # who the student's process is inside its own user namespace

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise IsolationError(error, f"{what}: {os.strerror(error)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def enter_private_namespaces(*, scratch: str, scratch_bytes: int, uid: int | None,
                             new_cgroup_namespace: bool = False) -> None:
    """Isolate this process (must be single-threaded: call it right after fork).

    As root (privileged bwrap keeps CAP_SYS_ADMIN for the zygote), the namespaces are made without a
    user namespace and the process then becomes ``uid``; as an ordinary user, a nested user namespace
    provides the privileges for the mounts, and every capability is dropped afterwards.

    Returns in a new process, PID 1 of a fresh PID namespace; the intermediate process waits for it
    and exits with its status, so the caller's ``waitpid`` sees the submission's end.
    """
    as_root = os.geteuid() == 0
    outer_uid, outer_gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if new_cgroup_namespace:  # after joining the submission's group: it then sees that group as its root
        flags |= CLONE_NEWCGROUP
    _check(_libc.unshare(flags if as_root else flags | CLONE_NEWUSER), "unshare")
    if not as_root:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{outer_uid} {outer_uid} 1")  # the kernel still sees the slot's uid
        _write("/proc/self/gid_map", f"{outer_gid} {outer_gid} 1")
    # Mount changes stay in this namespace.
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    _fresh_scratch(scratch, scratch_bytes)
    if os.path.isdir("/dev/shm"):  # the zygote's /dev is shared by its children: a fresh one, or notes survive
        _check(_libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                           b"size=64m,mode=1777"), "mount tmpfs on /dev/shm")
    pid = os.fork()
    if pid:  # the intermediate process: wait for the namespace's PID 1, pass its status on
        _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
        _pass_on(os.waitpid(pid, 0)[1])
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    _check(_libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount proc")
    if as_root:
        if uid is None:
            raise IsolationError(1, "refusing to run a submission as root: no slot uid given")
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # leaving uid 0 clears the permitted and effective capabilities
    # Further user namespaces stay possible here: the supervisor makes one for the student's process
    # (enter_executor_namespaces), which then forbids any more.
    drop_capabilities()


def uncover_proc() -> None:
    """As root, mount a fresh /proc over the one privileged bubblewrap made.

    bwrap covers the parts of /proc its user could write to (/proc/sys, /proc/sysrq-trigger, ...) with
    read-only binds; in a user namespace such covers are locked, and the kernel then refuses the student's
    process a /proc of its own ("not fully visible"). The fresh mount has no covers and needs none: nothing
    after this runs as root. Unprivileged bwrap covers nothing (its user can write none of those), and the
    call does nothing there."""
    if os.geteuid() != 0:
        return
    _check(_libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount a fresh /proc")


def _pass_on(status: int) -> None:
    """End this intermediate process as its child ended: with the same exit code, or killed by the same signal
    (so whoever waits for it tells a SIGKILL from the memory limit from an exit). Never returns."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        for step in (lambda: signal.signal(number, signal.SIG_DFL),  # refused for SIGKILL: it needs none
                     lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, [number]),
                     lambda: os.kill(os.getpid(), number)):
            try:
                step()
            except (OSError, ValueError):
                pass
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _fresh_scratch(scratch: str, scratch_bytes: int) -> None:
    """Mount a new tmpfs on ``scratch``, keeping any interpreter folder that lives below it (a virtual
    environment in /tmp): it is re-bound, read-only, from a descriptor opened before the mount hid it."""
    interpreter = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    kept = sorted(path for path in interpreter if path.startswith(scratch.rstrip("/") + "/"))
    descriptors = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in kept]
    _check(_libc.mount(b"tmpfs", scratch.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                       f"size={scratch_bytes},mode=1777".encode()), "mount tmpfs")
    for path, descriptor in zip(kept, descriptors):
        os.makedirs(path, exist_ok=True)
        source = f"/proc/self/fd/{descriptor}".encode()
        _check(_libc.mount(source, path.encode(), None, MS_BIND | MS_REC, None), f"bind {path}")
        _libc.mount(None, path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)  # already read-only below
        os.close(descriptor)


def drop_capabilities() -> None:
    """Empty every capability set (bounding set where allowed) and set no_new_privs."""
    for capability in range(LAST_CAPABILITY + 1):
        _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)  # unknown numbers fail harmlessly

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(LINUX_CAPABILITY_VERSION_3, 0), (Data * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def enter_executor_namespaces(*, scratch: str, scratch_bytes: int, hide: list[str], module_name: str,
                              module_source: bytes | None, report_pid) -> str | None:
    """Give the student's process (forked from the submission's supervisor) a world of its own.

    Must be called right after fork, single-threaded. Creates user, mount, PID and IPC namespaces (a user
    namespace of its own in every mode: the process then holds capabilities only over itself, and the
    recorder beside it, in the parent namespaces, can be neither traced nor signalled nor seen), hides
    ``hide`` (the grader's files: inputs, plan, harness, graders, the submitted model) under empty
    read-only tmpfs, mounts a fresh scratch tmpfs with only a copy of the student's module, and forks the
    process that becomes PID 1 of the new PID namespace: the executor. This intermediate process reports the
    executor's pid (``report_pid(pid)``, in the supervisor's namespace), waits for it and exits with its
    status. In the executor, /proc is remounted, further user namespaces are forbidden and every capability
    is dropped (with ``no_new_privs``).

    Returns:
        The path of the student's module in the executor's scratch (None when no module was submitted).
    """
    outer_uid, outer_gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare (executor)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{STUDENT_UID} {outer_uid} 1")
    _write("/proc/self/gid_map", f"{STUDENT_UID} {outer_gid} 1")
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate / (executor)")
    for path in hide:
        if os.path.isdir(path):
            _check(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                               b"size=4096,mode=0555"), f"hide {path}")
    _fresh_scratch(scratch, scratch_bytes)
    folder = os.path.join(scratch, "student")
    os.makedirs(folder, mode=0o755)
    path = os.path.join(folder, module_name) if module_source is not None else None
    if path is not None:
        with open(path, "wb") as handle:
            handle.write(module_source)
    for name in ("home", "work"):
        os.makedirs(os.path.join(scratch, name), mode=0o700, exist_ok=True)
    pid = os.fork()
    if pid:  # the intermediate process: report the executor, wait for it, pass its status on
        _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
        report_pid(pid)
        _pass_on(os.waitpid(pid, 0)[1])
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    os.setsid()  # a session of its own: kill(0) or killpg from the student's code reaches only its own processes
    _check(_libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount proc (executor)")
    _write("/proc/sys/user/max_user_namespaces", "0")  # no nested user namespace to regain capabilities
    drop_capabilities()
    return path


# -- the container tier (sandbox/tiers.py): no namespaces, a separate uid ------------------------------

def enter_student_uid(*, uid: int, root: str, module_name: str, module_source: bytes | None, report_pid,
                      max_processes: int) -> tuple[str | None, str]:
    """The container tier's ``enter_executor_namespaces``: the student's process as uid ``uid``.

    Must be called right after fork, as root, single-threaded. Makes a scratch folder of its own (mode 0700,
    owned by ``uid``, under ``root``, which ``uid`` can traverse but not list) with a copy of the module, forks
    the executor and reports its pid like the namespace version; the executor then drops the capability
    bounding set, becomes ``uid`` (no groups), sets RLIMIT_NPROC for that uid, clears every capability and
    sets ``no_new_privs``. The grader's files, inputs and results are unreadable to ``uid`` (tiers.lock_down).

    Returns:
        (the path of the student's module or None, the executor's scratch folder).
    """
    import resource
    import secrets
    scratch = os.path.join(root, secrets.token_hex(12))
    os.mkdir(scratch, 0o700)
    for name in ("student", "home", "work"):
        os.mkdir(os.path.join(scratch, name), 0o700)
    path = os.path.join(scratch, "student", module_name) if module_source is not None else None
    if path is not None:
        with open(path, "wb") as handle:
            handle.write(module_source)
    for folder, _, names in os.walk(scratch):
        for name in [None, *names]:
            os.lchown(folder if name is None else os.path.join(folder, name), uid, uid)
    pid = os.fork()
    if pid:  # the intermediate process (root): report the executor, wait for it, pass its status on
        _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
        report_pid(pid)
        _pass_on(os.waitpid(pid, 0)[1])
    os.setsid()
    for capability in range(LAST_CAPABILITY + 1):  # while CAP_SETPCAP is still held
        _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # clears the permitted and effective capabilities
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != uid:
        raise IsolationError(1, "could not become the student's uid")
    resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))  # counted per uid: this slot's
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # a change of uid clears it: set it again
    os.umask(0o077)
    drop_capabilities()
    return path, scratch


def processes_of(uid: int, *, skip=()) -> list[int]:
    """The live (not zombie) processes whose real uid is ``uid``, but ``skip``."""
    return [pid for pid, _ in _live_processes(uid, skip=skip)]


def anonymous_memory_of(uid: int) -> int:
    """Bytes of private memory (RssAnon: heap, stacks, anonymous maps) of every live process of ``uid``; pages a
    fork still shares with its parent count once per process, so this errs on the high side."""
    return sum(rss for _, rss in _live_processes(uid))


def _live_processes(uid: int, *, skip=()) -> list[tuple[int, int]]:
    """(pid, RssAnon bytes) of the live processes whose real uid is ``uid``, but ``skip``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            with open(f"/proc/{entry}/status", "rb") as handle:
                status = handle.read()
        except OSError:
            continue
        fields = dict(line.split(b":", 1) for line in status.splitlines() if b":" in line)
        try:
            if int(fields[b"Uid"].split()[0]) == uid and not fields[b"State"].strip().startswith(b"Z"):
                rss = fields.get(b"RssAnon", b"0 kB").split()[0]
                found.append((int(entry), int(rss) * 1024))
        except (KeyError, IndexError, ValueError):
            continue
    return found


def kill_uid(uid: int, *, rounds: int = 200) -> bool:
    """Kill every process of ``uid`` (as root): a forked child becomes ``uid`` and calls kill(-1, SIGKILL) until
    nothing is left, which the kernel does in one pass over the process table (a fork bomb cannot outrun it).
    Returns whether anything was found."""
    if uid == 0:
        raise IsolationError(1, "refusing to kill every process of root")
    found = False
    for _ in range(5):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.setresuid(uid, uid, uid)
                for _ in range(rounds):
                    try:
                        os.kill(-1, signal.SIGKILL)
                        code = 1
                    except ProcessLookupError:
                        break
                else:
                    code = 2
            except BaseException:  # noqa: BLE001
                code = 3
            finally:
                os._exit(code)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except ChildProcessError:
                status = 0
                break
            except InterruptedError:
                continue
        code = os.waitstatus_to_exitcode(status)
        found = found or code == 1
        if code == 0:
            return found
        # 1: some were killed (look again); 2: still some after all rounds; 3 or a signal: the helper itself was
        # killed (by the student's code, which may signal its own uid) or failed: try again
    return found


def die_with_parent() -> None:
    """SIGKILL this process when its parent ends (the zygote, or the grader)."""
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)


# Folders any uid may write to, where a container-tier submission could leave a note for a later one or fill the
# disk: the supervisor counts and removes there what the student's uid owns (a world-writable folder elsewhere on
# the machine is a documented gap of the container tier: SECURITY.md).
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue", "/run/lock", "/var/lock")


def owned_entries(uid: int, folders=WORLD_WRITABLE) -> list[str]:
    """The entries at the top of ``folders`` that ``uid`` owns."""
    found = []
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            try:
                if os.lstat(path).st_uid == uid:
                    found.append(path)
            except OSError:
                continue
    return found


def remove_paths(paths) -> None:
    """Remove files and folders (never following a symlink); what cannot be removed is left."""
    import shutil
    for path in paths:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def disk_usage(paths) -> int:
    """Bytes of disk the files under ``paths`` take (st_blocks), symlinks not followed."""
    total = 0
    for top in paths:
        try:
            info = os.lstat(top)
        except OSError:
            continue
        total += info.st_blocks * 512
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        for folder, dirs, names in os.walk(top):
            for name in dirs + names:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_blocks * 512
                except OSError:
                    continue
    return total
