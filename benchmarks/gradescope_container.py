"""Benchmark: the Gradescope bundle, cold, in a Docker-like container (the container isolation tier).

    python benchmarks/gradescope_container.py            # 3 rounds
    python benchmarks/gradescope_container.py --rounds 5 --json benchmarks/results/gradescope_container.json

Builds the v1 bundle, unpacks it where Gradescope's setup.sh does (/autograder/source) and starts the imitation
of a Docker container that tests/test_container_tier.py uses (root, Docker's fourteen capabilities, new user
namespaces refused, /sys read-only: bubblewrap cannot isolate, so the grader takes its container tier). In that
one container, each round times a cold ``python -c "import keras"`` and then one cold ``run_autograder`` on the
solution (a fresh Python, Keras imported in the grader's sandboxes, every check, the retrain, the scoring),
alternating, so both see the same machine. Peak memory is the sum of the PSS of every process of the container
(shared pages split between processes), sampled every 0.25 s from the host (inside, the container's root may
not read the smaps of the grader's undumpable processes). Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import tempfile
import textwrap
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "submissions")]

import docker_like  # noqa: E402
import factory  # noqa: E402
from autograder.gradescope import build_bundle  # noqa: E402

DRIVER = textwrap.dedent("""
    import json, os, shutil, subprocess, sys, threading, time
    rounds = int(sys.argv[1])

    env = {**os.environ, "AUTOGRADER_PYTHON": sys.executable}
    figures = {"import_keras_seconds": [], "run_autograder_seconds": [], "scores": []}
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import keras"], check=True, env=env)
        figures["import_keras_seconds"].append(round(time.perf_counter() - started, 2))
        shutil.rmtree("/autograder/results", ignore_errors=True)
        started = time.perf_counter()
        result = subprocess.run(["/autograder/source/run_autograder"], env=env, capture_output=True, text=True)
        figures["run_autograder_seconds"].append(round(time.perf_counter() - started, 2))
        results = json.load(open("/autograder/results/results.json"))
        figures["scores"].append(results.get("score"))
        figures["isolation"] = results.get("extra_data", {}).get("isolation")
        if result.returncode:
            figures["stderr"] = result.stderr[-2000:]
    json.dump(figures, open("/autograder/figures.json", "w"))
""")


def container_pss(root_pid: int) -> int:
    """The sum of the PSS of ``root_pid`` and all its descendants (read as the host's root)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def in_container(root: Path, rounds: int, *, sample: bool):
    """Run the driver in a fresh container; returns (its figures or None, the peak PSS sampled, or 0)."""
    (root / "figures.json").unlink(missing_ok=True)
    read_end, write_end = os.pipe()
    os.write(write_end, docker_like.no_user_namespaces_filter())
    os.close(write_end)
    argv = docker_like.command([sys.executable, "/autograder/driver.py", str(rounds)],
                               binds={"/autograder": root}, env={"TF_CPP_MIN_LOG_LEVEL": "3"}, seccomp_fd=read_end)
    container = subprocess.Popen(argv, pass_fds=(read_end,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
    os.close(read_end)
    peak = 0
    while sample and container.poll() is None:
        peak = max(peak, container_pss(container.pid))
        time.sleep(0.25)
    stderr = container.communicate()[1]
    if not (root / "figures.json").is_file():
        print(stderr[-3000:], file=sys.stderr)
        return None, peak
    return json.loads((root / "figures.json").read_text()), peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    reason = docker_like.available()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gradescope-bench-") as temporary:
        root = Path(temporary) / "autograder"
        with zipfile.ZipFile(build_bundle(Path(temporary) / "autograder.zip", version="v1")) as archive:
            archive.extractall(root / "source")
        for name in ("run_autograder", "setup.sh"):
            os.chmod(root / "source" / name, 0o755)
        shutil.copytree(factory.V1.examples_dir / "submissions" / "solution", root / "submission")
        (root / "driver.py").write_text(DRIVER)
        # The timed rounds unobserved (sampling smaps walks page tables: CPU the grading would not get), then one
        # more round, sampled, for the memory.
        figures, _ = in_container(root, args.rounds, sample=False)
        if figures is None:
            return 1
        memory, peak = in_container(root, 1, sample=True)
        figures["peak_pss_bytes"] = peak
        figures["sampled_round_seconds"] = memory["run_autograder_seconds"] if memory else None
    keras, cold = statistics.median(figures["import_keras_seconds"]), statistics.median(figures["run_autograder_seconds"])
    figures.update(machine=f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
                           f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.1f} GiB",
                   median_import_keras_seconds=keras, median_run_autograder_seconds=cold,
                   cold_over_import_keras=round(cold / keras, 2),
                   peak_memory_gib=round(figures["peak_pss_bytes"] / 2**30, 2))
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
