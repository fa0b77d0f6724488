"""Graders for confusion_matrix(model, x, labels): entry [i, j] counts the images of true class i that the
model puts in class j (rows are true classes, columns predictions), on a model the grader knows exactly."""

import numpy as np
import pytest

from autograder.grading import describe_shape, expect, probe
from autograder.numpy_model import ACTIVATIONS

NUM_CLASSES = 10


def _expected(inputs):
    """The known model's confusion matrix on its samples, computed with numpy; and the near-tie rows (float32
    may break a tie between the two most probable classes either way)."""
    data = inputs.public_arrays("known_model")
    probabilities = ACTIVATIONS["softmax"](data["x"].astype(np.float64) @ data["W"] + data["b"])
    labels = np.argmax(data["y"], axis=1)
    predicted = np.argmax(probabilities, axis=1)
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    ties = int(np.count_nonzero(top_two[:, 1] - top_two[:, 0] <= 1e-5))
    return matrix, ties


def _matrix(artifacts):
    matrix = artifacts.array("confusion_matrix", "matrix")
    expect(matrix.shape == (NUM_CLASSES, NUM_CLASSES),
           f"confusion_matrix should return a ({NUM_CLASSES}, {NUM_CLASSES}) array; yours has {describe_shape(matrix)}.")
    return matrix


@pytest.mark.rubric("confusion_matrix.shape")
def test_shape_and_counts(artifacts, inputs):
    """Is it a 10 x 10 matrix of integer counts, one per image?"""
    matrix = _matrix(artifacts)
    expected, _ = _expected(inputs)
    expect(matrix.dtype.kind in "iu", f"confusion_matrix returned dtype {matrix.dtype}; the entries are counts of "
                                      "images: use an integer array (np.zeros((10, 10), dtype=int)).")
    total = int(expected.sum())
    expect(int(matrix.sum()) == total, f"The entries add up to {int(matrix.sum())}, but there were {total} images: "
                                       "count each image exactly once.")


@pytest.mark.rubric("confusion_matrix.values")
def test_rows_are_true_classes(artifacts, inputs):
    """Does entry [i, j] count the images of true class i predicted as class j?"""
    matrix = _matrix(artifacts)
    expected, ties = _expected(inputs)
    if np.array_equal(matrix, expected):
        return
    expect(not np.array_equal(matrix, expected.T),
           "Your matrix is transposed: rows must be the true classes and columns the predictions "
           "(matrix[true, predicted] += 1).")
    off = int(np.abs(matrix.astype(np.int64) - expected).sum()) // 2
    expect(off <= ties, f"{off} images are counted in the wrong cell. Predict with the model (the most probable "
                        "class of each row, as predict_classes does) and add one to matrix[label, prediction] per "
                        "image.")


@probe("confusion_matrix")
def record_confusion_matrix(run):
    """Call confusion_matrix on the grader's known model, its samples and their integer labels; record it."""
    from .models import known_linear_model
    data = run.inputs("known_model")
    labels = np.argmax(data["y"], axis=1).astype(np.int64)
    result = run.call("confusion_matrix", known_linear_model(data), data["x"], labels)
    run.record["returned_type"] = result.type_name
    run.save("matrix", result)
