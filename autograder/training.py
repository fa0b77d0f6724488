"""Train a version's solution on its full training set with a fixed seed and print one JSON line of results.

Run as ``python -m autograder.training --version v1 --seed 1``; `reference.py` and the training
benchmark start it as a subprocess, one per seed or backend, so Keras never loads in their process.
The solution is instructor code (trusted); student code never comes here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time

from . import assignment as assignments
from .assignment import Assignment


def load_solution(assignment: Assignment):
    """The version's solution module (instructor code: trusted, imported here and only here)."""
    spec = importlib.util.spec_from_file_location(f"solution_{assignment.version}", assignment.solution_module)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def versions() -> dict:
    import keras
    import numpy
    backend = keras.backend.backend()
    backend_module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    backend_version = getattr(sys.modules.get(backend_module) or __import__(backend_module), "__version__", "?")
    return {"python": platform.python_version(), "keras": keras.__version__, "backend": backend,
            "backend_version": backend_version, "numpy": numpy.__version__}


def train(assignment: Assignment, *, seed: int, epochs: int, batch_size: int | None = None, hidden_units=None,
          activation=None, optimizer=None, train_examples: int | None = None, threads: int = 0) -> dict:
    """Train the solution's model (the manifest's ``[reference]`` unless overridden) one epoch at a time (to time
    each) and evaluate it on the test set."""
    started = time.perf_counter()
    reference = assignment.reference_model
    batch_size = batch_size or int(reference["batch_size"])
    hidden_units = tuple(hidden_units or reference["hidden_units"])
    activation = activation or reference["activation"]
    optimizer = optimizer or reference["optimizer"]
    import keras
    if threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import_seconds = time.perf_counter() - started
    solution = load_solution(assignment)
    (x_train, y_train), (x_test, y_test) = assignment.load_dataset()
    if train_examples:
        x_train, y_train = x_train[:train_examples], y_train[:train_examples]
    x, y = solution.preprocess(x_train, y_train)
    x_eval, y_eval = solution.preprocess(x_test, y_test)
    keras.utils.set_random_seed(seed)
    model = solution.compile_model(solution.build_model(tuple(hidden_units), activation), optimizer)
    epoch_seconds = []
    for _ in range(epochs):
        tick = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        epoch_seconds.append(round(time.perf_counter() - tick, 3))
    test_loss, test_accuracy = solution.evaluate_model(model, x_eval, y_eval)
    return {"seed": seed, "epochs": epochs, "batch_size": batch_size, "test_accuracy": round(test_accuracy, 5),
            "test_loss": round(test_loss, 5), "epoch_seconds": epoch_seconds,
            "import_seconds": round(import_seconds, 2), "versions": versions()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", default=None, help="the assignment version (default: the latest)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--train-examples", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    assignment = assignments.load(args.version or assignments.latest())
    result = train(assignment, seed=args.seed, epochs=args.epochs or int(assignment.reference_model["epochs"]),
                   batch_size=args.batch_size, train_examples=args.train_examples, threads=args.threads)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
