"""The cases v2's probes run and its graders judge: each is defined once, here, for both."""

from __future__ import annotations

BUILD_CASES = (
    {"label": "default", "kwargs": {}, "export_weights": True, "hidden_units": (256, 128), "activation": "relu"},
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
# One batch per epoch (batch_size = n), so the order fit shuffles the examples in cannot change the result: the
# grader replays the two full-batch SGD steps with numpy and compares the weights (batch_size=50 of 100 would
# leave the shuffle to chance).
TRAIN_MODEL = {"n": 60, "batch_size": 60, "epochs": 2}
SGD_LEARNING_RATE = 0.01  # Keras's default for SGD, which the grader's own models are compiled with
