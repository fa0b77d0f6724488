"""autograder/sandbox/cgroups.py against the real kernel: limits, accounting, killing, removal, fairness.

Every test that touches cgroups needs root and a usable hierarchy (it is skipped otherwise, saying
why). Groups are made under a run group named after this pytest process and removed by the
fixtures; no other cgroup of the machine is written, except where a test says so (the v2 emulation
enables the hugetlb controller at the root of a hybrid machine's otherwise empty unified hierarchy,
and switches it off again).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from autograder.sandbox import cgroups, isolation

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20
BUSY_LOOP = ["/bin/sh", "-c", "while :; do :; done"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="creating cgroups and moving processes needs root")


# -- fixtures -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tree():
    if os.geteuid() != 0:
        pytest.skip("creating cgroups needs root")
    existed = set()
    for mount in cgroups._mounts():
        if (mount.mount_point / cgroups.TREE_NAME).is_dir():
            existed.add(mount.mount_point / cgroups.TREE_NAME)
    # On v2, pytest's own group may hold other processes (the shell that started it); moving them is
    # the grader's opt-in, and here the CI's: AUTOGRADER_TEST_CGROUP_EVACUATE=1.
    evacuate = os.environ.get("AUTOGRADER_TEST_CGROUP_EVACUATE") == "1"
    try:
        found = cgroups.detect(evacuate_own_group=evacuate)
    except cgroups.CgroupsUnavailable as error:
        pytest.skip(f"no usable cgroups here: {error.reason}")
    yield found
    for hierarchy in found.hierarchies:  # leave the machine as we found it: drop empty bases we made
        if hierarchy.base not in existed and hierarchy.version == 1:
            cgroups._remove_if_empty(hierarchy.base)


@pytest.fixture
def run(tree):
    group = tree.run_group(f"pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    yield group
    group.remove()
    assert not group.exists()


@pytest.fixture
def processes():
    """Popen objects to kill (their whole session) and reap after the test, whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
        process.wait(timeout=10)


def spawn(started: list, argv: list[str], **options) -> subprocess.Popen:
    process = subprocess.Popen(argv, start_new_session=options.pop("start_new_session", True), **options)
    started.append(process)
    return process


def cgroup_lines(pid: int) -> dict[str, str]:
    """/proc/<pid>/cgroup as {controllers: path}: {'memory': '/autograder/...', '': '/...'}."""
    return cgroups._own_cgroups(pid)


def relative_path(hierarchy: cgroups.Hierarchy, path: Path) -> str:
    """The group's path as /proc/<pid>/cgroup shows it (relative to the hierarchy's mount root)."""
    for mount in cgroups._mounts():
        if path.is_relative_to(mount.mount_point) and (hierarchy.version == 2) == (mount.fstype == "cgroup2"):
            if hierarchy.version == 1 and not hierarchy.controllers <= mount.super_options:
                continue
            inside = "/" + str(path.relative_to(mount.mount_point))
            return os.path.normpath(mount.root.rstrip("/") + inside)
    raise AssertionError(f"no mount holds {path}")


def wait_until(condition, timeout_s: float = 5.0, pause: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(pause)
    return condition()


# -- pure logic (no root) --------------------------------------------------------------------------------

def test_names_that_cgroup_files_could_clash_with_are_refused():
    for bad in ("memory.max", "", "a/b", "..", "grader", "x" * 101, "sub 1"):
        with pytest.raises(cgroups.CgroupError, match="not usable"):
            cgroups._check_name(bad, "a submission cgroup")
    cgroups._check_name("sub-17", "a submission cgroup")


def test_mountinfo_is_parsed_with_its_escapes(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
        "41 31 0:38 /docker/abc /sys/fs/cgroup/my\\040unified ro,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
        "23 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
    first, second = cgroups._mounts(str(mountinfo))
    assert first.super_options >= {"cpu", "cpuacct"} and first.fstype == "cgroup" and not first.read_only
    assert second.mount_point == Path("/sys/fs/cgroup/my unified") and second.root == "/docker/abc"
    assert second.read_only and "nsdelegate" in second.super_options


def test_detect_explains_itself_when_not_root():
    if os.geteuid() == 0:
        code = ("import os\n"
                "from autograder.sandbox import cgroups\n"
                "os.setresuid(65534, 65534, 65534)\n"
                "try: cgroups.detect()\n"
                "except cgroups.CgroupsUnavailable as error: print(error.reason)\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
        assert "not root" in result.stdout, result.stderr
    else:
        with pytest.raises(cgroups.CgroupsUnavailable, match="not root"):
            cgroups.detect()


# -- one submission's group --------------------------------------------------------------------------------

@needs_root
def test_an_attached_child_shows_in_the_group_in_every_hierarchy(run, processes):
    cgroup = run.slot("slot-0").submission("sub-1", memory_bytes=256 * MIB)
    sleeper = spawn(processes, ["sleep", "60"])
    cgroup.attach(sleeper.pid)
    lines = cgroup_lines(sleeper.pid)
    for hierarchy, path in cgroup.paths.items():
        key = "" if hierarchy.version == 2 else hierarchy.name
        assert lines[key] == relative_path(hierarchy, path), (hierarchy, lines)
    assert cgroup.processes() == [sleeper.pid]


@needs_root
def test_the_shell_prefix_joins_before_the_command_runs(run):
    cgroup = run.submission("sub-1", memory_bytes=256 * MIB)
    result = subprocess.run(cgroup.shell_prefix() + ["cat", "/proc/self/cgroup"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    shown = dict(line.split(":", 2)[1:] for line in result.stdout.splitlines())
    for hierarchy, path in cgroup.paths.items():
        assert shown["" if hierarchy.version == 2 else hierarchy.name] == relative_path(hierarchy, path)


@needs_root
def test_the_shell_prefix_does_not_run_the_command_when_it_cannot_join(run, tmp_path):
    cgroup = run.submission("sub-1", memory_bytes=256 * MIB)
    prefix = cgroup.shell_prefix()
    cgroup.remove()
    marker = tmp_path / "ran"
    result = subprocess.run(prefix + ["touch", str(marker)], capture_output=True, text=True, timeout=30)
    assert result.returncode == cgroups.JOIN_FAILED_EXIT_CODE
    assert "could not join the cgroup" in result.stderr
    assert not marker.exists()


@needs_root
def test_limits_are_written_where_the_kernel_reads_them(run):
    cgroup = run.submission("sub-1", memory_bytes=300 * MIB, cpu_weight=50, pids_max=77)
    for hierarchy, path in cgroup.paths.items():
        if "memory" in hierarchy.controllers:
            name = "memory.max" if hierarchy.version == 2 else "memory.limit_in_bytes"
            assert int((path / name).read_text()) == 300 * MIB
            memsw = path / "memory.memsw.limit_in_bytes"
            if hierarchy.version == 1 and memsw.exists():
                assert int(memsw.read_text()) == 300 * MIB  # no swap beyond the limit
        if "cpu" in hierarchy.controllers:
            name, expected = ("cpu.weight", 50) if hierarchy.version == 2 else ("cpu.shares", 512)
            assert int((path / name).read_text()) == expected
        if "pids" in hierarchy.controllers:
            assert (path / "pids.max").read_text().strip() == "77"


@needs_root
def test_a_group_is_always_made_fresh(run):
    run.submission("sub-1", memory_bytes=256 * MIB)
    with pytest.raises(cgroups.CgroupError, match="already exists"):
        run.submission("sub-1", memory_bytes=256 * MIB)
    with pytest.raises(cgroups.CgroupError, match="outside 1..10000"):
        run.submission("sub-2", memory_bytes=256 * MIB, cpu_weight=0)
    assert not any((path / "sub-2").exists() for path in run.paths.values())


@needs_root
def test_memory_above_the_limit_is_oom_killed_and_counted(run):
    cgroup = run.submission("sub-1", memory_bytes=64 * MIB)
    hog = "block = bytearray(256 << 20)\nfor i in range(0, len(block), 4096): block[i] = 1\nprint('survived')"
    result = subprocess.run(cgroup.shell_prefix() + [sys.executable, "-c", hog], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stdout, result.stderr)
    assert "survived" not in result.stdout
    usage = cgroup.usage()
    assert usage.oom_kills >= 1 and usage.oom_kills == cgroup.oom_kills()
    assert usage.memory_peak_bytes is None or 32 * MIB < usage.memory_peak_bytes <= 64 * MIB + MIB
    assert usage.cpu_seconds > 0 and usage.pids_limit_hits == 0


@needs_root
def test_a_fork_bomb_stops_at_pids_max_and_kill_all_stops_it(run, processes):
    pids_max = 24
    cgroup = run.submission("sub-1", memory_bytes=1024 * MIB, pids_max=pids_max)
    bomb = textwrap.dedent("""
        import os, time
        end = time.monotonic() + 20
        while time.monotonic() < end:  # every process, parent and children, keeps forking
            try:
                os.fork()
            except BlockingIOError:
                time.sleep(0.001)
    """)
    spawn(processes, cgroup.shell_prefix() + [sys.executable, "-c", bomb])
    assert wait_until(lambda: cgroup.pids_limit_hits() > 0, timeout_s=15), "the bomb never reached pids.max"
    counts = []
    for _ in range(20):  # sampled while the bomb is still forking
        counts.append(len(cgroup.processes()))
        time.sleep(0.01)
    assert max(counts) <= pids_max and max(counts) >= pids_max // 2, counts
    started = time.monotonic()
    cgroup.kill_all()
    assert cgroup.processes() == []
    assert time.monotonic() - started < 5


@needs_root
def test_kill_all_reaches_double_forked_setsid_daemons_that_ignore_sigterm(run, processes):
    cgroup = run.submission("sub-1", memory_bytes=256 * MIB)
    daemon = textwrap.dedent("""
        import os, signal, sys, time
        if os.fork():
            os._exit(0)              # the parent returns at once
        os.setsid()                  # a session (and an autogroup) of its own
        if os.fork():
            os._exit(0)              # the session leader goes too: the daemon is reparented to init
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)
        print(os.getpid(), flush=True)
        time.sleep(120)
    """)
    launcher = spawn(processes, cgroup.shell_prefix() + [sys.executable, "-c", daemon], stdout=subprocess.PIPE,
                     text=True)
    daemon_pid = int(launcher.stdout.readline())
    launcher.wait(timeout=30)
    assert wait_until(lambda: cgroup.processes() == [daemon_pid]), cgroup.processes()
    handle = os.pidfd_open(daemon_pid)
    try:
        os.kill(daemon_pid, signal.SIGTERM)  # ignored
        assert not select.select([handle], [], [], 0.2)[0]
        cgroup.kill_all()
        assert select.select([handle], [], [], 5)[0], "the daemon is still running"
    finally:
        os.close(handle)
    assert cgroup.processes() == []


@needs_root
def test_cpu_seconds_counts_what_the_group_used(run):
    cgroup = run.submission("sub-1", memory_bytes=256 * MIB)
    spin = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    subprocess.run(cgroup.shell_prefix() + [sys.executable, "-c", spin], check=True, timeout=60)
    assert 0.5 <= cgroup.cpu_seconds() < 5


@needs_root
def test_remove_leaves_nothing_behind(tree, processes):
    group = tree.run_group(f"pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    slot = group.slot("slot-0")
    members = [slot.submission(f"sub-{index}", memory_bytes=128 * MIB) for index in range(2)]
    members.append(group.submission("cold-1", memory_bytes=128 * MIB))
    for cgroup in members:
        spawn(processes, cgroup.shell_prefix() + ["sleep", "60"])
    assert wait_until(lambda: len(group.processes()) == 3)
    group.remove()
    assert not group.exists()
    for hierarchy in tree.hierarchies:
        assert not (hierarchy.base / group.name).exists()
    assert all(process.wait(timeout=5) == -signal.SIGKILL for process in processes)
    group.remove()          # already gone: nothing to do, no error
    members[0].remove()


@needs_root
def test_a_submission_group_is_a_context_manager(run, processes):
    with run.submission("sub-1", memory_bytes=128 * MIB) as cgroup:
        spawn(processes, cgroup.shell_prefix() + ["sleep", "60"])
        assert wait_until(lambda: len(cgroup.processes()) == 1)
    assert not cgroup.exists()


@needs_root
def test_clean_stale_removes_the_groups_of_ended_runs_only(tree, processes):
    prefix = f"pytest-{uuid.uuid4().hex[:8]}-run-"
    ended = subprocess.Popen(["sleep", "0.1"])
    ended_start = cgroups._process_start(ended.pid)
    ended.wait()
    stale = tree.run_group(f"{prefix}{ended.pid}-{ended_start}")
    leftover = stale.submission("sub-1", memory_bytes=128 * MIB)
    spawn(processes, leftover.shell_prefix() + ["sleep", "60"])  # a sandbox the crashed run left
    alive = tree.run_group(prefix=prefix)                       # this process's: alive
    busy = tree.run_group(f"{prefix}custom")                     # another name, in use
    busy_member = busy.submission("sub-1", memory_bytes=128 * MIB)
    spawn(processes, busy_member.shell_prefix() + ["sleep", "60"])
    idle = tree.run_group(f"{prefix}idle")                       # another name, empty
    try:
        assert wait_until(lambda: stale.processes() and busy.processes())
        assert sorted(tree.clean_stale(prefix)) == sorted([stale.name, idle.name])
        assert not stale.exists() and not idle.exists()
        assert alive.exists() and busy.exists() and busy.processes()
    finally:
        for group in (stale, alive, busy, idle):
            group.remove()


# -- fairness -----------------------------------------------------------------------------------------------

def _fairness(run, processes, *, cpus: list[int] | None, threshold: float) -> dict:
    """A: 16 busy processes, each in its own session; B: one. Equal weights. Returns B's share of the CPU
    the two groups got together, from the groups' own accounting, over at least 3 seconds; on a box
    busy with other work the window grows (to 6 s at most) until the share reaches ``threshold``."""
    crowd = run.submission("crowd", memory_bytes=512 * MIB, cpu_weight=100)
    single = run.submission("single", memory_bytes=512 * MIB, cpu_weight=100)
    pin = ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []
    for _ in range(16):
        spawn(processes, crowd.shell_prefix() + pin + BUSY_LOOP)  # start_new_session: 16 sessions, 16 autogroups
    spawn(processes, single.shell_prefix() + pin + BUSY_LOOP)
    assert wait_until(lambda: len(crowd.processes()) == 16 and len(single.processes()) == 1)
    time.sleep(1.0)  # let the load balancer spread the crowd
    crowd_before, single_before, started = crowd.cpu_seconds(), single.cpu_seconds(), time.monotonic()
    while True:
        time.sleep(1.0)
        crowd_used, single_used = crowd.cpu_seconds() - crowd_before, single.cpu_seconds() - single_before
        elapsed = time.monotonic() - started
        share = single_used / max(1e-9, crowd_used + single_used)
        if elapsed >= 6 or (elapsed >= 3 and share >= threshold):
            break
    for cgroup in (crowd, single):
        cgroup.kill_all()
    return {"single_share": round(share, 3), "single_cores": round(single_used / elapsed, 3),
            "crowd_cores": round(crowd_used / elapsed, 3), "seconds": round(elapsed, 1)}


@needs_root
@pytest.mark.slow
def test_one_busy_process_keeps_its_share_beside_sixteen_sessions(run, processes):
    cpus = len(os.sched_getaffinity(0))
    # Equal weights: B's fair part is one core (it has one process) out of what both groups can use;
    # without the cgroups it gets 1/17 of it (each of the 17 sessions is one autogroup). Across cores
    # the kernel only approximates group fairness (per-core queues and a load balancer), hence 0.8.
    single_cores, total_cores = min(1.0, cpus / 2), min(cpus, 17)
    threshold = 0.8 * single_cores / total_cores
    numbers = _fairness(run, processes, cpus=None, threshold=threshold)
    print(f"\nfairness, {cpus} CPUs: {json.dumps(numbers)}")
    assert numbers["single_share"] >= threshold, numbers


@needs_root
@pytest.mark.slow
def test_one_busy_process_keeps_half_of_a_shared_core(run, processes):
    if shutil.which("taskset") is None:
        pytest.skip("taskset (util-linux) is needed to put both groups on one core")
    numbers = _fairness(run, processes, cpus=[sorted(os.sched_getaffinity(0))[0]], threshold=0.45)
    print(f"\nfairness, one shared core: {json.dumps(numbers)}")
    assert numbers["single_share"] >= 0.45, numbers   # the one-core case: 1/17 without cgroups


# -- the warm path: a zygote's child joins its submission's group from inside bubblewrap ------------------

ZYGOTE = textwrap.dedent("""
    # A stand-in for harness/zygote.py: uid 0 in privileged bwrap, no /sys/fs/cgroup, the slot's
    # directory bound at /sandbox/cgroup. Its child joins the submission, then becomes the sandbox uid.
    import ctypes, errno, json, os, sys, time
    procs_files, uid = json.loads(sys.argv[1]), int(sys.argv[2])
    child = os.fork()
    if child == 0:
        report = {"sees_sys_fs_cgroup": os.path.isdir("/sys/fs/cgroup") and bool(os.listdir("/sys/fs/cgroup"))}
        try:
            for path in procs_files:
                with open(path, "w") as handle:  # this process, in the writer's PID namespace
                    handle.write(str(os.getpid()))
        except OSError as error:
            print(json.dumps({"join_failed": errno.errorcode[error.errno]}), flush=True)
            os._exit(3)
        libc = ctypes.CDLL(None, use_errno=True)
        report["unshare_cgroup_namespace"] = libc.unshare(0x02000000)  # CLONE_NEWCGROUP: it sees its group as /
        report["cgroup_after_join"] = open("/proc/self/cgroup").read()
        os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
        try:
            open(procs_files[0], "w").write(str(os.getpid()))
            report["uid_can_move_itself"] = True
        except OSError as error:
            report["uid_can_move_itself"] = error.strerror
        report["uid_can_list_bind"] = os.access("/sandbox/cgroup", os.R_OK | os.X_OK)
        print(json.dumps(report), flush=True)
        time.sleep(60)
        os._exit(0)
    os.waitpid(child, 0)
""")


def zygote_command(slot: cgroups.SlotGroup, cgroup: cgroups.SubmissionCgroup, uid: int, *,
                   cgroup_namespace: bool) -> list[str]:
    """bwrap as the production zygote is started (harness/isolate.py's privileges), with the slot bound."""
    return ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            *(["--unshare-cgroup"] if cgroup_namespace else []),
            "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SYS_ADMIN",
            "--die-with-parent", "--new-session", "--as-pid-1",
            *isolation.system_binds(), *isolation.interpreter_binds(),
            *slot.bind_args("/sandbox/cgroup"),
            "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/",
            sys.executable, "-I", "-c", ZYGOTE,
            json.dumps([str(path) for path in cgroup.procs_files(inside_root="/sandbox/cgroup")]), str(uid)]


def check_zygote_join(slot, processes, *, cgroup_namespace: bool, nsdelegate: bool) -> None:
    zygote_group = slot.submission("zygote", memory_bytes=1024 * MIB)
    cgroup = slot.submission("sub-1", memory_bytes=256 * MIB)
    uid = 64000 + os.getpid() % 900
    zygote = spawn(processes, zygote_group.shell_prefix()
                   + zygote_command(slot, cgroup, uid, cgroup_namespace=cgroup_namespace),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = zygote.stdout.readline()
    assert line, zygote.stderr.read()
    report = json.loads(line)
    if cgroup_namespace and nsdelegate:
        # v2 with nsdelegate: the zygote's namespace is rooted at its own group, and a process may only
        # be moved between groups inside the mover's namespace, so the kernel says the target is not there.
        assert report == {"join_failed": "ENOENT"}
        assert zygote.wait(timeout=10) == 0
        return
    members = cgroup.processes()
    assert len(members) == 1, (members, report)
    status = Path(f"/proc/{members[0]}/status").read_text()
    assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in status
    assert report["sees_sys_fs_cgroup"] is False
    assert report["unshare_cgroup_namespace"] == 0
    assert all(line.endswith(":/") for line in report["cgroup_after_join"].splitlines())
    assert report["uid_can_move_itself"] == "Permission denied"
    assert report["uid_can_list_bind"] is False
    assert len(zygote_group.processes()) >= 2  # bwrap and the zygote stay in the zygote's group
    cgroup.kill_all()                          # the submission ends; the zygote sees its child's end
    assert zygote.wait(timeout=10) == 0


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@needs_root
@needs_bwrap
@pytest.mark.parametrize("cgroup_namespace", [False, True], ids=["zygote-in-host-cgroupns", "zygote-in-own-cgroupns"])
def test_a_warm_zygotes_child_joins_its_submissions_group_through_the_bind(run, processes, cgroup_namespace):
    check_zygote_join(run.slot("slot-0"), processes, cgroup_namespace=cgroup_namespace,
                      nsdelegate=run.tree.nsdelegate)


# -- cgroup v2 on a v1 machine: the unified hierarchy's hugetlb controller stands in -----------------------

V2_SCRIPT = textwrap.dedent("""
    import json, os, subprocess, sys, time
    from autograder.sandbox import cgroups
    evacuate = sys.argv[1] == "evacuate"
    report = {}
    try:
        tree = cgroups.detect(controllers=("hugetlb",), version=2, evacuate_own_group=evacuate)
    except cgroups.CgroupsUnavailable as error:
        print(json.dumps({"unavailable": error.reason})); sys.exit(0)
    report["describe"] = tree.describe()
    report["own_cgroup"] = cgroups._own_cgroups()[""]
    run = tree.run_group()
    slot = run.slot("slot-0")
    cgroup = slot.submission("sub-1", memory_bytes=None)
    sleeper = subprocess.Popen(cgroup.shell_prefix() + ["sleep", "60"])
    time.sleep(0.2)
    report["sleeper_cgroup"] = cgroups._own_cgroups(sleeper.pid)[""]
    report["processes"] = cgroup.processes() == [sleeper.pid]
    report["subtree_control"] = [(path / "cgroup.subtree_control").read_text().strip()
                                 for path in (tree.hierarchies[0].base, *run.paths.values(), *slot.paths.values())]
    cgroup.kill_all()
    sleeper.wait()
    report["killed_by"] = sleeper.returncode
    report["cpu_seconds"] = cgroup.cpu_seconds()
    run.remove()
    report["removed"] = not run.exists()
    print(json.dumps(report))
""")


@pytest.fixture
def unified_hugetlb():
    """A fresh group on a hybrid machine's unified hierarchy, with hugetlb offered to it; removed after."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    mounts = [mount for mount in cgroups._mounts() if mount.fstype == "cgroup2" and mount.root == "/"]
    if not mounts:
        pytest.skip("no cgroup2 mount")
    unified = mounts[0].mount_point
    if set(cgroups.REQUIRED_CONTROLLERS) <= set((unified / "cgroup.controllers").read_text().split()):
        pytest.skip("a real cgroup v2 machine: the tests above already exercise v2")
    if "hugetlb" not in (unified / "cgroup.controllers").read_text().split():
        pytest.skip("the unified hierarchy offers no hugetlb controller to stand in for memory/cpu/pids")
    enabled = "hugetlb" in (unified / "cgroup.subtree_control").read_text().split()
    if not enabled:
        cgroups._write(unified / "cgroup.subtree_control", "+hugetlb")
    parent = unified / f"pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    parent.mkdir()
    yield parent
    hierarchy = cgroups.Hierarchy(2, frozenset(), parent, "unified")
    cgroups._Group(cgroups.CgroupTree((hierarchy,), nsdelegate=False), {hierarchy: parent}, parent.name).remove()
    assert not parent.exists()
    if not enabled:
        try:
            cgroups._write(unified / "cgroup.subtree_control", "-hugetlb")
        except OSError:
            pass  # someone else enabled it below meanwhile: leave it


def run_in_group(parent: Path, argument: str, processes, *, companion: bool = False) -> dict:
    """Run V2_SCRIPT as a process that starts in ``parent`` (its 'own cgroup'), optionally beside a sleeper."""
    join = f'echo $$ > "{parent}/cgroup.procs" && exec "$@"'
    if companion:
        spawn(processes, ["/bin/sh", "-c", join, "join", "sleep", "60"])
        assert wait_until(lambda: len(cgroups._read_pids(parent / "cgroup.procs")) == 1)
    result = subprocess.run(["/bin/sh", "-c", join, "join", sys.executable, "-c", V2_SCRIPT, argument],
                            capture_output=True, text=True, timeout=60, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_root
def test_v2_the_grader_moves_into_a_leaf_and_hands_the_controllers_on(unified_hugetlb, processes):
    report = run_in_group(unified_hugetlb, "alone", processes)
    assert "unavailable" not in report, report
    assert report["own_cgroup"] == f"/{unified_hugetlb.name}/autograder/grader"
    assert report["sleeper_cgroup"].startswith(f"/{unified_hugetlb.name}/autograder/run-")
    assert report["sleeper_cgroup"].endswith("/slot-0/sub-1")
    assert report["subtree_control"] == ["hugetlb"] * 3
    assert report["processes"] and report["killed_by"] == -signal.SIGKILL and report["removed"]
    assert (unified_hugetlb / "cgroup.subtree_control").read_text().split() == ["hugetlb"]


@needs_root
def test_v2_a_group_shared_with_other_processes_is_refused_unless_evacuated(unified_hugetlb, processes):
    refused = run_in_group(unified_hugetlb, "alone", processes, companion=True)
    assert "also holds processes" in refused.get("unavailable", ""), refused
    assert "evacuate_own_group=True" in refused["unavailable"]
    assert not (unified_hugetlb / "cgroup.subtree_control").read_text().split()
    moved = run_in_group(unified_hugetlb, "evacuate", processes)
    assert "unavailable" not in moved, moved
    companion = processes[0]
    assert cgroups._own_cgroups(companion.pid)[""] == f"/{unified_hugetlb.name}/autograder/grader"


def check_v2_zygote_join(parent: Path, processes, *, cgroup_namespace: bool) -> None:
    # In this process, not a subprocess: the tree is made by hand under the test's group, as detect()
    # would make it for a grader whose own group is that one.
    hierarchy = cgroups.Hierarchy(2, frozenset({"hugetlb"}), parent / "autograder", "unified")
    hierarchy.base.mkdir()
    cgroups._write(parent / "cgroup.subtree_control", "+hugetlb")
    cgroups._write(hierarchy.base / "cgroup.subtree_control", "+hugetlb")
    nsdelegate = any("nsdelegate" in mount.super_options for mount in cgroups._mounts() if mount.fstype == "cgroup2")
    tree = cgroups.CgroupTree((hierarchy,), nsdelegate=nsdelegate)
    run = tree.run_group()
    try:
        check_zygote_join(run.slot("slot-0"), processes, cgroup_namespace=cgroup_namespace, nsdelegate=nsdelegate)
    finally:
        run.remove()


@needs_root
@needs_bwrap
@pytest.mark.parametrize("cgroup_namespace", [False, True], ids=["zygote-in-host-cgroupns", "zygote-in-own-cgroupns"])
def test_v2_a_warm_zygotes_child_joins_its_submissions_group_through_the_bind(unified_hugetlb, processes,
                                                                             cgroup_namespace):
    check_v2_zygote_join(unified_hugetlb, processes, cgroup_namespace=cgroup_namespace)


@pytest.fixture
def nsdelegate_on(unified_hugetlb):
    """The unified hierarchy remounted with nsdelegate for one test, as systemd mounts it, then restored.

    It is a machine-wide flag, so this runs only when asked (AUTOGRADER_TEST_TOGGLE_NSDELEGATE=1)."""
    if os.environ.get("AUTOGRADER_TEST_TOGGLE_NSDELEGATE") != "1":
        pytest.skip("sets a machine-wide cgroup2 flag; run with AUTOGRADER_TEST_TOGGLE_NSDELEGATE=1")
    mount = next(mount for mount in cgroups._mounts() if mount.fstype == "cgroup2" and mount.root == "/")
    if mount.super_options - {"rw"}:
        pytest.skip(f"cgroup2 is mounted with {sorted(mount.super_options)}: the plain remount that restores "
                    f"it would drop those")
    subprocess.run(["mount", "-o", "remount,nsdelegate", str(mount.mount_point)], check=True)
    try:
        yield
    finally:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)  # mount(8) would keep nsdelegate: it merges the current options
        assert libc.mount(None, str(mount.mount_point).encode(), None, ctypes.c_ulong(32), b"") == 0  # MS_REMOUNT
        assert "nsdelegate" not in next(m for m in cgroups._mounts() if m.fstype == "cgroup2").super_options


@needs_root
@needs_bwrap
@pytest.mark.parametrize("cgroup_namespace", [False, True], ids=["zygote-in-host-cgroupns", "zygote-in-own-cgroupns"])
def test_v2_with_nsdelegate_only_a_zygote_in_the_hosts_cgroup_namespace_moves_its_child(
        nsdelegate_on, unified_hugetlb, processes, cgroup_namespace):
    check_v2_zygote_join(unified_hugetlb, processes, cgroup_namespace=cgroup_namespace)
