"""Graders for forward_loop and forward_matrix: z = XW + b, one example at a time vs one matrix product."""

import numpy as np
import pytest

from autograder.grading import describe_shape, expect, probe


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

    The threshold is a fifth of a reference loop's time on the same batch, measured by the recorder beside
    it: a loop over the rows costs about that loop's time or more, one product (and the transfer, less the
    echo's) a small part of it."""
    record = artifacts.record("forward", name)
    seconds, echo, loop, matrix = (record.get(key) for key in ("seconds", "echo_seconds", "reference_loop_seconds",
                                                                "reference_matrix_seconds"))
    expect(all(isinstance(v, (int, float)) and v > 0 for v in (seconds, echo, loop, matrix)),
           f"The time {name} takes could not be measured.")
    # The call's round trip less what the same batch costs to send there and back: the function's own time.
    return max(0.0, float(seconds) - float(echo)), LOOP_SHARE * float(loop), int(record.get("rows", 0))


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


# forward_loop is told from forward_matrix by how its time compares with a loop timed beside it, not by what
# it does to the array (a conversion such as np.asarray(X) is the student's right). On a tall batch of two
# features a Python loop pays a few microseconds per row while one product, and sending the rows there and
# back, cost a few nanoseconds each: the loop's time dwarfs the transfer and its noise. The recorder times each
# call from outside the student's process, the best of a few runs (noise only adds time); an echo of the same
# batch through the student's process measures what the transfer itself costs.
TIMING_ROWS, TIMING_FEATURES, TIMING_OUTPUTS, TIMING_RUNS = 20000, 2, 1, 3
LOOP_SHARE = 0.2


@probe("forward", function="forward_loop",
       params={"rows": TIMING_ROWS, "features": TIMING_FEATURES, "outputs": TIMING_OUTPUTS, "runs": TIMING_RUNS})
def record_forward(run):
    """Call forward_loop and forward_matrix on grader inputs (values), then time them on a tall batch against
    a reference loop and a reference product timed here."""
    import time
    params = run.params
    data = run.inputs()
    rng = np.random.default_rng(7)
    W, b = rng.normal(size=(params["features"], params["outputs"])), rng.normal(size=params["outputs"])
    X = rng.normal(size=(params["rows"], params["features"]))

    def best(function):
        times = []
        for _ in range(params["runs"]):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
        return min(times)

    def reference_loop():
        z = np.empty((X.shape[0], W.shape[1]))
        for i in range(X.shape[0]):
            z[i] = X[i] @ W + b
        return z

    for name in ("forward_loop", "forward_matrix"):
        with run.case(name):
            run.save(name, run.call(name, data["W"].copy(), data["b"].copy(), data["X"].copy()))
            run.progress(f"timing {name} on {params['rows']} rows")
            seconds = best(lambda: run.call(name, W, b, X))
            run.record[name] = {"seconds": seconds, "rows": params["rows"],
                                "echo_seconds": best(lambda: run.echo(X)),
                                "reference_loop_seconds": best(reference_loop),
                                "reference_matrix_seconds": best(lambda: X @ W + b)}
