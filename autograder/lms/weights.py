"""Identical trained models across a class, found by their weights (a re-saved copy must match), as flags.

The weights come in as plain numpy arrays, one list per submission in the model's layer order (the lead
reads them from the ``.npy`` files the sandbox exported, with ``allow_pickle=False``); nothing here loads a
model file, runs Keras or unpickles. Each model's fingerprint is a SHA-256 over, for every array in order,
its shape and its values as float64 rounded to ``decimals`` places (``-0.0`` and ``0.0`` alike, every NaN
alike). So the same weights saved twice, saved in another file format, or stored as float64 instead of
float32 give the same fingerprint; different weights, the same weights in another layer order, or another
architecture do not. Rounding is a tolerance, not a metric: two trainings that agree to within the
tolerance can still straddle a rounding boundary, but an exact re-save is equal bit for bit.

Example:
    >>> groups = identical_models({"canvas:1": [w1, b1], "canvas:2": [w1.copy(), b1.copy()], "canvas:3": [w3, b3]})
    >>> [group.members for group in groups]
    [['canvas:1', 'canvas:2']]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

DECIMALS = 6
MAX_PARAMETERS = 50_000_000  # per model; the lecture's network has 648,010
FINGERPRINT_HEX_DIGITS = 32


@dataclass(frozen=True)
class ModelGroup:
    """Submissions whose models have the same weights.

    Attributes:
        fingerprint: the shared fingerprint (``"sha256:<32 hex digits>"``).
        members: the submissions' ids, sorted.
        parameters: the number of weights in each model.
    """

    fingerprint: str
    members: list[str]
    parameters: int


def weights_fingerprint(arrays: Sequence[np.ndarray], *, decimals: int = DECIMALS) -> str:
    """The fingerprint of one model's weights (see the module docstring).

    Args:
        arrays: the weight arrays in the model's layer order (kernels, biases, ...); numeric dtypes only.
        decimals: rounding before hashing (6: agreement to a millionth).

    Returns:
        ``"sha256:<32 hex digits>"``.

    Raises:
        TypeError: an array is not numeric (object arrays are refused, never inspected).
        ValueError: more than ``MAX_PARAMETERS`` weights, or a negative ``decimals``.

    Example:
        >>> weights_fingerprint([np.zeros((2, 2), np.float32)]) == weights_fingerprint([np.zeros((2, 2))])
        True
    """
    if decimals < 0:
        raise ValueError(f"decimals is {decimals}; give 0 or more places.")
    digest = hashlib.sha256(b"weights-v1\0")
    total = 0
    for index, array in enumerate(arrays):
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"Weight array {index} has dtype {array.dtype}; only numeric arrays are compared "
                            "(load .npy files with allow_pickle=False).")
        total += array.size
        if total > MAX_PARAMETERS:
            raise ValueError(f"The model has more than {MAX_PARAMETERS:,} weights; that is not a submission of "
                             "this assignment.")
        values = np.asarray(np.round(array.astype(np.float64), decimals), dtype=np.float64) + 0.0  # -0.0 -> 0.0
        values = np.where(np.isnan(values), np.nan, values)  # one NaN bit pattern
        digest.update(f"{index}:{'x'.join(map(str, array.shape))};".encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return "sha256:" + digest.hexdigest()[:FINGERPRINT_HEX_DIGITS]


def identical_models(weights: Mapping[str, Sequence[np.ndarray]], *, decimals: int = DECIMALS) -> list[ModelGroup]:
    """Group submissions whose models have equal weights (after rounding to ``decimals`` places).

    Args:
        weights: submission id -> that model's weight arrays in layer order.
        decimals: as ``weights_fingerprint``.

    Returns:
        One ``ModelGroup`` per fingerprint shared by two or more submissions, largest group first.

    Raises:
        TypeError, ValueError: as ``weights_fingerprint``.

    Example:
        >>> identical_models({"a": [np.ones(3)], "b": [np.ones(3, np.float32)]})[0].members
        ['a', 'b']
    """
    by_fingerprint: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for identifier in sorted(weights):
        arrays = weights[identifier]
        fingerprint = weights_fingerprint(arrays, decimals=decimals)
        by_fingerprint.setdefault(fingerprint, []).append(identifier)
        sizes[fingerprint] = int(sum(np.asarray(array).size for array in arrays))
    groups = [ModelGroup(fingerprint, members, sizes[fingerprint])
              for fingerprint, members in by_fingerprint.items() if len(members) > 1]
    return sorted(groups, key=lambda group: (-len(group.members), group.members))
