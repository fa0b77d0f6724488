"""Warm zygote: import Keras once per worker slot, then fork an isolated process per submission.

The grader starts one zygote per slot inside a bubblewrap sandbox that holds no submission. For each
submission it stages the files into the slot's read-only inbox and writes one line on the zygote's
stdin; the zygote forks, the child enters fresh namespaces of its own (`isolate.py`: user, mount,
PID, network, IPC, UTS, a new /tmp, no capabilities, no nested user namespaces) and serves the plan
exactly as a cold sandbox would; the zygote then reports ``_done``. Student code never runs in the
zygote, cannot see it (other PID namespace), and nothing it starts survives its submission.
"""

from __future__ import annotations

import os
import sys
import time

from . import isolate, main as supervisor


def run(worker_path: str = "/sandbox/config/worker.json") -> int:
    worker = supervisor.load_plan(worker_path)
    control = supervisor.take_stdout()
    started = time.perf_counter()
    supervisor.prepare({**worker, "uid": None})  # as root, the zygote keeps its rights; each child drops them
    supervisor.send(control, "_ready", {"seconds": round(time.perf_counter() - started, 3)}, [])
    for line in sys.stdin:
        plan_path = line.strip()
        if not plan_path:
            continue
        tick = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _serve_isolated(worker, plan_path, control, tick)
        _, status = os.waitpid(pid, 0)
        supervisor.send(control, "_done", {"exit_code": os.waitstatus_to_exitcode(status)}, [])
    return 0


def _serve_isolated(worker: dict, plan_path: str, control: int, tick: float) -> None:
    code = 0
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # the zygote's command channel is not the submission's to read
        plan = supervisor.load_plan(plan_path)
        # The submission's own cgroup, joined while still uid 0 (the slot's folders are bound in for this):
        # everything this child starts is counted, limited and shares the CPU there, and ends with it.
        joined = _join_cgroup(plan.get("cgroup_procs") or [])
        if plan.get("tier") == "container":  # no namespaces: the supervisor stays root, its student runs as a uid
            isolate.die_with_parent()
            os.makedirs(plan["scratch"], mode=0o700, exist_ok=True)
            os.chdir(plan["scratch"])
        else:
            supervisor.set_dumpable(True)  # needed to write our own uid_map
            isolate.enter_private_namespaces(scratch=worker["scratch"], scratch_bytes=int(worker["scratch_bytes"]),
                                             uid=worker.get("uid"), new_cgroup_namespace=joined)
            supervisor.set_dumpable(False)
        code = supervisor.serve(plan, control, startup_seconds=time.perf_counter() - tick)
    except BaseException as error:  # ours, not the student's: no student code has run yet
        try:
            os.write(2, f"zygote child failed: {type(error).__name__}: {error}\n".encode())
        except OSError:
            pass
        code = 71
    finally:
        os._exit(code)


def _join_cgroup(procs_files: list[str]) -> bool:
    for path in procs_files:
        with open(path, "w") as handle:  # an error here is ours: reported, no student code has run
            handle.write(str(os.getpid()))
    return bool(procs_files)


if __name__ == "__main__":
    sys.exit(run(*sys.argv[1:]))
