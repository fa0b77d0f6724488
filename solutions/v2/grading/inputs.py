"""The inputs of assignment v2's grading runs, built from real Fashion-MNIST: one small sample per check, the grader's
known models, and the budgeted retrain's secretly transformed subset.

The retrain must be answered by learning from the data it is given, so nothing a submission brings (a
pretrained network, Fashion-MNIST images carried in the module, the copy Debian installs) may recognise that data. Per run, from a secret
drawn from the OS: which training images it gets, a random rotation of the 784-dimensional input space with
a little noise added first (an MLP learns rotated inputs as well as pixels, but no pixel statistic, sorted
values included, survives; the noise breaks matching by exact norms), and a relabelling of the ten classes
(a network that knows the true classes scores about 10 %).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import numpy as np

from autograder.inputs import (GradingInputs, RetrainBudget, distinct_rows, flat, glorot, prepare, save, seal)
from autograder.inputs import one_hot as _one_hot

NUM_CLASSES = 10
PIXELS = 784


def one_hot(labels):
    return _one_hot(labels, NUM_CLASSES)


RETRAIN_NOISE = 0.05  # standard deviation of the noise added to the [0, 1] pixels before the rotation


def random_rotation(rng: np.random.Generator, size: int) -> np.ndarray:
    """A uniformly random orthogonal matrix (QR of a Gaussian one, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(size, size)))
    return q * np.sign(np.diag(r))


def transformed(images: np.ndarray, rotation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Images as the retrain's float32 inputs: scaled to [0, 1], a little noise added, rotated."""
    x = flat(images).astype(np.float64) + rng.normal(scale=RETRAIN_NOISE, size=(len(images), rotation.shape[0]))
    return (x @ rotation).astype(np.float32)


def build(root: Path, *, dataset, retrain: RetrainBudget, seed: int = 2016, permutation_seed: int | None = None) -> GradingInputs:
    """Write ``root/public`` and ``root/trusted`` for one grading run and return a handle on them.

    Args:
        root: an empty or missing folder owned by the grader.
        retrain: the budgeted retrain's size.
        seed: picks the Fashion-MNIST samples of the cheap probes (fixed, so scores are reproducible).
        permutation_seed: the retrain's secret (subset, rotation, relabelling); drawn from the OS when None.
        dataset: the version's dataset, loaded: ``((x_train, y_train), (x_test, y_test))``.
    """
    (x_train, y_train), (x_test, y_test) = dataset
    inputs = prepare(root)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_train))
    sizes = [256, 250, 500, 3000, 96, 64, 16]
    taken = iter(np.split(order[:sum(sizes)], np.cumsum(sizes)[:-1]))
    pick = lambda: next(taken)  # noqa: E731  (disjoint samples, one per probe)

    idx = pick()
    save(inputs.public, "preprocess", images=x_train[idx], labels=y_train[idx].astype(np.int64))

    idx = distinct_rows(x_train, pick())
    save(inputs.public, "minibatches", x=flat(x_train[idx]), y=one_hot(y_train[idx]), labels=y_train[idx].astype(np.int64))

    idx = distinct_rows(x_train, pick())
    save(inputs.public, "training", x=flat(x_train[idx]), y=one_hot(y_train[idx]), labels=y_train[idx].astype(np.int64),
          w0=glorot(rng, PIXELS, 32), b0=np.zeros(32, np.float32), w1=glorot(rng, 32, NUM_CLASSES),
          b1=np.zeros(NUM_CLASSES, np.float32))

    # A least-squares linear classifier (about 85% accurate): a "known model" whose outputs the
    # trusted side can compute exactly, used to check evaluate, predict, save and load.
    fit_idx, eval_idx = pick(), pick()
    features = np.hstack([flat(x_train[fit_idx]), np.ones((len(fit_idx), 1), np.float32)]).astype(np.float64)
    # Ridge, not plain least squares: pixels that are (almost) always 0 in the fit sample otherwise get
    # weights in the thousands, and an evaluation image that inks them gets logits of +-3000, where Keras's
    # float32 loss and the grader's float64 one disagree (which sample is lucky depends on the seed).
    ridge = np.eye(features.shape[1])
    ridge[-1, -1] = 0.0  # the bias is not shrunk
    solution = np.linalg.solve(features.T @ features + ridge, features.T @ (one_hot(y_train[fit_idx]) * 8.0 - 4.0))
    save(inputs.public, "known_model", W=solution[:-1].astype(np.float32), b=solution[-1].astype(np.float32),
          x=flat(x_train[eval_idx]), y=one_hot(y_train[eval_idx]))

    save(inputs.public, "consistency", x=flat(x_train[pick()]))
    save(inputs.public, "build_model", x=flat(x_train[pick()]))
    save(inputs.public, "forward", W=rng.normal(size=(64, 32)), b=rng.normal(size=32), X=rng.normal(size=(300, 64)))

    # The budgeted retrain, on a subset, a rotation and a relabelling drawn per run (see the module's docstring);
    # its images are never among the probes' samples.
    secret = np.random.default_rng(permutation_seed if permutation_seed is not None else secrets.randbits(64))
    train_idx = secret.choice(order[sum(sizes):], size=retrain.train_examples, replace=False)
    rotation, classes = random_rotation(secret, PIXELS), secret.permutation(NUM_CLASSES)
    save(inputs.public, "retrain", x=transformed(x_train[train_idx], rotation, secret),
         y=one_hot(classes[y_train[train_idx]]))
    save(inputs.trusted, "retrain_eval", x=transformed(x_test, rotation, secret), labels=classes[y_test].astype(np.int64))
    save(inputs.trusted, "test", images=x_test.reshape(-1, PIXELS), labels=y_test.astype(np.int64))
    (inputs.trusted / "retrain.json").write_text(json.dumps(retrain.as_dict()))
    return seal(inputs)


