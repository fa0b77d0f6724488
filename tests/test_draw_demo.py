"""solutions/v1/draw_demo.py: drawings become MNIST-like inputs (20x20 box, centred by mass) the example model reads."""

from __future__ import annotations

import doctest
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
DEMO_PATH = REPO / "solutions" / "v1" / "draw_demo.py"   # the digits demo belongs to v1 (MNIST)


def example_model_path() -> Path:
    """The example trained model of v1, whose demo this is."""
    from autograder import assignment
    return assignment.load("v1").example_model


EXAMPLE_MODEL = example_model_path()


def load_demo():
    """The student-facing module, imported from its path (it is a single file, not part of a package)."""
    spec = importlib.util.spec_from_file_location("draw_demo", DEMO_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = load_demo()


def canvas_with(draw, size=(280, 280)):
    """A white grey-level canvas (height, width) with black strokes drawn by ``draw(ImageDraw)``."""
    image = Image.new("L", (size[1], size[0]), 255)
    draw(ImageDraw.Draw(image))
    return np.asarray(image)


def ink_box(x):
    rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(x):
    rows, cols = np.indices(x.shape)
    return (rows * x).sum() / x.sum(), (cols * x).sum() / x.sum()


STROKES = {
    # off-centre, lopsided shapes: the box and the centring both have work to do
    "seven_top_left": lambda d: (d.line([(20, 20), (120, 20), (60, 150)], fill=0, width=12)),
    "tall_bar_right": lambda d: d.line([(250, 30), (250, 260)], fill=0, width=20),
    "wide_dash_bottom": lambda d: d.line([(30, 240), (200, 250)], fill=0, width=16),
    "small_ring_centre": lambda d: d.ellipse([120, 110, 170, 180], outline=0, width=8),
    "four_big": lambda d: (d.line([(60, 20), (30, 170), (230, 170)], fill=0, width=22),
                           d.line([(170, 60), (170, 270)], fill=0, width=22)),
}


@pytest.mark.parametrize("name", sorted(STROKES))
def test_a_drawing_becomes_a_centred_digit_in_the_20x20_box(name):
    """The longer side of the ink fills the 20x20 box; the centre of mass lands on MNIST's (14, 14)."""
    x = demo.to_mnist_input(canvas_with(STROKES[name]))
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9, "dark ink becomes values near 1"
    height, width = ink_box(x)
    assert max(height, width) == 20 and min(height, width) <= 20, (height, width)
    row, col = centre_of_mass(x)
    # whole-pixel shifts, as MNIST was made: within half a pixel of the centre (and a rounding error)
    assert abs(row - 14.0) <= 0.5 + 1e-4 and abs(col - 14.0) <= 0.5 + 1e-4, (row, col)


def test_grey_rgb_and_transparent_rgba_canvases_give_the_same_input():
    grey = canvas_with(STROKES["four_big"])
    rgb = np.repeat(grey[..., None], 3, axis=2)
    # what the sketchpad sends: black strokes on fully transparent paper
    rgba = np.zeros(grey.shape + (4,), np.uint8)
    rgba[..., 3] = 255 - grey
    expected = demo.to_mnist_input(grey)
    assert np.allclose(demo.to_mnist_input(rgb), expected, atol=1e-6)
    assert np.allclose(demo.to_mnist_input(rgba), expected, atol=1e-6)
    assert np.allclose(demo.to_mnist_input(Image.fromarray(grey)), expected, atol=1e-6)


def test_an_empty_canvas_asks_for_a_digit_and_never_reaches_the_model():
    """Nothing drawn (or only a faint speck) is an answer of its own, not a crash or a guess."""
    blank = np.full((280, 280), 255, np.uint8)
    speck = blank.copy()
    speck[100, 100] = 255 - int(0.5 * demo.INK_THRESHOLD * 255)
    transparent = np.zeros((280, 280, 4), np.uint8)
    for canvas in (blank, speck, transparent):
        assert not demo.to_mnist_input(canvas).any()
    # model=None: answering an empty canvas must not need the model at all
    for drawing in (None, {"composite": None}, {"composite": transparent, "layers": [], "background": None}, blank):
        text, preview = demo.answer(None, drawing)
        assert text == demo.EMPTY_ANSWER == "Draw a digit"
        assert preview.shape == (28 * demo.PREVIEW_SCALE,) * 2 and not preview.any()


def test_unsupported_images_are_refused_with_their_shape():
    with pytest.raises(ValueError, match=r"received shape \(28, 28, 2\)"):
        demo.to_mnist_input(np.zeros((28, 28, 2), np.uint8))


def test_the_docstring_example_runs():
    failures, tried = doctest.testmod(demo, extraglobs={"np": np})[:2]
    assert tried > 0 and failures == 0


# -- with the example model (Keras starts in a subprocess, as in the other tests) -------------------

PREDICT = """
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("draw_demo", sys.argv[1])
demo = importlib.util.module_from_spec(spec); spec.loader.exec_module(demo)
model = demo.load_model(sys.argv[2])
for name in sys.argv[3:]:
    np.save(name + ".out.npy", demo.predict_probabilities(model, np.load(name)))
"""


def predict_with_example_model(tmp_path, **inputs):
    """The example model's probabilities for each named (n, 28, 28) array, computed by draw_demo in Keras."""
    names = []
    for name, array in inputs.items():
        names.append(str(tmp_path / f"{name}.npy"))
        np.save(names[-1], np.asarray(array, np.float32))
    result = subprocess.run([sys.executable, "-c", PREDICT, str(DEMO_PATH), str(EXAMPLE_MODEL), *names],
                            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: np.load(path + ".out.npy") for name, path in zip(inputs, names)}


def enlarged_on_a_canvas(image, rng):
    """An MNIST image as a person might draw it: black on white, larger, anywhere on a wide canvas."""
    side = int(rng.integers(140, 281))
    digit = Image.fromarray(255 - image).resize((side, side), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (400, 300), 255)
    canvas.paste(digit, (int(rng.integers(0, 400 - side + 1)), int(rng.integers(0, 300 - side + 1))))
    return np.asarray(canvas)


@pytest.mark.slow
def test_mnist_test_digits_drawn_large_stay_recognisable(mnist, tmp_path):
    """1,000 real MNIST test digits, enlarged and moved about on a canvas, then brought back to 28x28 by
    to_mnist_input: the example model reads them about as well as the originals (97.8% on these)."""
    (_, _), (x_test, y_test) = mnist
    images, labels = x_test[:1000], y_test[:1000]
    rng = np.random.default_rng(0)
    redrawn = np.stack([demo.to_mnist_input(enlarged_on_a_canvas(image, rng)) for image in images])
    probabilities = predict_with_example_model(tmp_path, original=images / 255.0, redrawn=redrawn)
    original_accuracy = float((probabilities["original"].argmax(axis=1) == labels).mean())
    redrawn_accuracy = float((probabilities["redrawn"].argmax(axis=1) == labels).mean())
    print(json.dumps({"original_accuracy": original_accuracy, "redrawn_accuracy": redrawn_accuracy}))
    assert redrawn_accuracy >= 0.95 and redrawn_accuracy >= original_accuracy - 0.02, \
        (redrawn_accuracy, original_accuracy)


@pytest.mark.slow
def test_a_model_of_the_wrong_shape_is_refused_with_what_it_takes(tmp_path):
    code = """
import sys, keras
model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(3, activation="softmax")])
model.save(sys.argv[1])
import importlib.util
spec = importlib.util.spec_from_file_location("draw_demo", sys.argv[2])
demo = importlib.util.module_from_spec(spec); spec.loader.exec_module(demo)
try:
    demo.load_model(sys.argv[1])
except ValueError as error:
    print(error)
"""
    path = tmp_path / "three_classes.keras"
    result = subprocess.run([sys.executable, "-c", code, str(path), str(DEMO_PATH)], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gives 3 outputs" in result.stdout and "10 probabilities" in result.stdout, result.stdout
