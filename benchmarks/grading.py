"""Benchmark: grade N realistic submissions with the real sandbox and print where the time goes.

    python benchmarks/grading.py                 # N = 20, default settings (jobs = cores, warm workers)
    python benchmarks/grading.py -n 100          # a class of 100
    python benchmarks/grading.py --cold          # a fresh bubblewrap sandbox per submission
    python benchmarks/grading.py --single        # one submission alone, cold start, wall time and peak RSS
    python benchmarks/grading.py --vs-notebooks  # the same class handed in as modules, then as notebooks
    python benchmarks/grading.py -n 40 --vs-dask # the plain command, then a local Dask cluster of 2 workers

Submissions are the instructor's solution with one common mistake each (tests/submissions/mistakes,
cycled), each with the example model.keras. Prints per-submission wall time (median, p95), class
throughput, the machine's CPU seconds per submission (/proc/stat: with every core busy, what bounds
throughput), each probe's wall and CPU seconds, peak memory (PSS, shared pages split between processes)
per worker slot and of the grader, and the split of each submission's time into the sandbox (its
start-up: Python + Keras import, zero with warm workers; the probes; the budgeted retrain, which with
train_model and trained_model runs beside the other probes when a spare slot is free), the graders, and
the rest. The warm workers' own Keras import is paid once per slot, before the first submission, inside
the class wall time. Figures are printed, not asserted: timing is a benchmark's job, not a test's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "submissions")]

import factory  # noqa: E402
from autograder.grade import grade  # noqa: E402
from autograder.reference import machine  # noqa: E402
from autograder.settings import load_settings  # noqa: E402


class RssSampler:
    """Samples /proc every ``interval`` s: peak RSS per sandbox uid (one per slot) and of the grader's processes.

    Reading smaps_rollup walks a process's page tables, and what the benchmark spends there is CPU the
    grading it measures does not get: at 5 samples a second it cost ~1.4 s per graded submission, at one
    a second still ~0.25 s (perf). A class is sampled every 3 s, the short single-submission run more often."""

    def __init__(self, first_uid: int, slots: int, interval: float):
        self.interval = interval
        self.uids = range(first_uid, first_uid + slots)
        self.peak_by_uid: dict[int, int] = {}
        self.peak_grader = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()

    def _run(self):
        while not self.stopped.wait(self.interval):
            totals: dict[int, int] = {}
            grader = 0
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:  # a process may exit between listing /proc and reading it
                    status = Path(entry.path, "status").read_text()
                    command = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                uid = int(fields.get("Uid", "0").split()[1])
                if uid in self.uids:  # only the processes measured: reading smaps_rollup is the cost
                    totals[uid] = totals.get(uid, 0) + _proportional_rss(entry.path, fields)
                elif "autograder" in command:
                    grader += _proportional_rss(entry.path, fields)
            for uid, total in totals.items():
                self.peak_by_uid[uid] = max(self.peak_by_uid.get(uid, 0), total)
            self.peak_grader = max(self.peak_grader, grader)


def _proportional_rss(proc: str, fields: dict) -> int:
    """PSS when the kernel offers it (forked workers share pages; RSS would count them once per process)."""
    try:
        for line in Path(proc, "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(fields.get("VmRSS", "0 kB").split()[0]) * 1024


def machine_cpu_seconds() -> dict[str, float]:
    """User and system CPU seconds of the whole machine since boot (first line of /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system = (int(v) for v in fields[:3])
    return {"user": (user + nice) / ticks, "system": system / ticks}


def make_class(count: int, folder: Path, *, notebooks: bool = False) -> list[Path]:
    """``count`` submissions: the solution with one common mistake each; with ``notebooks`` each module is handed
    in as ``hello_mnist.ipynb`` instead (its statements in code cells, functions in nbgrader exercise cells)."""
    mistakes = factory.catalogue("mistakes")
    paths = []
    for index in range(count):
        mistake = mistakes[index % len(mistakes)]
        target = folder / f"student{index:03d}"
        target.mkdir(parents=True)
        path = factory.materialize(mistake, target)
        module = path / mistake.assignment.module if path.is_dir() else None
        if notebooks and module is not None and module.is_file():
            (path / mistake.assignment.notebook).write_bytes(factory.as_notebook(module.read_text()))
            module.unlink()
        paths.append(path)
    return paths


def _on_local_cluster(paths, out, workers: int):
    """A real Dask LocalCluster on this machine (worker processes, one thread each), each worker grading with
    one job: the cluster path's own overhead against the plain command on the same cores."""
    from distributed import LocalCluster

    from autograder.cluster import grade_on_cluster
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        return grade_on_cluster(paths, out_dir=out, settings=load_settings({"jobs": 1}), address=cluster.scheduler_address,
                                progress=False, command="benchmark --vs-dask")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20, help="number of submissions (default 20)")
    parser.add_argument("--jobs", type=int, default=0, help="parallel submissions (default: cores)")
    parser.add_argument("--cold", action="store_true", help="no warm workers: a fresh sandbox per submission")
    parser.add_argument("--single", action="store_true", help="one submission alone (the cold-start figure)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--notebooks", action="store_true", help="hand every submission in as a notebook")
    parser.add_argument("--vs-notebooks", action="store_true",
                        help="grade the class as modules, then the same class as notebooks; print both")
    parser.add_argument("--vs-dask", action="store_true",
                        help="grade the class plainly, then on a local Dask cluster (2 workers, 1 job each)")
    args = parser.parse_args(argv)
    if args.vs_dask:
        figures = {"plain": run(args, notebooks=False), "dask_2_workers": run(args, notebooks=False, dask_workers=2)}
        figures["dask_over_plain_wall"] = round(figures["dask_2_workers"]["class_wall_seconds"]
                                                / figures["plain"]["class_wall_seconds"], 3)
        figures["same_scores"] = figures["dask_2_workers"]["scores"] == figures["plain"]["scores"]
    elif args.vs_notebooks:
        figures = {route: run(args, notebooks=route == "notebooks") for route in ("modules", "notebooks")}
        figures["notebooks_over_modules_wall"] = round(figures["notebooks"]["class_wall_seconds"]
                                                       / figures["modules"]["class_wall_seconds"], 3)
        figures["same_scores"] = figures["notebooks"]["scores"] == figures["modules"]["scores"]
    else:
        figures = run(args, notebooks=args.notebooks)
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def run(args, *, notebooks: bool, dask_workers: int = 0) -> dict:
    count = 1 if args.single else args.n
    settings = load_settings({"jobs": args.jobs, "warm_workers": not args.cold})
    jobs = settings.resolved_jobs()  # slots: with fewer submissions, spare slots help (the retrain beside)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as temporary:
        root = Path(temporary)
        paths = make_class(count, root / "class", notebooks=notebooks)
        started, cpu_before = time.perf_counter(), machine_cpu_seconds()
        with RssSampler(settings.first_uid, jobs, 0.25 if count == 1 else 3.0) as sampler:
            if dask_workers:
                outcomes = _on_local_cluster(paths, root / "out", dask_workers)
            else:
                outcomes = grade(paths, out_dir=root / "out", settings=settings, progress=True, command="benchmark")
        wall = time.perf_counter() - started
        cpu_after = machine_cpu_seconds()
        cpu = {key: cpu_after[key] - cpu_before[key] for key in cpu_after}
    totals = [o.timing.total for o in outcomes]
    startup = [o.timing.sandbox_startup for o in outcomes]
    retrain = [(o.timing.probes or {}).get("retrain") or 0.0 for o in outcomes]
    probes = [sum(v or 0.0 for k, v in (o.timing.probes or {}).items() if k != "retrain") for o in outcomes]
    sandbox = [o.timing.sandbox_wall for o in outcomes]
    scoring = [o.timing.scoring for o in outcomes]
    other = [t - w - g for t, w, g in zip(totals, sandbox, scoring)]
    figures = {
        "machine": machine(), "python": platform.python_version(), "submissions": count, "jobs": jobs,
        "warm_workers": settings.warm_workers and not args.cold, "handed_in_as": "notebooks" if notebooks else "modules",
        "dask_workers": dask_workers,
        "class_wall_seconds": round(wall, 1),
        "throughput_per_minute": round(count / wall * 60, 1),
        "per_submission_seconds": {"median": round(statistics.median(totals), 2),
                                   "p95": round(percentile(totals, 0.95), 2), "max": round(max(totals), 2)},
        "split_seconds_mean": {
            "sandbox_wall": round(statistics.fmean(sandbox), 2),
            "of_which_startup_python_keras": round(statistics.fmean(startup), 2),
            "of_which_student_code_probes_sum": round(statistics.fmean(probes), 2),
            "of_which_budgeted_retrain": round(statistics.fmean(retrain), 2),
            "graders_and_model_evaluation": round(statistics.fmean(scoring), 2),
            "staging_reports_gradebook": round(statistics.fmean(other), 2)},
        # The machine's busy CPU over the run (all processes, /proc/stat), per submission: with every core
        # busy, this is what bounds throughput.
        "machine_cpu_seconds_per_submission": {key: round(value / count, 2) for key, value in cpu.items()},
        "probe_cpu_seconds_mean": {
            name: round(statistics.fmean((o.timing.probes_cpu or {}).get(name) or 0.0 for o in outcomes), 2)
            for name in (outcomes[0].timing.probes_cpu or {})},
        "probe_seconds_mean": {name: round(statistics.fmean((o.timing.probes or {}).get(name) or 0.0 for o in outcomes), 2)
                               for name in (outcomes[0].timing.probes or {})},
        "peak_rss_mb_per_slot": {str(uid): round(rss / 2**20) for uid, rss in sorted(sampler.peak_by_uid.items())},
        "peak_rss_mb_grader_processes": round(sampler.peak_grader / 2**20),
        "scores": sorted(o.report.total for o in outcomes),
    }
    return figures


if __name__ == "__main__":
    sys.exit(main())
