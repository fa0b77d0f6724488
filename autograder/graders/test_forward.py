"""Graders for forward_loop and forward_matrix: z = XW + b, one example at a time vs one matrix product."""

import numpy as np
import pytest

from autograder.graders.checks import describe_shape, expect


def _checked_values(artifacts, inputs, name):
    data = inputs.public_arrays("forward")
    expected = data["X"] @ data["W"] + data["b"]
    z = artifacts.array("forward", name)
    expect(z.shape == expected.shape,
           f"{name}(W, b, X) with X of shape {data['X'].shape} and W of shape {data['W'].shape} should return shape "
           f"{expected.shape}; yours has {describe_shape(z)}.")
    expect(np.allclose(z, expected, rtol=1e-6, atol=1e-8),
           f"{name} returns values that differ from X @ W + b (largest difference "
           f"{float(np.abs(z - expected).max()):.3g}). Check the order of the product (X @ W, not W @ X) and the bias.")
    return data


def _row_reads(artifacts, name):
    return int(artifacts.record("forward", name).get("row_reads", -1))


@pytest.mark.rubric("forward_loop.values")
def test_loop_values(artifacts, inputs):
    """Does forward_loop compute z = XW + b?"""
    _checked_values(artifacts, inputs, "forward_loop")


@pytest.mark.rubric("forward_loop.per_example")
def test_loop_is_per_example(artifacts, inputs):
    """Does forward_loop compute z one example (row of X) at a time, like stochastic gradient descent?"""
    data = _checked_values(artifacts, inputs, "forward_loop")
    n = len(data["X"])
    reads = _row_reads(artifacts, "forward_loop")
    expect(reads >= n, f"forward_loop read {max(reads, 0)} rows of X one at a time for {n} examples; loop over the "
                       "examples (for i in range(len(X)): z[i] = X[i] @ W + b) to show the per-example cost.")


@pytest.mark.rubric("forward_matrix.values")
def test_matrix_values(artifacts, inputs):
    """Does forward_matrix compute z = XW + b?"""
    _checked_values(artifacts, inputs, "forward_matrix")


@pytest.mark.rubric("forward_matrix.vectorized")
def test_matrix_is_vectorized(artifacts, inputs):
    """Does forward_matrix use one matrix product for the whole batch, with no per-example loop?"""
    _checked_values(artifacts, inputs, "forward_matrix")
    reads = _row_reads(artifacts, "forward_matrix")
    expect(reads == 0, f"forward_matrix read rows of X one at a time ({reads} times); compute the whole batch "
                       "at once with X @ W + b.")
