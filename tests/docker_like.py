"""A Docker-like container made with bubblewrap, to try the grader where Gradescope runs it.

What Docker's defaults give a container's process, and this imitation with them:

* uid 0 of the host (no user-namespace remapping), every host uid usable, so ``setresuid`` works;
* only Docker's fourteen default capabilities (no CAP_SYS_ADMIN: no mounts, no namespaces but a user one);
* Docker's seccomp profile refuses new user namespaces to a process without CAP_SYS_ADMIN (unshare and clone
  with CLONE_NEWUSER fail with EPERM, clone3 with ENOSYS so that libc falls back to clone): the filter below
  does exactly this, so bubblewrap cannot create its namespaces inside, and ``unshare -n`` is refused;
* its own PID, IPC, UTS and mount namespaces, /sys read-only (so no cgroup can be made), a private /tmp;
* the network of the host (Gradescope's containers have one).

Needs root on a host where bubblewrap works (the grader's own namespace tier). x86_64 only (the filter's numbers).
"""

from __future__ import annotations

import errno
import os
import platform
import struct
import subprocess
import sys
from pathlib import Path

from autograder.harness import seccomp

DOCKER_CAPABILITIES = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                       "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                       "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
CLONE_NEWUSER = 0x10000000
NR_CLONE, NR_UNSHARE, NR_CLONE3 = 56, 272, 435  # x86_64
BPF_JSET = 0x40
OFFSET_FIRST_ARGUMENT = 16  # seccomp_data.args[0], its low 32 bits on a little-endian machine


def available() -> str:
    """'' when the imitation can run here, else why not."""
    if os.geteuid() != 0:
        return "the Docker-like container needs root (as Docker's own daemon does)"
    if platform.machine() not in ("x86_64", "amd64"):
        return "the imitation's seccomp filter knows x86_64's system-call numbers only"
    result = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-pid", "true"], capture_output=True)
    if result.returncode != 0:
        return "bubblewrap cannot make namespaces on this host"
    return ""


def no_user_namespaces_filter() -> bytes:
    """Docker's rule for new user namespaces, as a classic BPF program (bwrap --seccomp reads it)."""
    ld = seccomp.BPF_LD | seccomp.BPF_W | seccomp.BPF_ABS
    jeq = seccomp.BPF_JMP | seccomp.BPF_JEQ | seccomp.BPF_K
    ret = seccomp.BPF_RET | seccomp.BPF_K
    program = [
        (ld, 0, 0, seccomp.OFFSET_ARCHITECTURE),                   # 0
        (jeq, 1, 0, seccomp.AUDIT_ARCH_X86_64),                    # 1: x86_64 -> 3
        (ret, 0, 0, seccomp.SECCOMP_RET_ALLOW),                    # 2
        (ld, 0, 0, seccomp.OFFSET_SYSCALL_NUMBER),                 # 3
        (jeq, 3, 0, NR_UNSHARE),                                   # 4: -> 8
        (jeq, 2, 0, NR_CLONE),                                     # 5: -> 8
        (jeq, 5, 0, NR_CLONE3),                                    # 6: -> 12
        (ret, 0, 0, seccomp.SECCOMP_RET_ALLOW),                    # 7
        (ld, 0, 0, OFFSET_FIRST_ARGUMENT),                         # 8: the flags
        (seccomp.BPF_JMP | BPF_JSET | seccomp.BPF_K, 0, 1, CLONE_NEWUSER),  # 9: set -> 10, else 11
        (ret, 0, 0, seccomp.SECCOMP_RET_ERRNO | errno.EPERM),      # 10
        (ret, 0, 0, seccomp.SECCOMP_RET_ALLOW),                    # 11
        (ret, 0, 0, seccomp.SECCOMP_RET_ERRNO | errno.ENOSYS),     # 12
    ]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def _traversable(path: Path) -> list[str]:
    args = []
    for parent in reversed(path.parents):
        if str(parent) != "/":
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def command(argv: list[str], *, binds: dict[str, Path], read_only: dict[str, Path] = {}, env: dict[str, str] = {},
            chdir: str = "/", seccomp_fd: int) -> list[str]:
    """The bwrap argv running ``argv`` in the container: ``binds`` (inside -> host) writable, ``read_only``
    likewise; the interpreter of this process (its installation and virtual environment) read-only at the same
    paths, so ``sys.executable`` works inside."""
    interpreter = sorted({Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent})
    args = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--cap-drop", "ALL"]
    for capability in DOCKER_CAPABILITIES:
        args += ["--cap-add", capability]
    args += ["--seccomp", str(seccomp_fd), "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm", "--ro-bind", "/sys", "/sys",
             "--perms", "1777", "--tmpfs", "/tmp", "--tmpfs", "/run", "--perms", "1777", "--dir", "/run/lock",
             "--perms", "0755", "--tmpfs", "/root", "--perms", "1777", "--tmpfs", "/var/tmp"]  # /root: this
    # interpreter may live below it (pyenv), and must be readable to other uids, as /usr/bin/python3 is in an image
    for path in interpreter:
        if not str(path).startswith("/usr"):
            args += _traversable(path) + ["--ro-bind", str(path), str(path)]
    for inside, host in read_only.items():
        args += _traversable(Path(inside)) + ["--ro-bind", str(host), inside]
    for inside, host in binds.items():
        args += _traversable(Path(inside)) + ["--bind", str(host), inside]
    args += ["--chdir", chdir, "--clearenv"]
    for key, value in {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                       "LANG": "C.UTF-8", **env}.items():
        args += ["--setenv", key, value]
    return args + ["--", *argv]


def run(argv: list[str], *, binds: dict[str, Path], read_only: dict[str, Path] = {}, env: dict[str, str] = {},
        chdir: str = "/", timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv`` in a fresh Docker-like container; returns its completed process (text output)."""
    read_end, write_end = os.pipe()
    program = no_user_namespaces_filter()
    os.write(write_end, program)
    os.close(write_end)
    try:
        return subprocess.run(command(argv, binds=binds, read_only=read_only, env=env, chdir=chdir, seccomp_fd=read_end),
                              pass_fds=(read_end,), capture_output=True, text=True, timeout=timeout, **kwargs)
    finally:
        os.close(read_end)
