"""Graders for forward_loop and forward_matrix: z = XW + b, one example at a time vs one matrix product."""

import numpy as np
import pytest

from autograder.grading import describe_shape, expect


def _checked_values(artifacts, inputs, name):
    data = inputs.public_arrays("forward")
    expected = data["X"] @ data["W"] + data["b"]
    z = artifacts.array("forward", name)
    expect(z.shape == expected.shape,
           f"{name}(W, b, X) with X of shape {data['X'].shape} and W of shape {data['W'].shape} should return shape "
           f"{expected.shape}; yours has {describe_shape(z)}.")
    # float32 tolerance: a student who computes in float32 (as Keras does) is right too.
    expect(np.allclose(z, expected, rtol=1e-4, atol=1e-4),
           f"{name} returns values that differ from X @ W + b (largest difference "
           f"{float(np.abs(z - expected).max()):.3g}). Check the order of the product (X @ W, not W @ X) and the bias.")
    return data


def _timing(artifacts, name):
    """(the function's seconds on a tall batch, the threshold between a per-row loop and one product).

    The threshold is the geometric mean of a reference loop's and a reference product's time on the same
    batch, measured right after the function, in the same process: about 300 times apart."""
    record = artifacts.record("forward", name)
    seconds, loop, matrix = (record.get(key) for key in ("seconds", "reference_loop_seconds",
                                                          "reference_matrix_seconds"))
    expect(all(isinstance(v, (int, float)) and v > 0 for v in (seconds, loop, matrix)),
           f"The time {name} takes could not be measured.")
    return float(seconds), float((loop * matrix) ** 0.5), int(record.get("rows", 0))


@pytest.mark.rubric("forward_loop.values")
def test_loop_values(artifacts, inputs):
    """Does forward_loop compute z = XW + b?"""
    _checked_values(artifacts, inputs, "forward_loop")


@pytest.mark.rubric("forward_loop.per_example")
def test_loop_is_per_example(artifacts, inputs):
    """Does forward_loop compute z one example (row of X) at a time, like stochastic gradient descent?"""
    _checked_values(artifacts, inputs, "forward_loop")
    seconds, threshold, rows = _timing(artifacts, "forward_loop")
    expect(seconds >= threshold,
           f"forward_loop handled {rows:,} examples in {seconds * 1000:.2f} ms, as fast as one matrix product: it does "
           "not go through the examples one at a time. Loop over the rows (for i in range(len(X)): z[i] = X[i] @ W + b) "
           "to show the per-example cost.")


@pytest.mark.rubric("forward_matrix.values")
def test_matrix_values(artifacts, inputs):
    """Does forward_matrix compute z = XW + b?"""
    _checked_values(artifacts, inputs, "forward_matrix")


@pytest.mark.rubric("forward_matrix.vectorized")
def test_matrix_is_vectorized(artifacts, inputs):
    """Does forward_matrix use one matrix product for the whole batch, with no per-example loop?"""
    _checked_values(artifacts, inputs, "forward_matrix")
    seconds, threshold, rows = _timing(artifacts, "forward_matrix")
    expect(seconds < threshold,
           f"forward_matrix took {seconds * 1000:.1f} ms for {rows:,} examples, as long as a loop over them; compute "
           "the whole batch at once with X @ W + b.")
