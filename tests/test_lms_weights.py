"""Identical models by their weights (autograder/lms/weights.py): a re-saved copy matches, others do not."""

from __future__ import annotations

import io

import numpy as np
import pytest

from autograder.lms.weights import identical_models, weights_fingerprint


def trained_weights(seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(784, 16)).astype(np.float32), rng.normal(size=16).astype(np.float32),
            rng.normal(size=(16, 10)).astype(np.float32), np.zeros(10, np.float32)]


def saved_and_loaded(arrays):
    """What the lead does: each array through a .npy file, read back without pickle."""
    loaded = []
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        buffer.seek(0)
        loaded.append(np.load(buffer, allow_pickle=False))
    return loaded


def test_identical_weights_saved_twice_match_and_different_weights_do_not():
    original = trained_weights(0)
    resaved = saved_and_loaded(original)
    as_float64 = [array.astype(np.float64) for array in original]
    other = trained_weights(1)
    groups = identical_models({"canvas:1": original, "canvas:2": resaved, "canvas:3": other,
                               "canvas:4": as_float64, "canvas:5": trained_weights(2)})
    assert [group.members for group in groups] == [["canvas:1", "canvas:2", "canvas:4"]]
    assert groups[0].parameters == 784 * 16 + 16 + 16 * 10 + 10
    assert groups[0].fingerprint == weights_fingerprint(resaved) and groups[0].fingerprint.startswith("sha256:")


def test_the_fingerprint_sees_order_shape_and_values_beyond_the_tolerance():
    weights = trained_weights(0)
    base = weights_fingerprint(weights)
    assert weights_fingerprint(list(reversed(weights))) != base
    assert weights_fingerprint([weights[0].reshape(16, 784)] + weights[1:]) != base
    nudged = [weights[0] + np.float32(1e-3)] + weights[1:]
    assert weights_fingerprint(nudged) != base
    tiny = [weights[0].astype(np.float64) + 1e-12] + weights[1:]
    assert weights_fingerprint(tiny) == base
    assert weights_fingerprint([np.array([-0.0, np.nan])]) == weights_fingerprint([np.array([0.0, np.nan])])


def test_non_numeric_arrays_are_refused_never_inspected():
    with pytest.raises(TypeError, match="only numeric arrays"):
        weights_fingerprint([np.array([object()], dtype=object)])
    with pytest.raises(ValueError, match="decimals"):
        weights_fingerprint([np.zeros(2)], decimals=-1)
