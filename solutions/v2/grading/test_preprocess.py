"""Graders for preprocess(images, labels) -> (x, y)."""

import numpy as np
import pytest

from autograder.grading import describe_shape, expect, probe


@probe("preprocess")
def record_preprocess(run):
    """Call preprocess on grader-chosen images; record x, y, and whether the inputs came back unchanged."""
    data = run.inputs()
    result = run.call("preprocess", data["images"], data["labels"], after={0: "value", 1: "value"})
    try:
        run.record["inputs_unchanged"] = bool(np.array_equal(result.after_value(0).array(), data["images"])
                                              and np.array_equal(result.after_value(1).array(), data["labels"]))
    except Exception:
        run.record["inputs_unchanged"] = False
    x, y = result.pair("a pair (x, y)")
    for key, value in (("x", x), ("y", y)):
        with run.case(key):
            run.save(key, value)


def _given(inputs):
    data = inputs.public_arrays("preprocess")
    return data["images"], data["labels"]


@pytest.mark.rubric("preprocess.shape_dtype")
def test_shape_and_dtype(artifacts, inputs):
    """Does preprocess flatten every image into a row of 784 float32 values?"""
    images, _ = _given(inputs)
    n = len(images)
    x = artifacts.array("preprocess", "x")
    expect(x.shape == (n, 784),
           f"For {n} images of 28x28, x should have shape ({n}, 784); yours has {describe_shape(x)}. "
           "Flatten each image: images.reshape(len(images), 784).")
    expect(x.dtype == np.float32,
           f"x has dtype {x.dtype}; Keras expects float32. Convert with .astype('float32') before dividing.")
    expect(carries_images(x, images),
           "x has the right shape and dtype but does not hold the images' pixels in their order (it is constant or "
           "unrelated to them), so preprocess does not do its job yet: x must be the flattened images, scaled.")


def carries_images(x: np.ndarray, images: np.ndarray) -> bool:
    """Basic job: x is (a positive rescaling of) the flattened images, row for row."""
    flat_x = x.reshape(len(images), -1).astype(np.float64).ravel()
    flat_images = images.reshape(len(images), -1).astype(np.float64).ravel()
    if flat_x.std() == 0 or not np.all(np.isfinite(flat_x)):
        return False
    return float(np.corrcoef(flat_x, flat_images)[0, 1]) > 0.99


@pytest.mark.rubric("preprocess.scaled")
def test_scaled(artifacts, inputs):
    """Are pixel values divided by 255, so they lie in [0, 1]?"""
    images, _ = _given(inputs)
    n = len(images)
    x = artifacts.array("preprocess", "x")
    expect(x.size == n * 784, f"x holds {x.size} values for {n} images; expected {n * 784} (784 per image).")
    x = x.reshape(n, 784).astype(np.float64)
    expected = images.reshape(n, 784).astype(np.float64) / 255.0
    if np.allclose(x, expected, atol=1e-6):
        return
    expect(x.max() <= 1.0 + 1e-6,
           f"x goes up to {x.max():.4g}, so the pixels are not scaled. Divide by 255.0 to map 0-255 onto [0, 1].")
    expect(x.min() >= -1e-6, f"x goes down to {x.min():.4g}; pixel values should lie in [0, 1].")
    expect(np.count_nonzero(x) > 0, "x is all zeros: an integer division (uint8 // 255 or uint8 / 255 before the "
                                    "conversion) loses every pixel. Convert to float32 first, then divide by 255.")
    worst = float(np.abs(x - expected).max())
    expect(False, f"x lies in [0, 1] but is not pixel / 255 (largest difference {worst:.3g}). Scale each pixel by "
                  "dividing by 255.0, with no other normalisation, and keep the images' order.")


@pytest.mark.rubric("preprocess.one_hot")
def test_one_hot(artifacts, inputs):
    """Are the labels one-hot encoded as float32 rows of length 10?"""
    _, labels = _given(inputs)
    n = len(labels)
    y = artifacts.array("preprocess", "y")
    expect(y.shape != (n,), f"y has shape ({n},): these are still class labels. One-hot encode them into shape "
                            f"({n}, 10), e.g. keras.utils.to_categorical(labels, 10).")
    expect(y.shape == (n, 10), f"y should have shape ({n}, 10), one row per label; yours has {describe_shape(y)}.")
    expect(y.dtype == np.float32, f"y has dtype {y.dtype}; use float32 (.astype('float32')).")
    expected = np.eye(10, dtype=np.float32)[labels]
    wrong = int(np.count_nonzero(np.any(y != expected, axis=1)))
    expect(wrong == 0, f"{wrong} of {n} rows of y are not the one-hot vector of their label (a single 1.0 at the "
                       "label's position, 0.0 elsewhere, in the same order as labels).")
