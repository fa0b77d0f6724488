"""Warm workers: one zygote sandbox per slot that imports Keras once and serves many submissions.

Each job stages the submission into the slot's inbox (bound read-only into the worker), writes the
plan there, and asks the zygote to serve it in a freshly isolated child (``harness/zygote.py``). The
frames come back on the worker's stdout like a cold sandbox's, ending with ``_done``. A worker that
misbehaves (a timeout, a broken stream, a crash) is killed whole and replaced by a fresh one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from ..harness import protocol
from ..settings import Settings
from . import isolation, tiers

INBOX = "/sandbox/inbox"
WORKER_FILE = "worker.json"
CGROUP_ROOT = "/sandbox/cgroup"  # the slot's cgroup folders, for the zygote's children to join theirs


class WorkerUnavailable(RuntimeError):
    """The warm worker could not start; the caller falls back to a cold sandbox."""


class WarmWorker:
    """A zygote in its own sandbox, for one slot; not thread-safe (one job at a time per slot)."""

    def __init__(self, *, settings: Settings, slot: int, inputs_dirs: dict[str, Path], root: Path):
        self.settings, self.slot, self.inputs_dirs = settings, slot, inputs_dirs
        self.home = root / f"slot-{slot}"
        self.inbox = self.home / "inbox"
        self.process: subprocess.Popen | None = None
        self.ready_seconds: float | None = None
        self.groups = isolation.submission_groups(settings)
        self.zygote_group = None
        # The container tier (tiers.py) starts the same zygote without bubblewrap, with the grader's own paths.
        self.container = tiers.select(settings).container
        self.job_scratch = self.home / "job"  # the container tier's supervisor scratch, emptied per job

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the worker's sandbox without waiting for Keras to load.

        Call it from a thread that outlives the worker: bwrap's --die-with-parent follows the thread
        that started it (PR_SET_PDEATHSIG), not the process.
        """
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        self.inbox.mkdir(parents=True)
        for folder in (self.home, self.inbox):
            os.chmod(folder, 0o755)
        worker = {"uid": isolation.slot_uid(self.settings, self.slot), "threads": self.settings.resolved_threads(),
                  "scratch": isolation.INSIDE_SCRATCH, "scratch_bytes": self.settings.scratch_mb * 2**20,
                  "preload": isolation.preload_modules()}
        if self.container:  # the zygote and each job's supervisor stay root; only the student's process changes uid
            worker.update(uid=None, tier="container", scratch=str(self.home / "zygote"))
            (self.home / "zygote" / "home").mkdir(parents=True)
        config = self.home / "config"
        config.mkdir()
        (config / WORKER_FILE).write_text(json.dumps(worker))
        os.chmod(config, 0o755)
        os.chmod(config / WORKER_FILE, 0o644)
        # Each version's public inputs at /sandbox/inputs/<version> (a mixed class shares the workers).
        binds = [(folder, f"{isolation.INSIDE_INPUTS}/{version}") for version, folder in sorted(self.inputs_dirs.items())]
        extra, self.zygote_group = [], None
        if self.groups.available:
            self.zygote_group = self.groups.submission(self.slot, name=f"zygote-{self.slot}-{time.monotonic_ns()}")
            extra = self.groups.slot(self.slot).bind_args(CGROUP_ROOT)
        if self.container:
            argv = isolation.container_command(self.settings, zygote=True, cgroup=self.zygote_group)
            env = isolation.container_environment(self.settings, self.home / "zygote",
                                                  AUTOGRADER_WORKER=str(config / WORKER_FILE))
        else:
            argv = isolation.command(self.settings, slot=self.slot, zygote=True, cgroup=self.zygote_group,
                                     extra_mounts=extra, binds=[*binds, (self.inbox, INBOX), (config, "/sandbox/config")])
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.stderr = open(self.home / "stderr.txt", "wb")
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        env=env, start_new_session=True, close_fds=True)

    def wait_ready(self) -> None:
        frame = self._read_with_timeout(self.settings.startup_timeout_s)
        if frame is None or frame[0]["probe"] != "_ready":
            self.stop()
            raise WorkerUnavailable(f"the warm worker of slot {self.slot} did not start: {self._stderr_tail()}")
        self.ready_seconds = frame[0]["status"].get("seconds")

    def stop(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self.stderr.close()
            self.process = None
        if self.zygote_group is not None:
            try:
                self.zygote_group.remove()
            except Exception:  # noqa: BLE001  left for clean_stale
                pass
            self.zygote_group = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- one submission ---------------------------------------------------------------------------
    def serve(self, plan: dict, submission_dir: Path, *, budget: float, on_frame, cgroup=None) -> str:
        """Run ``plan`` on the staged submission; call ``on_frame(header, files)`` per probe frame.

        ``cgroup``: the submission's group (``isolation.SubmissionGroups``), which the zygote's child joins
        before it becomes the sandbox uid. ``on_frame`` may return False to end the job at once (a stream
        over the cap or a forged frame): the worker is then killed.

        Returns ``"done"``, ``"timeout"``, ``"stopped"`` or ``"broken"`` (the worker was killed and must
        restart).
        """
        if not self.alive:
            self.start()
        if cgroup is not None:
            inside = None if self.container else CGROUP_ROOT
            plan = {**plan, "cgroup_procs": [str(path) for path in cgroup.procs_files(inside_root=inside)]}
        for item in self.inbox.iterdir():
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        staged = self.inbox / "submission"
        staged.mkdir(mode=0o755)
        for item in submission_dir.iterdir():  # file by file: a full disk raises a plain OSError (ENOSPC)
            shutil.copyfile(item, staged / item.name)
            os.chmod(staged / item.name, 0o644)
        os.chmod(staged, 0o755)
        inbox = str(self.inbox) if self.container else INBOX  # as the zygote sees it
        if self.container:
            shutil.rmtree(self.job_scratch, ignore_errors=True)
        plan = {**plan, "submission": f"{inbox}/submission"}
        (self.inbox / "plan.json").write_text(json.dumps(plan))
        os.chmod(self.inbox / "plan.json", 0o644)
        try:
            self.process.stdin.write(f"{inbox}/plan.json\n".encode())
            self.process.stdin.flush()
            deadline = time.monotonic() + budget
            while True:
                frame = self._read_with_timeout(max(0.0, deadline - time.monotonic()))
                if frame is None:
                    outcome = "timeout" if time.monotonic() >= deadline else "broken"
                    self.stop()
                    return outcome
                header, files = frame
                if header["probe"] == "_done":
                    return "done"
                if on_frame(header, files) is False:
                    self.stop()
                    return "stopped"
        except BrokenPipeError:  # the worker died between jobs
            self.stop()
            return "broken"
        except BaseException:  # a full disk, say: the stream is half read, so this worker is done
            self.stop()
            raise

    def _read_with_timeout(self, seconds: float):
        """One frame, or None on timeout or a broken stream (the reader thread is abandoned with the worker)."""
        box: list = []

        def read():
            try:
                box.append(protocol.read_frame(self.process.stdout, max_file_bytes=2**26, max_frame_bytes=2**28))
            except (protocol.ProtocolError, OSError, ValueError) as error:
                box.append(error)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(seconds)
        if reader.is_alive() or not box or not isinstance(box[0], tuple):
            return None
        return box[0]

    def _stderr_tail(self) -> str:
        try:
            return (self.home / "stderr.txt").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


class WarmPool:
    """One warm worker per slot; ``prestart`` starts them in the background, ``close()`` stops them all."""

    def __init__(self, *, settings: Settings, inputs_dirs: dict[str, Path], root: Path):
        self.settings, self.inputs_dirs, self.root = settings, inputs_dirs, root
        self.workers: dict[int, WarmWorker] = {}
        self.starting: dict[int, threading.Thread] = {}
        self.failures: dict[int, WorkerUnavailable] = {}
        self.lock = threading.Lock()

    def _make(self, slot: int) -> WarmWorker:
        with self.lock:
            if slot not in self.workers:
                self.workers[slot] = WarmWorker(settings=self.settings, slot=slot, inputs_dirs=self.inputs_dirs,
                                                root=self.root)
            return self.workers[slot]

    def prestart(self, slots) -> None:
        """Launch every slot's worker from this thread (it must outlive them), wait for them in the background."""
        for slot in slots:
            worker = self._make(slot)
            worker.launch()

            def wait(worker=worker, slot=slot):
                try:
                    worker.wait_ready()
                except WorkerUnavailable as error:
                    self.failures[slot] = error

            thread = threading.Thread(target=wait, daemon=True)
            self.starting[slot] = thread
            thread.start()

    def worker(self, slot: int) -> WarmWorker:
        """The slot's running worker (waiting for a background start); raises WorkerUnavailable."""
        thread = self.starting.pop(slot, None)
        if thread is not None:
            thread.join()
        if slot in self.failures:
            raise self.failures.pop(slot)
        worker = self._make(slot)
        if not worker.alive:
            worker.start()
        return worker

    def replace(self, slots) -> None:
        """Stop the workers of ``slots`` (after a failure), so the next ``worker()`` starts fresh ones."""
        for slot in slots:
            thread = self.starting.pop(slot, None)
            if thread is not None:
                thread.join()
            self.failures.pop(slot, None)
            self._make(slot).stop()

    def close(self) -> None:
        for thread in list(self.starting.values()):
            thread.join()
        for worker in self.workers.values():
            worker.stop()
