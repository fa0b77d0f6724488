"""Sandbox supervisor: run each check in a recorder process beside the student's own process, one wall-clock
limit per check, and stream the recorder's results out.

Started by the grader as PID 1 of a private PID namespace (bwrap --as-pid-1, or a warm zygote's child). PID
1 ignores signals it has no handler for when they come from inside its namespace, so student code cannot
kill it. For a group of checks (all of a submission's, by default) it starts two processes:

* the **recorder** (``recorder.py``), which runs the version's probes: it holds the inputs, decides every
  call's arguments and writes the results (JSON and ``.npy``);
* the **executor** (``executor.py``), the only process that runs student code, in user, PID and mount
  namespaces of its own (``isolate.enter_executor_namespaces``): it cannot see, trace or signal the recorder
  or this supervisor, nor read the grader's files; the two exchange plain data over pipes.

The recorder runs one check at a time on this process's word; after each, this process kills everything
else in the namespace but the two of them (daemons, sleepers, fork bombs), and only then lets the next one
start, each with its own wall-clock limit. A check whose student process ends, hangs or crashes costs only
itself: the rest of the group goes on with a new pair. What this process sends back (``protocol`` frames)
is still only a claim for the grader, which re-checks everything.
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
MAX_FILES_PER_PROBE = 64
MAX_OUTPUT_BYTES = 64 * 1024
EXECUTOR_LOST = 75       # the recorder's exit code when the student's process ended under it
RECORDER_FAILED = 70     # the recorder's exit code for its own failure (the grader's, never the student's)
EXECUTOR_SETUP_FAILED = 71  # the student's process could not be set up (before any student code ran)
_PROCESS_NUMBERS = itertools.count(1)  # which of this submission's process pairs ran a check (its status)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def main(plan_path: str = "/sandbox/plan/plan.json") -> int:
    """Cold start: one sandbox, one submission. Imports Keras and the graders, then serves the plan."""
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
    """Once per process that forks checks: drop to the submission's uid, become undumpable, import Keras,
    the recorder, the executor and every version's graders (so neither pays an import per submission)."""
    if not _container(plan):  # the container tier has no /proc of its own to uncover, and stays root
        isolate.uncover_proc()
    _drop_privileges(plan.get("uid"))
    set_dumpable(False)
    _warm_up(plan)


def serve(plan: dict, control: int, *, startup_seconds: float) -> int:
    """Run every check of ``plan`` and stream a frame per check."""
    # PID 1 receives, from inside its namespace, exactly the signals it has a handler for, and Python
    # installs one for SIGINT: without this, os.kill(1, SIGINT) from student code ends the supervisor.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for folder in ("out", "work", "home"):
        os.makedirs(os.path.join(plan["scratch"], folder), mode=0o700, exist_ok=True)
    send(control, "_startup", {"seconds": round(startup_seconds, 3), "pid": os.getpid(), "uid": os.getuid()}, [])
    for group in probe_groups(plan["probes"], shared=os.getpid() == 1 or _container(plan)):
        pending = list(group)
        while pending:
            pending = pending[run_group(pending, plan, control):]
    return 0


def _container(plan: dict) -> bool:
    """Whether this sandbox is the container tier's (sandbox/tiers.py): no namespaces; this supervisor stays
    root and the student's process runs as ``plan["student_uid"]``."""
    return plan.get("tier") == "container"


def _student_uid(plan: dict) -> int | None:
    return int(plan["student_uid"]) if _container(plan) else None


def probe_groups(probes: list[dict], *, shared: bool) -> list[list[dict]]:
    """Consecutive probes with the same ``group`` run in one pair of processes; others (and all of them when
    the supervisor can find nothing it must clean up between probes: not PID 1 of its namespace, not the
    container tier's, whose student processes are those of one uid) run alone."""
    groups: list[list[dict]] = []
    for spec in probes:
        if shared and groups and spec.get("group") and groups[-1][-1].get("group") == spec["group"]:
            groups[-1].append(spec)
        else:
            groups.append([spec])
    return groups


def _drop_privileges(uid) -> None:
    """As root (privileged bwrap), become the submission's unprivileged uid before anything else runs."""
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # clears the permitted and effective capabilities
    isolate.drop_capabilities()  # and the inheritable ones; sets no_new_privs
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("could not drop privileges")


def set_dumpable(dumpable: bool) -> None:
    # A non-dumpable process cannot be ptraced nor have /proc/<pid>/fd or /mem opened by others of its uid.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _warm_up(plan: dict) -> None:
    """Import numpy, Keras, the recorder, the executor and the graders once, before any fork."""
    import importlib

    import numpy  # noqa: F401
    import keras  # noqa: F401
    from . import executor, recorder, seccomp  # noqa: F401
    for name in plan.get("preload", []):  # the versions' grader modules, where the probes live
        importlib.import_module(name)
    threads = int(plan.get("threads", 1))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    # Everything imported so far lives as long as the process: keep it out of the cyclic garbage
    # collector, whose passes over TensorFlow's objects would otherwise run in every forked process and
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
    """Empty the recorder's scratch space for the next probe and make its output folder; returns that folder."""
    out_root = os.path.join(plan["scratch"], "out")
    _remove_tree(out_root)
    _empty(plan["work_dir"])
    _empty(os.path.join(plan["scratch"], "home"))
    out_dir = os.path.join(out_root, spec["name"])
    os.makedirs(out_dir, mode=0o700)
    return out_dir


class Pair:
    """The recorder and the executor of one group, and the pipes between them and this process."""

    def __init__(self, plan: dict, specs: list[dict]):
        self.go_read, self.go_write = os.pipe()
        self.done_read, self.done_write = os.pipe()
        requests_read, requests_write = os.pipe()
        responses_read, responses_write = os.pipe()
        self.output_read, output_write = os.pipe()
        pid_read, pid_write = os.pipe()
        os.set_blocking(self.output_read, False)
        self.executor_outer = os.fork()  # the intermediate process of the executor's namespaces
        if self.executor_outer == 0:
            for descriptor in (self.go_read, self.go_write, self.done_read, self.done_write, requests_write,
                               responses_read, self.output_read, pid_read):
                os.close(descriptor)
            _executor_child(plan, requests_read, responses_write, output_write, pid_write)
        os.close(pid_write)
        self.executor, self.ready = _read_pid_and_ready(pid_read, timeout=60.0)
        for descriptor in (requests_read, responses_write, output_write):
            os.close(descriptor)
        self.recorder = os.fork()
        if self.recorder == 0:
            for descriptor in (self.go_write, self.done_read, self.output_read):
                os.close(descriptor)
            _recorder_child(plan, specs, self.go_read, self.done_write, requests_write, responses_read)
        for descriptor in (self.go_read, self.done_write, requests_write, responses_read):
            os.close(descriptor)
        self.number = next(_PROCESS_NUMBERS)
        self.student_root = plan.get("student_root", "")

    @property
    def keep(self) -> set[int]:
        return {pid for pid in (self.recorder, self.executor_outer, self.executor) if pid}

    def close(self) -> None:
        for descriptor in (self.go_write, self.done_read, self.output_read):
            try:
                os.close(descriptor)
            except OSError:
                pass


def run_group(specs: list[dict], plan: dict, control: int) -> int:
    """Run ``specs`` one after another in one recorder and executor pair; send a frame for each that ran.

    The recorder waits for this process's go (a line with the probe's index) before each probe and reports
    its end (``D <index> <user cpu> <system cpu>``); in between, this process kills every other process in
    the namespace and empties the recorder's scratch space. The recorder runs no student code, so its
    marker and its result are the grader's own records; a probe whose recorder ended without the marker
    is unfinished (the student's process ended under it, or the recorder failed: the status says which).

    Returns how many of ``specs`` were dealt with: all of them, or up to and including the probe during
    which a process ended, hung or left something unkillable behind; the caller runs the rest with a new
    pair.
    """
    out_dir = _fresh_scratch_for(specs[0], plan)
    pair = Pair(plan, specs)
    if not pair.ready:  # the student's process could not be set up: no check of this group ran
        try:
            for spec in specs:
                send(control, spec["name"], {"seconds": 0.0, "timed_out": False, "exit_code": None, "signal": None,
                                             "left_behind": False, "timeout_s": float(spec["timeout_s"]),
                                             "unfinished": True, "recorder_failed": True,
                                             "process": pair.number}, [])
        finally:
            pair.close()
            _kill_everything_else(pair, student_uid=_student_uid(plan))
        return len(specs)
    reader = _MarkerReader(pair.done_read)
    ended = None  # (exit code, signal) of the recorder once it has been reaped
    handled = 0
    try:
        for index, spec in enumerate(specs):
            if index:
                out_dir = _fresh_scratch_for(spec, plan)
            timeout = float(spec["timeout_s"])
            cpu_before = _cpu_seconds(pair.executor)
            started = time.perf_counter()
            try:
                os.write(pair.go_write, f"{index}\n".encode())
            except OSError:
                pass  # the recorder is gone; _await_marker sees it
            watch = _ContainerWatch(plan) if _container(plan) else None
            outcome, ended = _await_marker(pair, reader, index, started + timeout, out_dir, watch=watch)
            elapsed = time.perf_counter() - started
            status = {"seconds": round(elapsed, 3), "timed_out": outcome == "timeout", "exit_code": 0, "signal": None,
                      "left_behind": False, "timeout_s": timeout, "process": pair.number}
            if watch is not None and watch.tripped:
                status[watch.tripped] = True
            handled = index + 1
            executor_cpu = _cpu_seconds(pair.executor) - cpu_before if cpu_before is not None else None
            if outcome == "done":
                cpu = reader.cpu.get(index, (None, None))
                status.update(cpu_user_seconds=cpu[0], cpu_system_seconds=cpu[1],
                              executor_cpu_seconds=round(executor_cpu, 3) if executor_cpu is not None else None)
                status["left_behind"], clean = _kill_all_but(pair.keep, student_uid=_student_uid(plan))
                files, status["dropped_files"] = _collect(out_dir)
                send(control, spec["name"], status, files)
                if not clean or (ended is not None and index + 1 < len(specs)):
                    break  # something would not die, or the recorder left early: the rest with a new pair
                continue
            if outcome == "timeout":
                status["exit_code"] = None
            else:
                code, number = ended
                if code == EXECUTOR_LOST:  # the student's process ended under the recorder: its status is the one
                    if _protocol_violation(out_dir):  # ... or broke the protocol, alive: it ends now
                        status["protocol_violation"] = True
                        _kill_pair_member(pair.executor_outer)
                    executor_status = _reap(pair.executor_outer, wait=2.0)
                    status["exit_code"], status["signal"] = executor_status
                    status["unfinished"] = True
                else:  # the recorder itself crashed or was killed
                    status["exit_code"], status["signal"] = code, number
                    status["unfinished"] = True
                    status["recorder_failed"] = True
            status["left_behind"] = _kill_everything_else(pair, student_uid=_student_uid(plan))
            ended = ended or (None, signal.SIGKILL)
            files, status["dropped_files"] = _collect(out_dir)
            send(control, spec["name"], status, files)
            break
    finally:
        pair.close()  # its pipes, the marker pipe included
        _kill_everything_else(pair, student_uid=_student_uid(plan))
    return handled


def _read_pid_and_ready(descriptor: int, *, timeout: float) -> tuple[int | None, bool]:
    """The executor's pid (from its intermediate process), then ``ready`` from the executor itself once its
    namespaces, filters and streams are set up, before any student code runs. Anything else (the pipe closed
    early, a timeout) means the set-up failed: the grader's failure, whatever the exit code says."""
    deadline = time.monotonic() + timeout
    data = b""
    while data.count(b"\n") < 2:
        readable, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(descriptor, 64) if readable else b""
        if not chunk:
            break
        data += chunk
    os.close(descriptor)
    lines = data.split(b"\n")[:-1]  # complete lines only; the two writers may come in either order
    pids = [int(line) for line in lines if line.isdigit()]
    return (pids[0] if pids else None), b"ready" in lines


def _executor_child(plan: dict, requests: int, responses: int, output: int, pid_write: int) -> None:
    """The student's process: its own namespaces (isolate), its output to this supervisor's pipe, keyrings
    denied, then the executor's loop. Never returns."""
    code = 0
    try:
        # Nothing but its own pipes: not the stream to the grader, nor anything else this process holds.
        _close_all_but({1, 2, requests, responses, output, pid_write})
        stdin = os.open(os.devnull, os.O_RDONLY)
        if stdin != 0:
            os.dup2(stdin, 0)
            os.close(stdin)
        os.setsid()  # its own session: a killpg of the student's never reaches the recorder
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        try:
            with open(os.path.join(plan["submission"], plan["module"]), "rb") as handle:
                source = handle.read()
        except FileNotFoundError:  # no module submitted: the model file's checks still run
            source = None

        def report(pid: int) -> None:
            os.write(pid_write, f"{pid}\n".encode())
            os.close(pid_write)

        if _container(plan):
            module_path, scratch = isolate.enter_student_uid(
                uid=_student_uid(plan), root=plan["student_root"], module_name=plan["module"], module_source=source,
                report_pid=report, max_processes=int(plan.get("max_processes", 256)))
        else:
            set_dumpable(True)  # /proc/self/uid_map of a process that changed uid is root's until it is dumpable again
            scratch = plan["scratch"]
            module_path = isolate.enter_executor_namespaces(
                scratch=scratch, scratch_bytes=int(plan.get("scratch_bytes", 512 * 2**20)),
                hide=plan.get("hide", []), module_name=plan["module"], module_source=source, report_pid=report)
        from . import executor, seccomp
        seccomp.deny_keyrings()
        if _container(plan):  # no network namespace around it: no socket at all (socketpair only)
            seccomp.deny_network()
        for target in (1, 2):
            os.dup2(output, target)
        os.close(output)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        home = os.path.join(scratch, "home")
        os.environ.update(HOME=home, TMPDIR=scratch, KERAS_HOME=os.path.join(home, ".keras"),
                          MPLCONFIGDIR=os.path.join(home, ".matplotlib"))
        os.chdir(os.path.join(scratch, "work"))
        import tempfile
        tempfile.tempdir = None  # found again from TMPDIR: the student's own scratch, not the supervisor's choice
        _forget_the_grader()
        os.write(pid_write, b"ready\n")  # set up: from here on, what happens is the student's
        os.close(pid_write)
        code = executor.Executor(requests, responses, scratch=scratch, module_path=module_path,
                                 module_name=os.path.splitext(plan["module"])[0]).serve()
    except BaseException as error:  # our own failure before any student code ran: reported, then the pipe closes
        try:
            os.write(2, f"executor setup failed: {type(error).__name__}: {error}\n".encode())
        except OSError:
            pass
        code = EXECUTOR_SETUP_FAILED
    finally:
        os._exit(code)


def _close_all_but(keep: set[int]) -> None:
    for entry in os.listdir("/proc/self/fd"):
        descriptor = int(entry)
        if descriptor not in keep:
            try:
                os.close(descriptor)
            except OSError:
                pass  # the listing's own descriptor, closed already


def _forget_the_grader() -> None:
    """Drop the grader's modules (recorder, graders, pytest) from the student's interpreter: the executor never
    needs them, and the student's code should find nothing of them to call."""
    keep = ("autograder.harness.executor", "autograder.harness.values", "autograder.harness.protocol",
            "autograder.harness.seccomp", "autograder.harness", "autograder")
    for name in list(sys.modules):
        if name.startswith(("solutions", "pytest", "_pytest", "autograder")) and name not in keep:
            del sys.modules[name]
    gc.collect()


def _recorder_child(plan: dict, specs: list[dict], go_read: int, done_write: int, requests: int,
                    responses: int) -> None:
    """The recorder: runs one probe per go line, writes its result, reports its end. Never returns."""
    code = 0
    try:
        _close_all_but({0, 1, 2, go_read, done_write, requests, responses})
        os.setsid()
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # Keras's own chatter in the recorder is nobody's feedback
        os.dup2(devnull, 2)
        os.close(devnull)
        if _container(plan):  # root without a namespace around it: the recorder keeps no capability
            isolate.die_with_parent()
            isolate.drop_capabilities()
        from . import recorder
        channel = recorder.Channel(requests, responses)
        for index, spec in enumerate(specs):
            if _read_line(go_read) != str(index).encode():
                break  # the supervisor is done with this pair
            out_dir = os.path.join(plan["scratch"], "out", spec["name"])
            os.chdir(plan["work_dir"])
            before = os.times()
            try:
                finished = recorder.run(spec, plan, out_dir, channel)
            except Exception as error:  # this harness failed on this submission: the grader's failure
                _write_json(os.path.join(out_dir, "result.json"),
                            {"probe": spec["name"], "record": {}, "arrays": [], "completed": True,
                             "errors": [recorder.harness_failure(error, spec["name"])]})
                finished = True
            if not finished:
                code = EXECUTOR_LOST
                break
            after = os.times()
            os.write(done_write, f"D {index} {after.user - before.user:.3f} {after.system - before.system:.3f}\n".encode())
    except BaseException:  # our own failure: the grader sees a probe without its end marker
        code = RECORDER_FAILED
    finally:
        os._exit(code)


def _write_json(path: str, payload: dict) -> None:
    with open(path, "w") as handle:
        json.dump(payload, handle)


class _MarkerReader:
    """Reads the recorder's end markers with a bounded buffer; anything malformed is ignored."""

    def __init__(self, descriptor: int):
        self.descriptor, self.buffer, self.open = descriptor, b"", True
        self.done: set[int] = set()
        self.cpu: dict[int, tuple] = {}

    def poll(self, wait: float, extra=()) -> list[int]:
        """Wait up to ``wait`` for a marker or for one of ``extra`` descriptors; returns the extras readable."""
        watched = ([self.descriptor] if self.open else []) + list(extra)
        if not watched:
            time.sleep(wait)
            return []
        readable, _, _ = select.select(watched, [], [], wait)
        if self.open and self.descriptor in readable:
            data = os.read(self.descriptor, 4096)
            if not data:
                self.open = False
            else:
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
        return [descriptor for descriptor in readable if descriptor != self.descriptor]

    def drain(self) -> None:
        """Read what is already in the pipe (a bounded amount), without waiting."""
        for _ in range(64):
            before = (self.open, self.buffer, len(self.done))
            self.poll(0)
            if not self.open or (self.open, self.buffer, len(self.done)) == before:
                return


class _ContainerWatch:
    """The container tier's bounds where the namespace tier has a size-capped tmpfs and a memory cgroup: the disk
    taken by the student's scratch folder and by what its uid owns in the world-writable folders, and the private
    memory of its uid's processes, read at most every 0.25 s. Over ``scratch_bytes`` or ``memory_bytes`` (when no
    cgroup bounds the memory) the student's processes are killed; ``tripped`` says which limit: "scratch_full"
    or "memory_limit"."""

    def __init__(self, plan: dict):
        self.uid, self.root = _student_uid(plan), plan["student_root"]
        self.scratch_limit = int(plan.get("scratch_bytes", 512 * 2**20))
        self.memory_limit = int(plan.get("memory_bytes") or 0)
        self.next, self.tripped = 0.0, None

    def over(self) -> bool:
        now = time.perf_counter()
        if self.tripped or now < self.next:
            return bool(self.tripped)
        self.next = now + 0.25
        if isolate.disk_usage([self.root, *isolate.owned_entries(self.uid)]) > self.scratch_limit:
            self.tripped = "scratch_full"
        elif self.memory_limit and isolate.anonymous_memory_of(self.uid) > self.memory_limit:
            self.tripped = "memory_limit"
        return bool(self.tripped)


def _await_marker(pair: Pair, reader: _MarkerReader, index: int, deadline: float, out_dir: str, *,
                  watch: _ContainerWatch | None = None):
    """Wait until probe ``index`` reports its end, the recorder ends, or the deadline passes; meanwhile copy
    what the student's code prints into the probe's ``output.txt`` (capped). In the container tier, ``watch``
    ends the student's process once it has written more than its scratch space.

    Returns ("done" | "ended" | "timeout", the recorder's (exit code, signal) if it was reaped, else None).
    """
    output = _Output(os.path.join(out_dir, "output.txt"))
    try:
        while True:
            if reader.poll(0.01, extra=[pair.output_read] if output.open else []):
                output.take(pair.output_read)
            if index in reader.done:
                output.take(pair.output_read)
                return "done", None
            try:
                reaped, status = os.waitpid(pair.recorder, os.WNOHANG)
            except ChildProcessError:
                reaped, status = pair.recorder, 0
            if reaped == pair.recorder:
                ended = (None, os.WTERMSIG(status)) if os.WIFSIGNALED(status) else (os.WEXITSTATUS(status), None)
                reader.drain()  # a marker written just before the end still counts
                output.take(pair.output_read)
                return ("done" if index in reader.done else "ended"), ended
            if time.perf_counter() > deadline:
                output.take(pair.output_read)
                return "timeout", None
            if watch is not None and watch.over():
                _kill_pair_member(pair.executor_outer)
                _kill_pair_member(pair.executor)
                isolate.kill_uid(watch.uid)  # and whatever it forked
    finally:
        output.close()


class _Output:
    """The student's prints of one probe, copied from the executor's pipe, capped at ``MAX_OUTPUT_BYTES``."""

    def __init__(self, path: str):
        self.handle = open(path, "ab")
        self.written = 0
        self.open = True

    def take(self, descriptor: int) -> None:
        for _ in range(64):
            try:
                data = os.read(descriptor, 65536)
            except BlockingIOError:
                return
            except OSError:
                self.open = False
                return
            if not data:
                self.open = False
                return
            room = MAX_OUTPUT_BYTES - self.written
            if room > 0:
                self.handle.write(data[:room])
                if len(data) > room:
                    self.handle.write(b"\n[... output truncated ...]\n")
            self.written += len(data)

    def close(self) -> None:
        self.handle.close()


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process of this namespace (0 once it is gone)."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def _protocol_violation(out_dir: str) -> bool:
    """Whether the recorder left word that the student's process wrote something that is not an answer."""
    path = os.path.join(out_dir, "lost.json")
    try:
        with open(path) as handle:
            found = json.load(handle).get("protocol_violation") is True
    except (OSError, ValueError, AttributeError):
        return False
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return found


def _kill_pair_member(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def _reap(pid: int, *, wait: float) -> tuple:
    """(exit code, signal) of a child, waiting up to ``wait`` seconds for it to end."""
    deadline = time.perf_counter() + wait
    while True:
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None, None
        if reaped == pid:
            return (None, os.WTERMSIG(status)) if os.WIFSIGNALED(status) else (os.WEXITSTATUS(status), None)
        if time.perf_counter() > deadline:
            return None, None
        time.sleep(0.01)


def _kill_all_but(keep: set[int], rounds: int = 100, *, student_uid: int | None = None):
    """Kill every process of the namespace but PID 1 and ``keep``, until none is left; in the container tier,
    every process of ``student_uid`` but ``keep``.

    Returns (whether anything was found, whether the namespace is clean now). Only PID 1 of a private
    namespace sweeps; elsewhere (``--unsafe-no-sandbox``) /proc is the host's, every probe runs alone, and
    its processes are killed when it ends."""
    if student_uid is not None:
        def others() -> list[int]:
            return isolate.processes_of(student_uid, skip=keep)
    elif os.getpid() == 1:
        def others() -> list[int]:
            return _namespace_processes(keep)
    else:
        return False, True
    found = False
    for _ in range(rounds):
        left = others()
        if not left:
            return found, True
        found = True
        for other in left:
            try:
                os.kill(other, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.001)
    return found, False


def _namespace_processes(keep: set[int]) -> list[int]:
    """The live processes of this PID namespace but PID 1 and ``keep``; zombies of ours are reaped on the way."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == 1 or int(entry) in keep:
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
        found.append(int(entry))
    return found


def _kill_everything_else(pair: Pair, *, student_uid: int | None = None) -> bool:
    """Kill the pair and everything it started; as PID 1 of the namespace, kill every other process in it; in
    the container tier, every process of the student's uid."""
    left_behind = False
    for pid in pair.keep:
        _kill_pair_member(pid)
    if student_uid is not None:  # the container tier: the uid's processes, then its files
        left_behind = bool(isolate.processes_of(student_uid, skip=pair.keep))
        isolate.kill_uid(student_uid)
        isolate.remove_paths(isolate.owned_entries(student_uid, folders=[pair.student_root, *isolate.WORLD_WRITABLE]))
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
        if reaped not in pair.keep:
            left_behind = True
    return left_behind


def _read_line(descriptor: int, limit: int = 64) -> bytes:
    line = b""
    while len(line) < limit:
        char = os.read(descriptor, 1)
        if not char or char == b"\n":
            break
        line += char
    return line


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
                    data = handle.read(MAX_OUTPUT_BYTES + 1024)
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


def _empty(folder: str) -> None:
    """Remove everything in ``folder``; make it again if needed."""
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    for name in names:
        _remove_tree(os.path.join(folder, name))
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
