"""The inputs of one grading run: the folder layout, its readers, and the helpers each version's builder uses.

``public/`` is bound read-only into every sandbox, for its recorder only (the student's process has it
hidden and gets each call's arguments, no more): grader-chosen samples, initial weights of the grader's
small models, the transformed training subset of the budgeted retrain. ``trusted/`` never enters a sandbox:
test labels and the retrain's transformed evaluation set. What goes into each file is the
version's choice (``solutions/<version>/grading/inputs.py``, function ``build``); this module only knows
how such a folder is laid out and read.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RetrainBudget:
    """The budgeted retrain (from the rubric's ``[retrain]``): the same numbers must be in the reference scores."""
    train_examples: int
    epochs: int
    batch_size: int
    seed: int
    hidden_units: tuple

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
        if "x" in data:  # already inputs (the retrain's transformed images)
            return data["x"], data["labels"]
        return data["images"].astype(np.float32) / 255.0, data["labels"]

    def json(self, name: str):
        return json.loads((self.trusted / f"{name}.json").read_text())


@functools.lru_cache(maxsize=32)
def _load(path: Path) -> dict[str, np.ndarray]:
    """Read an input archive once per process; the arrays are made read-only since they are shared."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


def distinct_rows(images: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Drop duplicate images so every row can be traced back to its index."""
    _, first = np.unique(images[idx].reshape(len(idx), -1), axis=0, return_index=True)
    return idx[np.sort(first)]


def save(folder: Path, name: str, **arrays) -> None:
    np.savez(folder / f"{name}.npz", **arrays)


def prepare(root: Path) -> GradingInputs:
    """An empty inputs folder (public/ and trusted/) for a version's builder to fill."""
    inputs = GradingInputs(Path(root))
    inputs.public.mkdir(parents=True, exist_ok=True)
    inputs.trusted.mkdir(parents=True, exist_ok=True)
    return inputs


def seal(inputs: GradingInputs) -> GradingInputs:
    """Permissions once the builder is done: sandboxes (other uids) read public/, never trusted/."""
    for folder in (inputs.public, inputs.root):
        os.chmod(folder, 0o755)
    for path in inputs.public.iterdir():
        os.chmod(path, 0o644)
    os.chmod(inputs.trusted, 0o700)
    return inputs
