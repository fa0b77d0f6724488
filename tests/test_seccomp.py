"""autograder/harness/seccomp.py: the keyring leak it closes, and the filter, decoded and in the real kernel.

The filter is installed only in subprocesses (it cannot be removed, and pytest must keep working).
Tests that switch uid need root; each one invalidates that uid's keyrings afterwards.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.harness import seccomp

REPO = Path(__file__).resolve().parent.parent
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
on_x86_64 = pytest.mark.skipif(os.uname().machine not in ("x86_64", "amd64"), reason="x86_64 only")


def native_or_skip() -> str:
    try:
        return seccomp.native_machine()
    except seccomp.UnsupportedArchitecture as error:
        pytest.skip(str(error))


# -- the program, decoded and run by a small BPF interpreter ------------------------------------------------

def run_filter(program: bytes, *, number: int, arch: int, first_argument: int = 0) -> int:
    """Execute the classic-BPF subset the filters use on one seccomp_data; returns the action."""
    instructions = list(seccomp.INSTRUCTION.iter_unpack(program))
    accumulator, counter = 0, 0
    fields = {seccomp.OFFSET_SYSCALL_NUMBER: number & 0xFFFFFFFF, seccomp.OFFSET_ARCHITECTURE: arch,
              16: first_argument}  # seccomp_data.args[0] (read by no instruction of these filters)
    for _ in range(len(instructions)):  # no backward jumps in classic BPF: at most one pass
        code, jump_true, jump_false, k = instructions[counter]
        if code == seccomp.BPF_LD | seccomp.BPF_W | seccomp.BPF_ABS:
            accumulator = fields[k]
        elif code == seccomp.BPF_ALU | seccomp.BPF_AND | seccomp.BPF_K:
            accumulator &= k
        elif code == seccomp.BPF_JMP | seccomp.BPF_JEQ | seccomp.BPF_K:
            counter += jump_true if accumulator == k else jump_false
        elif code == seccomp.BPF_RET | seccomp.BPF_K:
            return k
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")
        counter += 1
    raise AssertionError("the program ran off its end")


DENY = seccomp.SECCOMP_RET_ERRNO | errno.EPERM
ALLOW = seccomp.SECCOMP_RET_ALLOW
KILL = seccomp.SECCOMP_RET_KILL_PROCESS
X32 = seccomp.X32_SYSCALL_BIT

CASES = {
    "x86_64": [
        (seccomp.AUDIT_ARCH_X86_64, 248, DENY), (seccomp.AUDIT_ARCH_X86_64, 249, DENY),
        (seccomp.AUDIT_ARCH_X86_64, 250, DENY), (seccomp.AUDIT_ARCH_X86_64, X32 | 248, DENY),
        (seccomp.AUDIT_ARCH_X86_64, X32 | 250, DENY),
        (seccomp.AUDIT_ARCH_X86_64, 0, ALLOW), (seccomp.AUDIT_ARCH_X86_64, 2, ALLOW),      # read, open
        (seccomp.AUDIT_ARCH_X86_64, 39, ALLOW), (seccomp.AUDIT_ARCH_X86_64, 57, ALLOW),    # getpid, fork
        (seccomp.AUDIT_ARCH_X86_64, 317, ALLOW), (seccomp.AUDIT_ARCH_X86_64, X32 | 0, ALLOW),
        (seccomp.AUDIT_ARCH_X86_64, 0xFFFFFFFF, ALLOW),                                    # nr -1: ENOSYS
        (seccomp.AUDIT_ARCH_I386, 286, DENY), (seccomp.AUDIT_ARCH_I386, 287, DENY),
        (seccomp.AUDIT_ARCH_I386, 288, DENY), (seccomp.AUDIT_ARCH_I386, 250, ALLOW),       # i386 250: fadvise64
        (seccomp.AUDIT_ARCH_I386, 20, ALLOW),
        (seccomp.AUDIT_ARCH_AARCH64, 219, KILL), (0, 0, KILL),
    ],
    "aarch64": [
        (seccomp.AUDIT_ARCH_AARCH64, 217, DENY), (seccomp.AUDIT_ARCH_AARCH64, 218, DENY),
        (seccomp.AUDIT_ARCH_AARCH64, 219, DENY), (seccomp.AUDIT_ARCH_AARCH64, 63, ALLOW),  # read
        (seccomp.AUDIT_ARCH_AARCH64, 250, ALLOW), (seccomp.AUDIT_ARCH_AARCH64, 172, ALLOW),  # getpid
        (seccomp.AUDIT_ARCH_ARM, 309, DENY), (seccomp.AUDIT_ARCH_ARM, 310, DENY),
        (seccomp.AUDIT_ARCH_ARM, 311, DENY), (seccomp.AUDIT_ARCH_ARM, 20, ALLOW),
        (seccomp.AUDIT_ARCH_X86_64, 250, KILL),
    ],
}


@pytest.mark.parametrize("machine", sorted(CASES))
def test_the_filter_denies_exactly_the_keyring_syscalls(machine):
    program = seccomp.filter_program(machine)
    for arch, number, expected in CASES[machine]:
        assert run_filter(program, number=number, arch=arch) == expected, (machine, hex(arch), hex(number))


@pytest.mark.parametrize("machine", ["x86_64", "aarch64", "amd64", "arm64"])
def test_every_instruction_is_documented_and_every_jump_lands_inside(machine):
    instructions = seccomp.filter_instructions(machine)
    assert len(seccomp.filter_program(machine)) == 8 * len(instructions)
    for index, (code, jump_true, jump_false, k, comment) in enumerate(instructions):
        assert comment
        if code & 0x07 == seccomp.BPF_JMP:
            assert index + 1 + max(jump_true, jump_false) < len(instructions)
    assert instructions[-1][0] == seccomp.BPF_RET | seccomp.BPF_K and instructions[-1][3] == DENY


def test_an_unknown_machine_is_refused_before_anything_changes(monkeypatch):
    with pytest.raises(seccomp.UnsupportedArchitecture, match="riscv64"):
        seccomp.filter_instructions("riscv64")
    real = os.uname()
    fake = type(real)((real.sysname, real.nodename, real.release, real.version, "riscv64"))
    monkeypatch.setattr(seccomp.os, "uname", lambda: fake)
    with pytest.raises(seccomp.UnsupportedArchitecture, match="x86_64 and aarch64"):
        seccomp.deny_keyrings()
    assert "NoNewPrivs:\t0" in Path("/proc/self/status").read_text()  # pytest itself was not touched


# -- in the real kernel ---------------------------------------------------------------------------------

PRELUDE = textwrap.dedent("""
    import ctypes, errno, json, os, sys, threading
    from autograder.harness import seccomp
    libc = ctypes.CDLL(None, use_errno=True)
    NUMBERS = seccomp.ABIS[seccomp.native_machine()].numbers
    USER_KEYRING, KEYCTL_GET_KEYRING_ID, KEYCTL_SEARCH, KEYCTL_READ, KEYCTL_INVALIDATE = -4, 0, 10, 11, 21

    def call(number, *arguments):
        converted = [argument if isinstance(argument, bytes) else ctypes.c_long(argument) for argument in arguments]
        result = libc.syscall(ctypes.c_long(number), *converted)
        return [result, ctypes.get_errno() if result == -1 else 0]

    def add_note(description, payload=b"the answer is 42"):
        return call(NUMBERS["add_key"], b"user", description, payload, len(payload), USER_KEYRING)

    def read_note(description):
        key, error = call(NUMBERS["keyctl"], KEYCTL_SEARCH, USER_KEYRING, b"user", description, 0)
        if key == -1:
            return {"error": errno.errorcode.get(error, error)}
        buffer = ctypes.create_string_buffer(256)
        length = libc.syscall(ctypes.c_long(NUMBERS["keyctl"]), ctypes.c_long(KEYCTL_READ), ctypes.c_long(key),
                              buffer, ctypes.c_long(256))
        return {"payload": buffer.raw[:length].decode()}

    def become(uid):
        os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
""")


def run_python(code: str, *arguments: str) -> dict:
    """Run PRELUDE + code in a fresh interpreter (as root if we are); it prints one JSON object."""
    result = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code), *arguments],
                            capture_output=True, text=True, timeout=60, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_with_the_filter_keyring_calls_fail_with_eperm_and_everything_else_works(tmp_path):
    native_or_skip()
    sample = tmp_path / "sample.txt"
    sample.write_text("plain data")
    report = run_python("""
        started, asked, answer = threading.Event(), threading.Event(), []
        def worker():  # a thread that exists before the filter: TSYNC must cover it too
            started.set(); asked.wait(); answer.extend(call(NUMBERS["keyctl"], KEYCTL_GET_KEYRING_ID, USER_KEYRING, 0))
        thread = threading.Thread(target=worker); thread.start(); started.wait()
        seccomp.deny_keyrings()
        asked.set(); thread.join()
        report = {
            "add_key": add_note(b"note"),
            "keyctl": call(NUMBERS["keyctl"], KEYCTL_GET_KEYRING_ID, USER_KEYRING, 0),
            "request_key": call(NUMBERS["request_key"], b"user", b"note", 0, 0),
            "thread_keyctl": answer,
            "getpid": os.getpid() > 0,
            "read": open(sys.argv[1]).read(),
            "status": {line.split(":")[0]: line.split()[1] for line in open("/proc/self/status")
                       if line.startswith(("Seccomp:", "NoNewPrivs:"))},
        }
        child = os.fork()
        if child == 0:  # the child inherits the filter
            result = call(NUMBERS["keyctl"], KEYCTL_GET_KEYRING_ID, USER_KEYRING, 0)
            os._exit(0 if result == [-1, errno.EPERM] else 1)
        report["child_exit"] = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        import subprocess  # and so does what it executes
        probe = ("import ctypes, sys; sys.path.insert(0, sys.argv[1]); from autograder.harness import seccomp; "
                 "libc = ctypes.CDLL(None, use_errno=True); "
                 "n = seccomp.ABIS[seccomp.native_machine()].numbers['keyctl']; "
                 "print(libc.syscall(ctypes.c_long(n), ctypes.c_long(0), ctypes.c_long(-4), ctypes.c_long(0)), "
                 "ctypes.get_errno())")
        report["exec_keyctl"] = subprocess.run([sys.executable, "-c", probe, os.getcwd()], capture_output=True,
                                               text=True).stdout.split()
        print(json.dumps(report))
    """, str(sample))
    eperm = [-1, errno.EPERM]
    assert report["add_key"] == eperm and report["keyctl"] == eperm and report["request_key"] == eperm
    assert report["thread_keyctl"] == eperm
    assert report["getpid"] and report["read"] == "plain data"
    assert report["status"] == {"Seccomp": "2", "NoNewPrivs": "1"}
    assert report["child_exit"] == 0
    assert report["exec_keyctl"] == ["-1", str(errno.EPERM)]


def test_installing_it_twice_is_harmless():
    native_or_skip()
    report = run_python("""
        seccomp.deny_keyrings(); seccomp.deny_keyrings()
        print(json.dumps({"keyctl": call(NUMBERS["keyctl"], KEYCTL_GET_KEYRING_ID, USER_KEYRING, 0),
                          "getppid": os.getppid() > 0}))
    """)
    assert report == {"keyctl": [-1, errno.EPERM], "getppid": True}


@on_x86_64
def test_the_x32_numbers_are_denied_too():
    # On a kernel without x32 support these numbers fail with ENOSYS anyway; with it, they would reach
    # the keyring. Either way the filter answers first.
    report = run_python("""
        before = call(seccomp.X32_SYSCALL_BIT | NUMBERS["keyctl"], KEYCTL_GET_KEYRING_ID, USER_KEYRING, 0)
        seccomp.deny_keyrings()
        after = call(seccomp.X32_SYSCALL_BIT | NUMBERS["keyctl"], KEYCTL_GET_KEYRING_ID, USER_KEYRING, 0)
        print(json.dumps({"before": before, "after": after}))
    """)
    assert report["before"][1] != errno.EPERM
    assert report["after"] == [-1, errno.EPERM]


INT_0X80 = """
    # long call(long nr, long a, long b, long c): the i386 entry (int 0x80), reachable from 64-bit code.
    import mmap
    CODE = bytes.fromhex("53"        # push rbx           (callee-saved)
                         "89f8"      # mov eax, edi       syscall number
                         "89f3"      # mov ebx, esi       first argument
                         "4189d0"    # mov r8d, edx
                         "89ca"      # mov edx, ecx       third argument
                         "4489c1"    # mov ecx, r8d       second argument
                         "cd80"      # int 0x80
                         "4863c0"    # movsxd rax, eax    -errno stays negative
                         "5b"        # pop rbx
                         "c3")       # ret
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(CODE)
    i386 = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long)(
        ctypes.addressof(ctypes.c_char.from_buffer(page)))
    I386_KEYCTL, I386_GETPID = seccomp.ABIS["i386"].numbers["keyctl"], 20
"""


@on_x86_64
def test_the_i386_entry_is_denied_too():
    probe = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(INT_0X80) + "print(i386(20, 0, 0, 0))"],
                           capture_output=True, text=True, timeout=60, cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    if probe.returncode != 0 or int(probe.stdout) <= 0:
        pytest.skip("this kernel has no i386 entry (ia32_emulation off): nothing to reach")
    report = run_python(textwrap.dedent(INT_0X80) + textwrap.dedent("""
        before = i386(I386_KEYCTL, KEYCTL_GET_KEYRING_ID, USER_KEYRING, 0)
        seccomp.deny_keyrings()
        print(json.dumps({"before": before, "after": i386(I386_KEYCTL, KEYCTL_GET_KEYRING_ID, USER_KEYRING, 0),
                          "getpid": i386(I386_GETPID, 0, 0, 0) == os.getpid()}))
    """))
    assert report["before"] > 0             # the keyring's id: reachable without the filter
    assert report["after"] == -errno.EPERM  # the raw kernel return: -EPERM
    assert report["getpid"]


# -- the leak between submissions of one uid, and how the filter closes it --------------------------------

@pytest.fixture
def sandbox_uid():
    """An otherwise unused uid, as a slot's submissions run as; its user keyring is emptied afterwards."""
    if os.geteuid() != 0:
        pytest.skip("switching to another uid needs root")
    native_or_skip()
    uid = 63000 + os.getpid() % 900
    yield uid
    # Invalidate the uid's user and user-session keyrings (ids first: looking one up recreates the other),
    # so the kernel drops them and nothing of this test is left in /proc/keys.
    cleared = run_python("""
        become(int(sys.argv[1]))
        keyrings = [call(NUMBERS["keyctl"], KEYCTL_GET_KEYRING_ID, spec, 0)[0] for spec in (USER_KEYRING, -5)]
        print(json.dumps([call(NUMBERS["keyctl"], KEYCTL_INVALIDATE, keyring) for keyring in keyrings]))
    """, str(uid))
    assert cleared == [[0, 0], [0, 0]]


@needs_root
def test_without_the_filter_a_later_process_of_the_same_uid_reads_the_note(sandbox_uid):
    left = run_python("""
        become(int(sys.argv[1]))
        print(json.dumps(add_note(b"note-for-the-next-one")))
    """, str(sandbox_uid))
    assert left[0] > 0, left  # a key id: the note is in the uid's user keyring, and that process has ended
    found = run_python("""
        become(int(sys.argv[1]))
        print(json.dumps(read_note(b"note-for-the-next-one")))
    """, str(sandbox_uid))
    assert found == {"payload": "the answer is 42"}  # the leak the issue reports


@needs_root
def test_with_the_filter_a_note_can_be_neither_left_nor_read(sandbox_uid):
    # An earlier submission without the filter (a machine not yet upgraded) leaves a note...
    run_python("""
        become(int(sys.argv[1]))
        print(json.dumps(add_note(b"old-note")))
    """, str(sandbox_uid))
    # ...a filtered one can neither read it nor leave one of its own...
    filtered = run_python("""
        become(int(sys.argv[1]))
        seccomp.deny_keyrings()
        print(json.dumps({"read": read_note(b"old-note"), "left": add_note(b"new-note")}))
    """, str(sandbox_uid))
    assert filtered == {"read": {"error": "EPERM"}, "left": [-1, errno.EPERM]}
    # ...so nothing of it is there for the next one.
    after = run_python("""
        become(int(sys.argv[1]))
        print(json.dumps(read_note(b"new-note")))
    """, str(sandbox_uid))
    assert after == {"error": "ENOKEY"}


# -- the container tier's network filter ---------------------------------------------------------------------

EACCES = seccomp.SECCOMP_RET_ERRNO | errno.EACCES
AF_INET, AF_INET6, AF_NETLINK, AF_PACKET = 2, 10, 16, 17
NETWORK_CASES = {
    "x86_64": [(seccomp.AUDIT_ARCH_X86_64, 41, 1, EACCES), (seccomp.AUDIT_ARCH_X86_64, 41, AF_INET, EACCES),
               (seccomp.AUDIT_ARCH_X86_64, 41, AF_INET6, EACCES), (seccomp.AUDIT_ARCH_X86_64, 41, AF_NETLINK, EACCES),
               (seccomp.AUDIT_ARCH_X86_64, 41, AF_PACKET, EACCES), (seccomp.AUDIT_ARCH_X86_64, X32 | 41, AF_INET, EACCES),
               (seccomp.AUDIT_ARCH_X86_64, 53, 1, ALLOW),  # socketpair
               (seccomp.AUDIT_ARCH_X86_64, 42, AF_INET, ALLOW), (seccomp.AUDIT_ARCH_X86_64, 0, AF_INET, ALLOW),
               (seccomp.AUDIT_ARCH_I386, 102, 1, EACCES), (seccomp.AUDIT_ARCH_I386, 359, AF_INET, EACCES),
               (seccomp.AUDIT_ARCH_I386, 41, AF_INET, ALLOW), (seccomp.AUDIT_ARCH_AARCH64, 198, 2, ALLOW)],
    "aarch64": [(seccomp.AUDIT_ARCH_AARCH64, 198, 1, EACCES), (seccomp.AUDIT_ARCH_AARCH64, 198, AF_INET, EACCES),
                (seccomp.AUDIT_ARCH_AARCH64, 199, AF_INET, ALLOW), (seccomp.AUDIT_ARCH_ARM, 281, AF_INET6, EACCES),
                (seccomp.AUDIT_ARCH_ARM, 288, 1, ALLOW)],
}


@pytest.mark.parametrize("machine", sorted(NETWORK_CASES))
def test_the_network_filter_denies_every_socket(machine):
    program = seccomp.network_program(machine)
    for arch, number, family, expected in NETWORK_CASES[machine]:
        assert run_filter(program, number=number, arch=arch, first_argument=family) == expected, \
            (machine, hex(arch), number, family)
    for index, (code, jump_true, jump_false, _, comment) in enumerate(seccomp.network_filter_instructions(machine)):
        assert comment
        if code & 0x07 == seccomp.BPF_JMP:
            assert index + 1 + max(jump_true, jump_false) < len(program) // 8


def test_with_the_network_filter_no_socket_can_be_made_but_pairs():
    native_or_skip()
    report = run_python("""
        import socket
        seccomp.deny_network()
        def attempt(family, kind=socket.SOCK_STREAM):
            try:
                socket.socket(family, kind).close()
                return "made"
            except OSError as error:
                return error.errno
        a, b = socket.socketpair()
        print(json.dumps({"inet": attempt(socket.AF_INET), "inet6": attempt(socket.AF_INET6),
                          "udp": attempt(socket.AF_INET, socket.SOCK_DGRAM), "unix": attempt(socket.AF_UNIX),
                          "pair": a.family == socket.AF_UNIX, "fork_inet": os.waitstatus_to_exitcode(os.waitpid(
                              os.fork() or os._exit(0 if attempt(socket.AF_INET) == errno.EACCES else 1), 0)[1])}))
    """)
    assert report == {"inet": errno.EACCES, "inet6": errno.EACCES, "udp": errno.EACCES, "unix": errno.EACCES,
                      "pair": True, "fork_inet": 0}
