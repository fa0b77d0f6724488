"""Sandbox supervisor: run each probe in a forked process with a wall-clock limit, stream results out.

Started by the grader as PID 1 of a private PID namespace (bwrap --as-pid-1). PID 1 ignores signals it
has no handler for when they come from inside its namespace, so student code cannot kill it; after
every probe it kills every other process in the namespace, so nothing a probe left behind (daemons,
sleepers, fork bombs) reaches the next probe. It never imports the student's module itself: each
probe's child does. What it sends back (``protocol`` frames on its stdout) is still only a claim.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import json
import os
import signal
import stat
import sys
import time

from . import isolate, protocol

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
MAX_FILES_PER_PROBE = 64
MAX_OUTPUT_BYTES = 64 * 1024


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
    for spec in plan["probes"]:
        status, files = run_probe(spec, plan, control)
        send(control, spec["name"], status, files)
    return 0


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


def run_probe(spec: dict, plan: dict, control: int):
    name, timeout = spec["name"], float(spec["timeout_s"])
    out_root = os.path.join(plan["scratch"], "out")
    _remove_tree(out_root)  # whatever an earlier probe left there, including symlinks
    # Nothing an earlier probe left in the scratch space may cost this one (a full disk, planted files):
    # empty the work folder and HOME, keeping only what save_model's probe hands to load_model's.
    keep = HANDOFF_FILES if name == "load_model" else ()
    for folder in (plan["work_dir"], os.path.join(plan["scratch"], "home")):
        _empty(folder, keep=keep)
    out_dir = os.path.join(out_root, name)
    os.makedirs(out_dir, mode=0o700)
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the probe's child: this is where student code runs
        _child(spec, plan, control, out_dir)
    before = os.times()
    exit_code, signal_number, timed_out = _wait(pid, started + timeout)
    elapsed = time.perf_counter() - started
    left_behind = _kill_everything_else(pid)
    after = os.times()  # the probe's whole process tree, reaped above
    status = {"seconds": round(elapsed, 3), "timed_out": timed_out, "exit_code": exit_code,
              "signal": signal_number, "left_behind": left_behind, "timeout_s": timeout,
              "cpu_user_seconds": round(after.children_user - before.children_user, 3),
              "cpu_system_seconds": round(after.children_system - before.children_system, 3)}
    files, dropped = _collect(out_dir)
    status["dropped_files"] = dropped
    return status, files


def _child(spec: dict, plan: dict, control: int, out_dir: str) -> None:
    code = 0
    try:
        os.close(control)
        os.setsid()
        output = os.open(os.path.join(out_dir, "output.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(output, 1)
        os.dup2(output, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        os.chdir(plan["work_dir"])
        from . import probes
        probes.run(spec["name"], spec.get("params", {}), plan["submission"], plan["inputs"], out_dir)
    except BaseException:  # our own failure: the grader sees a probe without result.json
        code = 70
    finally:
        os._exit(code)


def _wait(pid: int, deadline: float):
    """Wait for the probe's child until the deadline; reap any other child that exits meanwhile."""
    while True:
        try:
            reaped, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return None, None, False
        if reaped == pid:
            if os.WIFSIGNALED(status):
                return None, os.WTERMSIG(status), False
            return os.WEXITSTATUS(status), None, False
        if reaped == 0:
            if time.perf_counter() > deadline:
                return None, None, True
            time.sleep(0.01)


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
