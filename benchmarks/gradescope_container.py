"""Benchmark: the Gradescope bundle, cold, in a Docker-like container (the container isolation tier).

    python benchmarks/gradescope_container.py            # 3 rounds
    python benchmarks/gradescope_container.py --rounds 5 --json benchmarks/results/gradescope_container.json

Builds the v1 bundle, unpacks it where Gradescope's setup.sh does (/autograder/source) and starts the imitation
of a Docker container that tests/test_container_tier.py uses (root, Docker's fourteen capabilities, new user
namespaces refused, /sys read-only: bubblewrap cannot isolate, so the grader takes its container tier). In that
one container, each round times a cold ``python -c "import keras"`` and then one cold ``run_autograder`` on the
solution (a fresh Python, Keras imported in the grader's sandboxes, every check, the retrain, the scoring),
alternating, so both see the same machine. Peak memory is the sum of every process's PSS in the container
(shared pages split between processes), sampled every 0.25 s from inside. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
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

    def pss_total():
        total = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    for line in open(f"/proc/{entry}/smaps_rollup"):
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    pass
        return total

    peak, stop = [0], threading.Event()
    def sample():
        while not stop.wait(0.25):
            peak[0] = max(peak[0], pss_total())
    env = {**os.environ, "AUTOGRADER_PYTHON": sys.executable}
    figures = {"import_keras_seconds": [], "run_autograder_seconds": [], "scores": [], "peak_pss_bytes": []}
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import keras"], check=True, env=env)
        figures["import_keras_seconds"].append(round(time.perf_counter() - started, 2))
        shutil.rmtree("/autograder/results", ignore_errors=True)
        peak[0], stop = 0, threading.Event()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        result = subprocess.run(["/autograder/source/run_autograder"], env=env, capture_output=True, text=True)
        figures["run_autograder_seconds"].append(round(time.perf_counter() - started, 2))
        stop.set()
        sampler.join()
        figures["peak_pss_bytes"].append(peak[0])
        results = json.load(open("/autograder/results/results.json"))
        figures["scores"].append(results.get("score"))
        figures["isolation"] = results.get("extra_data", {}).get("isolation")
        if result.returncode:
            figures["stderr"] = result.stderr[-2000:]
    json.dump(figures, open("/autograder/figures.json", "w"))
""")


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
        result = docker_like.run([sys.executable, "/autograder/driver.py", str(args.rounds)],
                                 binds={"/autograder": root}, env={"TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=3600)
        if not (root / "figures.json").is_file():
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        figures = json.loads((root / "figures.json").read_text())
    keras, cold = statistics.median(figures["import_keras_seconds"]), statistics.median(figures["run_autograder_seconds"])
    figures.update(machine=f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
                           f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.1f} GiB",
                   median_import_keras_seconds=keras, median_run_autograder_seconds=cold,
                   cold_over_import_keras=round(cold / keras, 2),
                   peak_memory_gib=round(max(figures["peak_pss_bytes"]) / 2**30, 2))
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
