"""Build the inputs of one grading run from real MNIST: small probe arrays and the trusted expectations.

``public/`` is bound read-only into every sandbox: grader-chosen MNIST samples, initial weights of the
grader's small models, and the pixel- and label-permuted training subset for the budgeted retrain.
``trusted/`` never enters a sandbox: the test labels, the permuted evaluation set and its secret
permutation. Because the retrain data is permuted with a secret drawn per run, pretrained weights
smuggled into a submission and labels looked up by image hash are both useless there.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .mnist_data import load_mnist

NUM_CLASSES = 10
PIXELS = 784


@dataclass(frozen=True)
class RetrainBudget:
    """The budgeted retrain: the same numbers must be in data/reference_scores.json."""
    train_examples: int = 6_000
    epochs: int = 2
    batch_size: int = 100
    seed: int = 20161
    hidden_units: tuple = (128,)

    def __post_init__(self):
        object.__setattr__(self, "hidden_units", tuple(self.hidden_units))

    def as_dict(self) -> dict:
        return {"train_examples": self.train_examples, "epochs": self.epochs, "batch_size": self.batch_size,
                "seed": self.seed, "hidden_units": list(self.hidden_units)}


@dataclass(frozen=True)
class GradingInputs:
    root: Path

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def trusted(self) -> Path:
        return self.root / "trusted"

    def public_arrays(self, name: str) -> dict[str, np.ndarray]:
        return _load(self.public / f"{name}.npz")

    def trusted_arrays(self, name: str) -> dict[str, np.ndarray]:
        return _load(self.trusted / f"{name}.npz")

    def labelled(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A trusted evaluation set ("test" or "retrain_eval") as flat float inputs and integer labels."""
        data = self.trusted_arrays(name)
        return data["images"].astype(np.float32) / 255.0, data["labels"]


@functools.lru_cache(maxsize=32)
def _load(path: Path) -> dict[str, np.ndarray]:
    """Read an input archive once per process; the arrays are made read-only since they are shared."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), PIXELS).astype(np.float32) / 255.0


def glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


def build_inputs(root: Path, *, retrain: RetrainBudget, seed: int = 2016, permutation_seed: int | None = None,
                 mnist=None) -> GradingInputs:
    """Write ``root/public`` and ``root/trusted`` for one grading run and return a handle on them.

    Args:
        root: an empty or missing folder owned by the grader.
        retrain: the budgeted retrain's size.
        seed: picks the MNIST samples of the cheap probes (fixed, so scores are reproducible).
        permutation_seed: the retrain's secret permutation; drawn from the OS when None.
        mnist: already loaded MNIST (``load_mnist()`` output), to save a second load.
    """
    (x_train, y_train), (x_test, y_test) = mnist if mnist is not None else load_mnist()
    inputs = GradingInputs(Path(root))
    inputs.public.mkdir(parents=True, exist_ok=True)
    inputs.trusted.mkdir(parents=True, exist_ok=True)
    train_idx = np.random.default_rng(retrain.seed).permutation(len(x_train))[:retrain.train_examples]
    rng = np.random.default_rng(seed)
    # The probes' samples (public, most with labels) never overlap the retrain's training images: a pixel
    # permutation keeps each image's sorted pixel values, so matching the two would reveal the secret.
    order = rng.permutation(np.setdiff1d(np.arange(len(x_train)), train_idx))
    taken = iter(np.split(order, np.cumsum([256, 250, 500, 3000, 96, 64, 16])))
    pick = lambda: next(taken)  # noqa: E731  (disjoint samples, one per probe)

    idx = pick()
    _save(inputs.public, "preprocess", images=x_train[idx], labels=y_train[idx].astype(np.int64))

    idx = _distinct_rows(x_train, pick())
    _save(inputs.public, "minibatches", x=flat(x_train[idx]), y=one_hot(y_train[idx]), labels=y_train[idx].astype(np.int64))

    idx = _distinct_rows(x_train, pick())
    _save(inputs.public, "training", x=flat(x_train[idx]), y=one_hot(y_train[idx]), labels=y_train[idx].astype(np.int64),
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
    _save(inputs.public, "known_model", W=solution[:-1].astype(np.float32), b=solution[-1].astype(np.float32),
          x=flat(x_train[eval_idx]), y=one_hot(y_train[eval_idx]))

    _save(inputs.public, "consistency", x=flat(x_train[pick()]))
    _save(inputs.public, "build_model", x=flat(x_train[pick()]))
    _save(inputs.public, "forward", W=rng.normal(size=(64, 32)), b=rng.normal(size=32), X=rng.normal(size=(300, 64)))

    # The budgeted retrain, on pixel- and label-permuted data (secret per run).
    secret = np.random.default_rng(permutation_seed if permutation_seed is not None else secrets.randbits(64))
    pixels, classes = secret.permutation(PIXELS), secret.permutation(NUM_CLASSES)
    # Large image sets stay uint8 on disk (a quarter of the bytes); readers scale them to [0, 1].
    _save(inputs.public, "retrain", images=x_train[train_idx].reshape(-1, PIXELS)[:, pixels],
          y=one_hot(classes[y_train[train_idx]]))
    _save(inputs.trusted, "retrain_eval", images=x_test.reshape(-1, PIXELS)[:, pixels],
          labels=classes[y_test].astype(np.int64))
    _save(inputs.trusted, "test", images=x_test.reshape(-1, PIXELS), labels=y_test.astype(np.int64))
    (inputs.trusted / "retrain.json").write_text(json.dumps(retrain.as_dict()))
    for folder in (inputs.public, inputs.root):
        os.chmod(folder, 0o755)  # sandboxes run as other uids and must read public/
    for path in inputs.public.iterdir():
        os.chmod(path, 0o644)
    os.chmod(inputs.trusted, 0o700)
    return inputs


def _distinct_rows(images: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Drop duplicate images so every row can be traced back to its index."""
    _, first = np.unique(images[idx].reshape(len(idx), -1), axis=0, return_index=True)
    return idx[np.sort(first)]


def _save(folder: Path, name: str, **arrays) -> None:
    np.savez(folder / f"{name}.npz", **arrays)
