"""Sandbox supervisor: run the probes in forked processes with a wall-clock limit each, stream results out.

Started by the grader as PID 1 of a private PID namespace (bwrap --as-pid-1). PID 1 ignores signals it
has no handler for when they come from inside its namespace, so student code cannot kill it; after
every probe it kills every other process in the namespace, so nothing a probe left behind (daemons,
sleepers, fork bombs) reaches the next probe. It never imports the student's module itself: each
probe's child does. What it sends back (``protocol`` frames on its stdout) is still only a claim.

Consecutive probes of one ``group`` (all of a submission's but load_model) share one forked process; a
probe without a group gets one of its own, driven the same way (``run_group``). The process runs one
probe at a time on the supervisor's word: after each one the supervisor kills every other process in
the namespace, empties the scratch folders and only then lets the next one start, each with its own
wall-clock limit. A probe
that hangs, crashes or ends the process costs only itself: the rest of its group goes on in a new
process. Sharing saves TensorFlow's per-process start (its context, the first run of every kernel),
about 1.2 s of CPU per submission; what one function of a submission changes in the interpreter can
reach the next function of the same submission, never another submission.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import itertools
import json
import os
import select
import signal
import stat
import sys
import time

from . import isolate, protocol

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
MAX_FILES_PER_PROBE = 64
MAX_OUTPUT_BYTES = 64 * 1024
_PROCESS_NUMBERS = itertools.count(1)  # which of this submission's probe processes ran a probe (its status)


def main(plan_path: str = "/sandbox/plan/plan.json") -> int:
    """Cold start: one sandbox, one submission. Imports Keras, then serves the plan."""
    plan = load_plan(plan_path)
    control = take_stdout()
    started = time.perf_counter()
    prepare(plan)
    return serve(plan, control, startup_seconds=time.perf_counter() - started)


def load_plan(path: str) -> dict:
    with open(path) as handle:
        return json.load(handle)


def take_stdout() -> int:
    """Keep the stream to the grader on a private descriptor; fd 1 then points nowhere, so stray
    prints (ours or Keras's) can never corrupt the stream."""
    control = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return control


def prepare(plan: dict) -> None:
    """Once per process that forks probes: drop to the slot's uid, become undumpable, import Keras."""
    _drop_privileges(plan.get("uid"))
    set_dumpable(False)
    _warm_up(plan)


def serve(plan: dict, control: int, *, startup_seconds: float) -> int:
    """Run every probe of ``plan``, one forked child each, and stream a frame per probe."""
    # PID 1 receives, from inside its namespace, exactly the signals it has a handler for, and Python
    # installs one for SIGINT: without this, os.kill(1, SIGINT) from student code ends the supervisor.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for folder in ("out", "work", "home"):
        os.makedirs(os.path.join(plan["scratch"], folder), mode=0o700, exist_ok=True)
    send(control, "_startup", {"seconds": round(startup_seconds, 3), "pid": os.getpid(), "uid": os.getuid()}, [])
    for group in probe_groups(plan["probes"], shared=os.getpid() == 1):
        pending = list(group)
        while pending:
            pending = pending[run_group(pending, plan, control):]
    return 0


def probe_groups(probes: list[dict], *, shared: bool) -> list[list[dict]]:
    """Consecutive probes with the same ``group`` run in one process; others (and all of them when the
    supervisor is not PID 1 of its namespace, so cannot clean up between probes) run alone."""
    groups: list[list[dict]] = []
    for spec in probes:
        if shared and groups and spec.get("group") and groups[-1][-1].get("group") == spec["group"]:
            groups[-1].append(spec)
        else:
            groups.append([spec])
    return groups


def _drop_privileges(uid) -> None:
    """As root (privileged bwrap), become the slot's unprivileged uid before anything else runs."""
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # clears the permitted and effective capabilities
    isolate.drop_capabilities()  # and the inheritable ones; sets no_new_privs
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("could not drop privileges")


def set_dumpable(dumpable: bool) -> None:
    # A non-dumpable process cannot be ptraced nor have /proc/<pid>/fd or /mem opened by its children,
    # so student code cannot reach the grader stream or this process's memory.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _warm_up(plan: dict) -> None:
    """Import numpy and Keras once, before any fork, so each probe starts warm."""
    import numpy  # noqa: F401
    import keras  # noqa: F401
    from . import probes  # noqa: F401
    threads = int(plan.get("threads", 1))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    # Everything imported so far lives as long as the process: keep it out of the cyclic garbage
    # collector, whose passes over TensorFlow's objects would otherwise run in every forked probe and
    # touch (copy) the pages the fork shares.
    gc.collect()
    gc.freeze()


def send(control: int, probe: str, status: dict, files: list) -> None:
    data = protocol.encode_frame(probe, status, files)
    view = memoryview(data)
    while view:
        written = os.write(control, view)
        view = view[written:]


def _fresh_scratch_for(spec: dict, plan: dict) -> str:
    """Empty the scratch space for the next probe and make its output folder; returns that folder."""
    out_root = os.path.join(plan["scratch"], "out")
    _remove_tree(out_root)  # whatever an earlier probe left there, including symlinks
    # Nothing an earlier probe left in the scratch space may cost this one (a full disk, planted files):
    # empty the work folder and HOME, keeping only the grader's own model file that save_model's probe
    # hands to load_model's (which runs later, in another process).
    _empty(plan["work_dir"], keep=HANDOFF_FILES)
    _empty(os.path.join(plan["scratch"], "home"))
    out_dir = os.path.join(out_root, spec["name"])
    os.makedirs(out_dir, mode=0o700)
    return out_dir


def run_group(specs: list[dict], plan: dict, control: int) -> int:
    """Run ``specs`` (one probe, or a group) one after another in one forked process; send a frame for each
    that ran.

    The child waits for the supervisor's go (a line with the probe's index) before each probe and
    reports its end (``D <index> <user cpu> <system cpu>``); in between, the supervisor kills every other
    process in the namespace and empties the scratch space, as it does between separate processes. The
    end marker is written by harness code in the student's own process, so it is a claim, like the
    probe's ``result.json``: without it, a probe whose process ended (even with exit code 0) is reported
    unfinished, and its result does not count.

    Returns how many of ``specs`` were dealt with: all of them, or up to and including the probe during
    which the process ended, hung or left something unkillable behind; the caller runs the rest in a
    new process.
    """
    go_read, go_write = os.pipe()
    done_read, done_write = os.pipe()
    out_dir = _fresh_scratch_for(specs[0], plan)
    number = next(_PROCESS_NUMBERS)
    pid = os.fork()
    if pid == 0:  # the probes' child: this is where student code runs
        os.close(go_write)
        os.close(done_read)
        _probe_child(specs, plan, control, go_read, done_write)
    os.close(go_read)
    os.close(done_write)
    reader = _MarkerReader(done_read)
    ended = None  # (exit code, signal) once the child has been reaped
    handled = 0
    try:
        for index, spec in enumerate(specs):
            if index:
                out_dir = _fresh_scratch_for(spec, plan)
            timeout = float(spec["timeout_s"])
            started = time.perf_counter()
            try:
                os.write(go_write, f"{index}\n".encode())
            except OSError:
                pass  # the child is gone; _await_marker sees it
            outcome, ended = _await_marker(pid, reader, index, started + timeout)
            elapsed = time.perf_counter() - started
            status = {"seconds": round(elapsed, 3), "timed_out": outcome == "timeout", "exit_code": 0, "signal": None,
                      "left_behind": False, "timeout_s": timeout, "process": number}
            handled = index + 1
            if outcome == "done":
                cpu = reader.cpu.get(index, (None, None))
                status.update(cpu_user_seconds=cpu[0], cpu_system_seconds=cpu[1])
                status["left_behind"], clean = _kill_all_but(pid)
                files, status["dropped_files"] = _collect(out_dir)
                send(control, spec["name"], status, files)
                if not clean or (ended is not None and index + 1 < len(specs)):
                    break  # something would not die, or the child left early: the rest in a new process
                continue
            if outcome == "timeout":
                status["exit_code"] = None
            else:
                status["exit_code"], status["signal"] = ended
                status["unfinished"] = True  # ended without the harness's end marker
            status["left_behind"] = _kill_everything_else(pid)
            ended = ended or (None, signal.SIGKILL)
            files, status["dropped_files"] = _collect(out_dir)
            send(control, spec["name"], status, files)
            break
    finally:
        os.close(go_write)  # the child reads end-of-file and exits
        reader.close()
        if ended is None:
            _kill_everything_else(pid)
    return handled


class _MarkerReader:
    """Reads the child's end markers with a bounded buffer; anything malformed is ignored."""

    def __init__(self, descriptor: int):
        self.descriptor, self.buffer, self.open = descriptor, b"", True
        self.done: set[int] = set()
        self.cpu: dict[int, tuple] = {}

    def poll(self, wait: float) -> None:
        if not self.open:
            time.sleep(wait)
            return
        readable, _, _ = select.select([self.descriptor], [], [], wait)
        if not readable:
            return
        data = os.read(self.descriptor, 4096)
        if not data:
            self.open = False
            return
        self.buffer = (self.buffer + data)[-4096:]
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            parts = line.split()
            try:
                if len(parts) == 4 and parts[0] == b"D":
                    index = int(parts[1])
                    self.done.add(index)
                    self.cpu[index] = (round(float(parts[2]), 3), round(float(parts[3]), 3))
            except ValueError:
                continue

    def drain(self) -> None:
        """Read what is already in the pipe (a bounded amount), without waiting."""
        for _ in range(64):
            before = (self.open, self.buffer, len(self.done))
            self.poll(0)
            if not self.open or (self.open, self.buffer, len(self.done)) == before:
                return

    def close(self) -> None:
        os.close(self.descriptor)


def _await_marker(pid: int, reader: _MarkerReader, index: int, deadline: float):
    """Wait until probe ``index`` reports its end, the child ends, or the deadline passes.

    Returns ("done" | "ended" | "timeout", the child's (exit code, signal) if it was reaped, else None).
    """
    while True:
        reader.poll(0.01)
        if index in reader.done:
            return "done", None
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            reaped, status = pid, 0
        if reaped == pid:
            ended = (None, os.WTERMSIG(status)) if os.WIFSIGNALED(status) else (os.WEXITSTATUS(status), None)
            reader.drain()  # a marker written just before the end still counts
            return ("done" if index in reader.done else "ended"), ended
        if time.perf_counter() > deadline:
            return "timeout", None


def _kill_all_but(keep: int, rounds: int = 100):
    """Kill every process of the namespace but PID 1 and ``keep``, until none is left.

    Returns (whether anything was found, whether the namespace is clean now). Only PID 1 of a private
    namespace sweeps; elsewhere (``--unsafe-no-sandbox``) /proc is the host's, every probe runs alone, and
    its process group is killed when it ends."""
    if os.getpid() != 1:
        return False, True
    found = False
    for _ in range(rounds):
        others = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in (1, keep):
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] == b"Z":  # a zombie: reap it if it is ours, its parent's death reaps it otherwise
                if fields[1] == b"1":
                    try:
                        os.waitpid(int(entry), os.WNOHANG)
                    except ChildProcessError:
                        pass
                continue
            others.append(int(entry))
        if not others:
            return found, True
        found = True
        for other in others:
            try:
                os.kill(other, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.001)
    return found, False


def _probe_child(specs: list[dict], plan: dict, control: int, go_read: int, done_write: int) -> None:
    code = 0
    try:
        os.close(control)
        os.setsid()
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        from . import probes
        for index, spec in enumerate(specs):
            if _read_line(go_read) != str(index).encode():
                break  # the supervisor is done with this process
            out_dir = os.path.join(plan["scratch"], "out", spec["name"])
            _redirect_output(out_dir)
            os.chdir(plan["work_dir"])
            if index:
                probes.reset_interpreter_state()
            before = os.times()
            probes.run(spec["name"], spec.get("params", {}), plan["submission"], plan["inputs"], out_dir,
                       plan["module"], plan["model"])
            after = os.times()
            os.write(done_write, f"D {index} {after.user - before.user:.3f} {after.system - before.system:.3f}\n".encode())
    except BaseException:  # our own failure: the grader sees a probe without its end marker
        code = 70
    finally:
        os._exit(code)


def _read_line(descriptor: int, limit: int = 64) -> bytes:
    line = b""
    while len(line) < limit:
        char = os.read(descriptor, 1)
        if not char or char == b"\n":
            break
        line += char
    return line


def _redirect_output(out_dir: str) -> None:
    """Point fds 1 and 2 (and sys.stdout/stderr) at the probe's output.txt."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    output = os.open(os.path.join(out_dir, "output.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def _kill_everything_else(pid: int) -> bool:
    """Kill the probe's process tree; as PID 1 of the namespace, kill every other process in it."""
    left_behind = False
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    if os.getpid() == 1:  # only inside a private PID namespace: kill(-1) would hit the host otherwise
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while True:
        try:
            reaped, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except OSError as error:
            if error.errno != errno.EINTR:
                break
            continue
        if reaped != pid:
            left_behind = True
    return left_behind


def _collect(out_dir: str):
    """Read the probe's regular files (no symlinks), with caps; remove them so the next probe starts clean."""
    files, dropped = [], []
    try:
        names = sorted(os.listdir(out_dir))
    except OSError:
        return files, ["<unreadable output folder>"]
    for name in names:
        path = os.path.join(out_dir, name)
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or not protocol.FILE_NAME.match(name) \
                    or len(files) >= MAX_FILES_PER_PROBE:
                dropped.append(name[:80])
                continue
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(descriptor, "rb") as handle:
                if name == "output.txt":
                    data = handle.read(MAX_OUTPUT_BYTES + 1)
                    if len(data) > MAX_OUTPUT_BYTES:
                        data = data[:MAX_OUTPUT_BYTES] + b"\n[... output truncated ...]\n"
                elif info.st_size > PROBE_FILE_CAP:
                    dropped.append(name[:80])
                    continue
                else:
                    data = handle.read(PROBE_FILE_CAP + 1)[:PROBE_FILE_CAP]
            files.append((name, data))
        except OSError:
            dropped.append(name[:80])
    _remove_tree(out_dir)
    return files, dropped


PROBE_FILE_CAP = 48 * 1024 * 1024
HANDOFF_FILES = ("saved_by_grader.keras",)


def _empty(folder: str, *, keep=()) -> None:
    """Remove everything in ``folder`` but the regular files named in ``keep``; make it again if needed."""
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    for name in names:
        path = os.path.join(folder, name)
        if name in keep and os.path.isfile(path) and not os.path.islink(path):
            continue
        for root, dirs, _ in os.walk(path):  # a student may have taken away our write permission
            for entry in dirs:
                try:
                    os.chmod(os.path.join(root, entry), 0o700)
                except OSError:
                    pass
        try:
            os.chmod(path, 0o700) if os.path.isdir(path) and not os.path.islink(path) else None
        except OSError:
            pass
        _remove_tree(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)


def _remove_tree(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
        return
    for root, dirs, names in os.walk(path, topdown=False):
        for name in names:
            try:
                os.unlink(os.path.join(root, name))
            except OSError:
                pass
        for name in dirs:
            full = os.path.join(root, name)
            try:
                if os.path.islink(full):
                    os.unlink(full)
                else:
                    os.rmdir(full)
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
