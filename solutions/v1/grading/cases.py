"""What the sandbox runs for each submission: the probes, their parameters and their time limits.

The graders read the same constants, so a case the harness runs and the verdict the grader draws
from it are defined once, here.
"""

from __future__ import annotations

from autograder.rubric import Rubric
from autograder.sandbox.runner import ProbeSpec
from autograder.settings import Settings

BUILD_CASES = (
    {"label": "default", "kwargs": {}, "export_weights": True, "hidden_units": (500, 500), "activation": "sigmoid"},
    {"label": "custom", "kwargs": {"hidden_units": [64, 32], "activation": "relu"},
     "hidden_units": (64, 32), "activation": "relu"},
    {"label": "single", "kwargs": {"hidden_units": [16], "activation": "tanh"},
     "hidden_units": (16,), "activation": "tanh"},
)

# Names as a student might pass them (the contract says any letter case), then a learning rate.
OPTIMIZERS = {"sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adadelta": "Adadelta",
              "adam": "Adam", "adamax": "Adamax", "nadam": "Nadam"}
KERAS_DEFAULT_LEARNING_RATE = {"sgd": 0.01, "rmsprop": 0.001, "adagrad": 0.001, "adadelta": 0.001,
                               "adam": 0.001, "adamax": 0.001, "nadam": 0.001}
GIVEN_LEARNING_RATE = 0.0123
EVALUATED_CASE = "Adam"
COMPILE_CASES = tuple(
    [{"label": spelled, "key": key, "optimizer": spelled, "learning_rate": None, "evaluate": spelled == EVALUATED_CASE}
     for key, spelled in zip(OPTIMIZERS, ("SGD", "RMSprop", "adagrad", "Adadelta", "Adam", "ADAMAX", "nadam"))]
    + [{"label": f"{key}@lr", "key": key, "optimizer": key, "learning_rate": GIVEN_LEARNING_RATE, "evaluate": False}
       for key in OPTIMIZERS])
COMPILE_EVALUATION_ROWS = 128

MINIBATCH_CASES = (
    {"label": "first", "n": 250, "batch_size": 32, "seed": 11},
    {"label": "same_seed", "n": 250, "batch_size": 32, "seed": 11},
    {"label": "other_seed", "n": 250, "batch_size": 32, "seed": 12},
    {"label": "uneven", "n": 250, "batch_size": 100, "seed": 13},
    {"label": "one_batch", "n": 250, "batch_size": 250, "seed": 14},
    {"label": "oversized", "n": 120, "batch_size": 1000, "seed": 15},
    {"label": "singletons", "n": 9, "batch_size": 1, "seed": 16},
)
SIZE_CASES = ("first", "uneven", "one_batch", "oversized", "singletons")

TRAIN_ONE_EPOCH = {"n": 200, "batch_size": 64, "seed": 3}
TRAIN_MODEL = {"n": 100, "batch_size": 50, "epochs": 2}  # 4 eager steps: ~50 ms each


def probes(settings: Settings, rubric: Rubric, *, has_model_file: bool) -> list[ProbeSpec]:
    """The probe list for one submission, in the order they run."""
    limit = settings.probe_timeout_s
    # All checks but load_model share one process (``harness/main.py``: the supervisor still kills
    # leftovers, empties the scratch space and applies each check's own time limit between them).
    # load_model runs last, in a process of its own, so that it reads a file another process wrote.
    shared = None if settings.process_per_function else "shared"
    budget = rubric.retrain
    specs = [
        ProbeSpec("inspect", limit, group=shared),
        ProbeSpec("preprocess", limit, group=shared),
        ProbeSpec("build_model", limit, {"cases": [
            {"label": c["label"], "kwargs": c["kwargs"], "export_weights": c.get("export_weights", False)}
            for c in BUILD_CASES]}, group=shared),
        ProbeSpec("compile_model", limit, {"cases": [dict(c) for c in COMPILE_CASES]}, group=shared),
        ProbeSpec("minibatches", limit, {"cases": [dict(c) for c in MINIBATCH_CASES]}, group=shared),
        ProbeSpec("train_one_epoch", limit, dict(TRAIN_ONE_EPOCH), group=shared),
        ProbeSpec("train_model", limit, dict(TRAIN_MODEL), group=shared),
        ProbeSpec("forward", limit, group=shared),
        ProbeSpec("evaluate_model", limit, group=shared),
        ProbeSpec("predict_digits", limit, group=shared),
        ProbeSpec("save_model", limit, group=shared),
    ]
    if has_model_file:
        specs.append(ProbeSpec("trained_model", limit, group=shared))
    specs.append(ProbeSpec("retrain", settings.retrain_timeout_s,
                           {"seed": budget.seed, "epochs": budget.epochs, "batch_size": budget.batch_size,
                            "hidden_units": list(budget.hidden_units)}, group=shared))
    specs.append(ProbeSpec("load_model", limit))
    return specs
