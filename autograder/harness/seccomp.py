"""Deny the kernel keyring to this process and everything it starts: a seccomp filter, nothing else.

The kernel keeps one user keyring per uid (``@u``), and since Linux 5.3 it outlives every process of
that uid: a note a submission leaves there with ``add_key`` can be read with ``keyctl`` by the next
submission that runs as the same uid, in the same slot or in a later grading run. No honest
submission (nor Python, numpy, TensorFlow or the harness) uses the keyring, so ``deny_keyrings()``
makes ``add_key``, ``keyctl`` and ``request_key`` fail with ``EPERM`` and allows every other syscall.

This module runs INSIDE the sandbox, before any student code: standard library and ctypes only.
The filter is a classic BPF program assembled below with ``struct``, one documented instruction at a
time; the kernel keeps it for the life of the process, every thread (``SECCOMP_FILTER_FLAG_TSYNC``)
and every child (fork, clone and execve inherit it; nothing can remove it).

Supported: x86_64 (with its x32 variant and the i386 compatibility ABI a 64-bit process can still
reach through ``int 0x80``) and aarch64 (with the 32-bit ARM compatibility ABI). On any other
machine ``deny_keyrings()`` raises ``UnsupportedArchitecture`` before touching the process.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass

# -- classic BPF, as the kernel's linux/filter.h and linux/bpf_common.h define it -----------------------
BPF_LD, BPF_ALU, BPF_JMP, BPF_RET = 0x00, 0x04, 0x05, 0x06   # instruction classes
BPF_W, BPF_ABS = 0x00, 0x20                                  # load a 32-bit word at a fixed offset
BPF_AND, BPF_JEQ, BPF_K = 0x50, 0x10, 0x00                   # operation, comparison, operand is ``k``
INSTRUCTION = struct.Struct("=HBBI")                         # struct sock_filter {u16 code; u8 jt, jf; u32 k}

# -- struct seccomp_data {int nr; u32 arch; u64 instruction_pointer; u64 args[6];} -------------------
OFFSET_SYSCALL_NUMBER = 0
OFFSET_ARCHITECTURE = 4

# -- filter results (linux/seccomp.h) --------------------------------------------------------------
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

# -- installing it ------------------------------------------------------------------------------------
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
PR_GET_SECCOMP = 21
SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1

# -- what the self-check calls -------------------------------------------------------------------------
KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_USER_KEYRING = -4

# -- audit architectures (linux/audit.h: the ELF machine, | 64-bit, | little-endian) ---------------------
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
AUDIT_ARCH_ARM = 0x40000028
X32_SYSCALL_BIT = 0x40000000  # x32 programs run with the x86_64 audit arch and this bit in the number

KEYRING_SYSCALLS = ("add_key", "request_key", "keyctl")


@dataclass(frozen=True)
class Abi:
    """One system-call interface the kernel may be entered through, and its keyring syscall numbers."""

    name: str
    audit_arch: int
    numbers: dict[str, int]     # KEYRING_SYSCALLS -> this ABI's number (arch/*/syscall*.tbl)
    ignored_bits: int = 0       # bits cleared from the number before comparing (x32)


ABIS = {
    "x86_64": Abi("x86_64", AUDIT_ARCH_X86_64, {"add_key": 248, "request_key": 249, "keyctl": 250},
                  ignored_bits=X32_SYSCALL_BIT),
    "i386": Abi("i386", AUDIT_ARCH_I386, {"add_key": 286, "request_key": 287, "keyctl": 288}),
    "aarch64": Abi("aarch64", AUDIT_ARCH_AARCH64, {"add_key": 217, "request_key": 218, "keyctl": 219}),
    "arm": Abi("arm", AUDIT_ARCH_ARM, {"add_key": 309, "request_key": 310, "keyctl": 311}),
}

# A machine's native ABI first, then the compatibility ABIs its kernel may also accept.
MACHINE_ABIS = {"x86_64": ("x86_64", "i386"), "amd64": ("x86_64", "i386"),
                "aarch64": ("aarch64", "arm"), "arm64": ("aarch64", "arm")}
SECCOMP_SYSCALL_NUMBER = {"x86_64": 317, "aarch64": 277}  # of the native ABI, to call seccomp() itself


class SeccompError(RuntimeError):
    """The keyring filter could not be installed; the message says why and what to change."""


class UnsupportedArchitecture(SeccompError):
    """This machine's system-call numbers are not known to this module."""


def native_machine() -> str:
    """The ABI this Python process calls the kernel through: ``"x86_64"`` or ``"aarch64"``.

    Returns:
        The key into ``MACHINE_ABIS`` for this process.

    Raises:
        UnsupportedArchitecture: on another machine, or a 32-bit interpreter on a 64-bit kernel.
    """
    machine = os.uname().machine
    if machine not in MACHINE_ABIS or ctypes.sizeof(ctypes.c_void_p) != 8:
        bits = 8 * ctypes.sizeof(ctypes.c_void_p)
        raise UnsupportedArchitecture(
            f"the keyring filter knows the system calls of 64-bit x86_64 and aarch64 only; this process is "
            f"{bits}-bit on {machine!r}. Add that ABI's audit arch and add_key/request_key/keyctl numbers "
            f"(arch/*/syscall*.tbl) to ABIS and MACHINE_ABIS, or grade on an x86_64 or aarch64 machine.")
    return MACHINE_ABIS[machine][0]


def filter_instructions(machine: str) -> list[tuple[int, int, int, int, str]]:
    """The filter as (code, jump_if_true, jump_if_false, k, comment) tuples, in program order.

    Layout: check the audit arch and jump to that ABI's block; an arch the machine cannot produce is
    killed (it can only be an attack); each block loads the syscall number, compares it with the
    three keyring numbers and allows everything else; one shared instruction returns EPERM.

    Args:
        machine: a key of ``MACHINE_ABIS`` (``"x86_64"``, ``"aarch64"``; aliases accepted).

    Returns:
        The program, each instruction with a comment saying what it does.

    Raises:
        UnsupportedArchitecture: for a machine this module does not know.

    Example:
        >>> [comment for *_, comment in filter_instructions("aarch64")][:2]
        ['A = seccomp_data.arch', 'if A == aarch64: go to its block']
    """
    return _deny_list(machine, {name: {call: abi.numbers[call] for call in KEYRING_SYSCALLS}
                                for name, abi in ABIS.items()},
                      other_abi=(SECCOMP_RET_KILL_PROCESS, "an ABI this machine cannot produce: kill the process"),
                      denial=errno.EPERM, what="keyring")


def _deny_list(machine: str, numbers: dict[str, dict[str, int]], *, other_abi: tuple[int, str], denial: int,
               what: str) -> list[tuple[int, int, int, int, str]]:
    """A filter that fails the system calls ``numbers[abi name]`` with ``denial`` (an errno) and allows the rest.

    Layout: check the audit arch and jump to that ABI's block (any other arch gets ``other_abi``: an action and
    its comment); each block loads the syscall number (clearing x32's bit), compares it with the ABI's numbers
    and allows everything else; one shared instruction at the end denies."""
    if machine not in MACHINE_ABIS:
        raise UnsupportedArchitecture(
            f"no {what} filter for machine {machine!r}; known: {', '.join(sorted(MACHINE_ABIS))}.")
    abis = [ABIS[name] for name in MACHINE_ABIS[machine]]
    block_length = [2 + bool(abi.ignored_bits) + len(numbers[abi.name]) for abi in abis]  # load, [and], jeqs, ret
    dispatch_length = 1 + len(abis) + 1                                                 # load, jeq per ABI, other
    block_start = [dispatch_length + sum(block_length[:index]) for index in range(len(abis))]
    deny_at = dispatch_length + sum(block_length)

    program: list[tuple[int, int, int, int, str]] = [
        (BPF_LD | BPF_W | BPF_ABS, 0, 0, OFFSET_ARCHITECTURE, "A = seccomp_data.arch")]
    for index, abi in enumerate(abis):
        here = len(program)
        program.append((BPF_JMP | BPF_JEQ | BPF_K, block_start[index] - here - 1, 0, abi.audit_arch,
                        f"if A == {abi.name}: go to its block"))
    program.append((BPF_RET | BPF_K, 0, 0, other_abi[0], other_abi[1]))
    for abi in abis:
        program.append((BPF_LD | BPF_W | BPF_ABS, 0, 0, OFFSET_SYSCALL_NUMBER, f"{abi.name}: A = seccomp_data.nr"))
        if abi.ignored_bits:
            program.append((BPF_ALU | BPF_AND | BPF_K, 0, 0, 0xFFFFFFFF & ~abi.ignored_bits,
                            f"{abi.name}: clear the x32 bit, so x32's numbers match too"))
        for name, number in numbers[abi.name].items():
            here = len(program)
            program.append((BPF_JMP | BPF_JEQ | BPF_K, deny_at - here - 1, 0, number, f"{abi.name}: if A == {name}: deny"))
        program.append((BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW, f"{abi.name}: any other syscall: allow"))
    program.append((BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | denial, f"deny: fail with {errno.errorcode[denial]}"))
    assert len(program) == deny_at + 1 and all(jt < 256 for _, jt, _, _, _ in program)
    return program


def _pack(program: list[tuple[int, int, int, int, str]]) -> bytes:
    return b"".join(INSTRUCTION.pack(code, jump_true, jump_false, k) for code, jump_true, jump_false, k, _ in program)


def filter_program(machine: str) -> bytes:
    """The filter as the kernel reads it: an array of ``struct sock_filter`` in native byte order.

    Args:
        machine: as for ``filter_instructions``.

    Returns:
        8 bytes per instruction.

    Raises:
        UnsupportedArchitecture: for a machine this module does not know.
    """
    return _pack(filter_instructions(machine))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def deny_keyrings() -> None:
    """Make add_key, keyctl and request_key fail with EPERM here, in every thread and every child.

    Sets ``no_new_privs`` (required to install a filter without CAP_SYS_ADMIN, and wanted anyway),
    installs the filter on all threads at once, then checks that ``keyctl`` really fails.

    Raises:
        UnsupportedArchitecture: on a machine other than x86_64 or aarch64; nothing was changed.
        SeccompError: the kernel refused (no seccomp support, a thread that could not be synchronised);
            the process may then already have ``no_new_privs`` but no filter.

    Example:
        >>> deny_keyrings()  # doctest: +SKIP
        >>> # from now on, in this process and its children: keyctl(...) == -1, errno == EPERM
    """
    machine = native_machine()
    libc = _install(filter_program(machine), machine, "keyring")
    _check_denied(libc, machine)


def _install(program: bytes, machine: str, what: str) -> ctypes.CDLL:
    """Set no_new_privs and install ``program`` on every thread of this process (and so on its children)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0),
                  ctypes.c_ulong(0)) != 0:
        raise SeccompError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // INSTRUCTION.size, ctypes.cast(buffer, ctypes.c_void_p))
    result = libc.syscall(ctypes.c_long(SECCOMP_SYSCALL_NUMBER[machine]), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                          ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(fprog))
    error = ctypes.get_errno()
    if result > 0:
        raise SeccompError(f"seccomp(TSYNC) could not apply the {what} filter to thread {result}, which runs "
                           f"under another filter; install it before starting threads.")
    if result < 0 and error == errno.ENOSYS:  # kernels before 3.17 lack seccomp(); prctl covers one thread
        if len(os.listdir("/proc/self/task")) != 1:
            raise SeccompError("this kernel lacks seccomp() and the process has several threads, which "
                               "prctl(PR_SET_SECCOMP) would leave unfiltered; install the filter before "
                               "starting threads.")
        result = libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog),
                            ctypes.c_ulong(0), ctypes.c_ulong(0))
        error = ctypes.get_errno()
    if result != 0:
        raise SeccompError(f"the kernel refused the {what} filter: {os.strerror(error)} (errno {error}). The "
                           f"kernel needs CONFIG_SECCOMP_FILTER; a container runtime's own seccomp profile "
                           f"may forbid seccomp() (docker: --security-opt seccomp=unconfined).")
    return libc


def _check_denied(libc: ctypes.CDLL, machine: str) -> None:
    """Ask for the user keyring's id (no side effect: nothing is created) and insist on EPERM."""
    keyctl = ABIS[machine].numbers["keyctl"]
    result = libc.syscall(ctypes.c_long(keyctl), ctypes.c_long(KEYCTL_GET_KEYRING_ID),
                          ctypes.c_long(KEY_SPEC_USER_KEYRING), ctypes.c_long(0))
    error = ctypes.get_errno()
    if result != -1 or error != errno.EPERM:
        raise SeccompError(f"the keyring filter is installed but keyctl returned {result} (errno {error}) "
                           f"instead of failing with EPERM; this is a bug in autograder/harness/seccomp.py.")


# -- the container tier's network filter (sandbox/tiers.py: no network namespace there) -----------------------
NETWORK_SYSCALLS = {"x86_64": {"socket": 41}, "i386": {"socket": 359, "socketcall": 102},
                    "aarch64": {"socket": 198}, "arm": {"socket": 281}}


def network_filter_instructions(machine: str) -> list[tuple[int, int, int, int, str]]:
    """A filter that makes ``socket()`` fail with EACCES for every family (no IPv4, IPv6, netlink or packet
    socket; no Unix socket either, which could reach a listener on the machine by path or abstract name) and
    refuses the i386 ``socketcall`` multiplexer outright. ``socketpair()`` still works: its two ends reach only
    each other. Every other system call is allowed (the keyring filter judges the rest)."""
    return _deny_list(machine, NETWORK_SYSCALLS, other_abi=(SECCOMP_RET_ALLOW, "another ABI: the keyring filter kills it"),
                      denial=errno.EACCES, what="network")


def network_program(machine: str) -> bytes:
    return _pack(network_filter_instructions(machine))


def deny_network() -> None:
    """Let this process and its children make no socket (``socketpair`` only): no connection to any network, the
    machine's loopback and Unix listeners included. For the container tier, whose student process has no network
    namespace of its own.

    Raises:
        UnsupportedArchitecture, SeccompError: as ``deny_keyrings``.
    """
    import socket
    machine = native_machine()
    _install(network_program(machine), machine, "network")
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    except PermissionError:
        return
    raise SeccompError("the network filter is installed but an IPv4 socket could still be made; this is a bug in "
                       "autograder/harness/seccomp.py.")
