"""Benchmark: the reference model's seconds per epoch per Keras backend, beside the compute floor, and the
lecture's batch-size table.

    python benchmarks/training.py                # both parts
    python benchmarks/training.py --skip-batch-sizes

The compute floor: one training step costs about 3x the forward pass (forward, and backward for the
inputs and the weights); the forward pass of 784-500-500-10 is 2 x 647,000 multiply-adds, so an epoch
of 60,000 images is about 233 GFLOP. Dividing by this machine's measured float32 matrix-multiply speed
(numpy, the same BLAS class of kernel) gives the fastest an epoch could be here. Each backend and
batch size trains in its own subprocess (`autograder.training`), so one never warms up the other.
Results are printed and written to benchmarks/results/ with a chart of the batch-size table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
FORWARD_MULTIPLY_ADDS = 784 * 500 + 500 * 500 + 500 * 10
EPOCH_FLOP = 3 * 2 * FORWARD_MULTIPLY_ADDS * 60_000


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = np.random.default_rng(1).random((size, size), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def train(backend: str, *, epochs: int, batch_size: int, train_examples: int | None = None) -> dict:
    command = [sys.executable, "-m", "autograder.training", "--version", "v1", "--seed", "1", "--epochs", str(epochs),
               "--batch-size", str(batch_size)]
    if train_examples:
        command += ["--train-examples", str(train_examples)]
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{backend} training failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def backends() -> list[str]:
    found = ["tensorflow"] if importlib.util.find_spec("tensorflow") else []
    return found + [name for name in ("jax", "torch") if importlib.util.find_spec(name)]


def epoch_speed(gflops: float, epochs: int) -> list[dict]:
    floor = EPOCH_FLOP / (gflops * 1e9)
    rows = []
    for backend in backends():
        run = train(backend, epochs=epochs, batch_size=100)
        steady = run["epoch_seconds"][1:] or run["epoch_seconds"]
        seconds = min(steady)
        rows.append({"backend": backend, "version": run["versions"]["backend_version"],
                     "first_epoch_seconds": run["epoch_seconds"][0], "seconds_per_epoch": round(seconds, 2),
                     "floor_seconds": round(floor, 2), "ratio_to_floor": round(seconds / floor, 1),
                     "import_seconds": run["import_seconds"]})
    return rows


def batch_size_table(batch_one_slice: int) -> list[dict]:
    """The lecture's table: seconds per epoch and test accuracy after one epoch, per batch size."""
    rows = []
    for batch_size in (1, 10, 100, 1000):
        examples = batch_one_slice if batch_size == 1 else None
        run = train("tensorflow", epochs=1, batch_size=batch_size, train_examples=examples)
        seconds = run["epoch_seconds"][0] * (60_000 / examples if examples else 1)
        rows.append({"batch_size": batch_size, "updates_per_epoch": -(-60_000 // batch_size),
                     "seconds_per_epoch": round(seconds, 1), "extrapolated_from": examples,
                     "test_accuracy_after_one_epoch": None if examples else run["test_accuracy"]})
    return rows


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    sizes = [str(r["batch_size"]) for r in rows]
    left.bar(sizes, [r["seconds_per_epoch"] for r in rows], color="#4477aa")
    left.set_yscale("log")
    left.set_xlabel("batch size")
    left.set_ylabel("seconds per epoch (log)")
    left.set_title("Speed: one epoch of 60,000 images")
    measured = [r for r in rows if r["test_accuracy_after_one_epoch"] is not None]
    right.plot([str(r["batch_size"]) for r in measured], [r["test_accuracy_after_one_epoch"] for r in measured],
               marker="o", color="#cc6677")
    right.set_xlabel("batch size")
    right.set_ylabel("test accuracy after 1 epoch")
    right.set_title("Performance after the same number of epochs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per backend (the first is warm-up)")
    parser.add_argument("--batch-one-slice", type=int, default=3000, help="images timed at batch size 1")
    parser.add_argument("--skip-batch-sizes", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from autograder.reference import machine
    gflops = matmul_gflops()
    figures = {"machine": machine(), "matmul_gflops_float32": round(gflops, 1),
               "epoch_gflop": round(EPOCH_FLOP / 1e9, 1), "backends": epoch_speed(gflops, args.epochs)}
    print(json.dumps(figures, indent=1), flush=True)
    if not args.skip_batch_sizes:
        figures["batch_sizes"] = batch_size_table(args.batch_one_slice)
        RESULTS.mkdir(exist_ok=True)
        chart(figures["batch_sizes"], RESULTS / "batch_sizes.png")
        print(json.dumps(figures["batch_sizes"], indent=1))
        print(f"chart: {RESULTS / 'batch_sizes.png'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training.json").write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
