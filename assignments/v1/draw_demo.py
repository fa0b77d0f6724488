# Generated from solutions/v1/draw_demo.py by `python -m autograder release` (hello_mnist v1); instructors: edit the source and release again.
"""Draw a digit and watch your trained network answer: a local web page around your model.keras.

    python draw_demo.py model.keras [--port 7860]

prints the page's local address; open it in a browser. Draw on the canvas (undo and clear are in its
toolbar): the bars show the network's 10 probabilities, and beside the drawing is the 28x28 image the
network actually received. Your strokes are turned into that image the way MNIST's digits were made:
grey levels, the digit scaled to fit a 20x20 box and centred in the 28x28 field by its centre of mass.
When the answer is wrong, look at that image first: it is often the drawing, not the network.

The page is a Gradio app. It runs on your machine only: no share link, no telemetry, nothing fetched
from the internet; the model is loaded with Keras's safe_mode, which refuses files carrying code.
"""

import argparse
import os

import numpy as np
from PIL import Image

"""
## Setup
"""

# Gradio reads this when it is imported (in build_page): no usage statistics, no version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CLASS_NAMES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")  # what each output unit means
IMAGE_SIZE = 28           # MNIST images are 28x28 pixels
DIGIT_BOX = 20            # MNIST fitted each digit into a 20x20 box inside that field ...
CENTRE = 14.0             # ... and put its centre of mass here (row and column index; measured on MNIST)
INK_THRESHOLD = 0.1       # less ink than this is paper: anti-aliasing fringes, a stray speck
CANVAS_SIZE = 280         # the drawing canvas, in pixels: 10 canvas pixels per MNIST pixel
BRUSH_RADIUS = 12         # a stroke about 2.4 MNIST pixels wide once the digit fills the canvas
PREVIEW_SCALE = 10        # the 28x28 input is shown 10 times larger, one square per pixel
EMPTY_ANSWER = "Draw a digit"
DEFAULT_PORT = 7860


"""
## Preprocessing: strokes -> an MNIST-like input
"""


def to_mnist_input(image):
    """Turn a drawing into what the network was trained on: a 28x28 MNIST-like image.

    The drawing is dark ink on light (or transparent) paper, as a canvas gives it; MNIST is white
    digits on black. Like MNIST's own preparation, the inked part is scaled (keeping its aspect ratio,
    with anti-aliased grey levels) so its longer side is 20 pixels, then placed in the 28x28 field so
    that its centre of mass lands on the centre (pixel index 14, 14).

    Args:
        image: uint8 array (or PIL image) of the canvas, any size: grey (height, width), RGB
            (height, width, 3) or RGBA (height, width, 4); transparent pixels count as paper.

    Returns:
        float32 array of shape (28, 28), values in [0, 1], 1 where the ink is darkest. An empty
        canvas (no pixel with at least ``INK_THRESHOLD`` of ink) gives all zeros.

    Example:
        >>> canvas = np.full((280, 280), 255, np.uint8)   # white paper
        >>> canvas[40:240, 130:150] = 0                   # a black vertical bar: a "1"
        >>> x = to_mnist_input(canvas)
        >>> x.shape, x.dtype, int((x.max(axis=1) > 0.5).sum())   # 20 rows tall, like MNIST's box
        ((28, 28), dtype('float32'), 20)
    """
    ink = _ink(np.asarray(image))
    rows = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=0))
    field = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    if rows.size == 0:
        return field
    digit = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    # Fit the longer side into the 20x20 box. PIL's BOX filter averages the canvas pixels under
    # each output pixel, the anti-aliasing that gave MNIST its grey edges.
    scale = DIGIT_BOX / max(digit.shape)
    height = min(DIGIT_BOX, max(1, round(digit.shape[0] * scale)))
    width = min(DIGIT_BOX, max(1, round(digit.shape[1] * scale)))
    small = Image.fromarray(digit.astype(np.float32)).resize((width, height), Image.Resampling.BOX)
    small = np.clip(np.asarray(small), 0.0, 1.0)

    # Shift by whole pixels so the centre of mass lands on CENTRE, as MNIST did; a lopsided digit
    # is kept whole in the field rather than cut off.
    row_mass, col_mass = _centre_of_mass(small)
    top = int(np.clip(round(CENTRE - row_mass), 0, IMAGE_SIZE - height))
    left = int(np.clip(round(CENTRE - col_mass), 0, IMAGE_SIZE - width))
    field[top:top + height, left:left + width] = small
    return field


def _ink(image):
    """How dark each pixel is, 0 (paper) to 1 (black), with transparent pixels as white paper."""
    image = image.astype(np.float32) / 255.0
    if image.ndim == 2:
        return 1.0 - image
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected a grey (height, width), RGB or RGBA image; received shape {image.shape}")
    grey = image[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)   # ITU-R 601 luma, as PIL's "L"
    if image.shape[2] == 4:
        alpha = image[..., 3]
        grey = grey * alpha + (1.0 - alpha)    # composite onto white paper
    return 1.0 - grey


def _centre_of_mass(image):
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


"""
## Model
"""


def load_model(path):
    """Load a trained classifier with Keras's safe_mode (a file that carries code is refused).

    Args:
        path: a ``.keras`` file whose model takes 28x28 images (flat (784,), (28, 28) or (28, 28, 1))
            with values in [0, 1] and outputs one probability per class in ``CLASS_NAMES``.

    Returns:
        The ``keras.Model``.

    Raises:
        ValueError: the model's input or output does not fit the page.
    """
    import keras  # imported here: it takes seconds, and the preprocessing above does not need it

    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    inputs = int(np.prod(model.input_shape[1:]))
    outputs = model.output_shape[-1]
    if inputs != IMAGE_SIZE * IMAGE_SIZE or outputs != len(CLASS_NAMES):
        raise ValueError(
            f"{path} takes inputs of shape {model.input_shape[1:]} and gives {outputs} outputs; this page needs "
            f"a model taking 28x28 = 784 pixels and giving {len(CLASS_NAMES)} probabilities, one per class "
            f"in {CLASS_NAMES}.")
    return model


def predict_probabilities(model, images):
    """The model's class probabilities for (n, 28, 28) inputs in [0, 1], as an (n, classes) array."""
    x = np.asarray(images, np.float32).reshape((len(images),) + tuple(model.input_shape[1:]))
    return np.asarray(model.predict_on_batch(x))


def answer(model, drawing):
    """What the page shows for a drawing: the probability per class name, and the 28x28 input.

    Args:
        model: from ``load_model``.
        drawing: the sketchpad's value (a dict whose "composite" is the canvas image) or an image;
            ``None`` before anything is drawn.

    Returns:
        (probabilities, preview): ``{class name: probability}`` and the input enlarged for display
        (uint8, white on black); for an empty canvas, the text ``EMPTY_ANSWER`` and a black preview.
    """
    if isinstance(drawing, dict):
        drawing = drawing.get("composite")
    x = to_mnist_input(drawing) if drawing is not None else np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    preview = np.kron(np.round(x * 255).astype(np.uint8), np.ones((PREVIEW_SCALE, PREVIEW_SCALE), np.uint8))
    if not x.any():
        return EMPTY_ANSWER, preview
    probabilities = predict_probabilities(model, x[None])[0]
    return {name: float(p) for name, p in zip(CLASS_NAMES, probabilities)}, preview


"""
## The page
"""

# Gradio's sketchpad starts with no tool in hand, and drops it again on "Clear canvas"; whenever no
# tool is selected, take up the brush (the first tool: this canvas has no upload source) so that the
# student can draw straight away. A tool the student picks (eraser, pan) is left alone.
TAKE_UP_BRUSH_JS = """
() => {
    const take_up_brush = () => {
        const sketchpad = document.querySelector("#canvas");
        if (sketchpad && !sketchpad.querySelector("button.highlight")) {
            sketchpad.querySelector(".toolbar-wrap button")?.click();
        }
    };
    new MutationObserver(take_up_brush).observe(document.body, {subtree: true, childList: true, attributes: true});
    take_up_brush();
}
"""


def build_page(model):
    """The Gradio page: a sketchpad, the 28x28 input beside it, and the probabilities as bars."""
    import gradio as gr  # imported here for the same reason as Keras

    with gr.Blocks(title="Draw a digit", analytics_enabled=False) as page:
        gr.Markdown("## Draw a digit\nDraw one digit, large, in the middle of the canvas; undo and clear "
                    "are above it. Beside it is the 28x28 image the network receives.")
        with gr.Row():
            canvas = gr.Sketchpad(
                label="Your drawing", elem_id="canvas", type="numpy", image_mode="RGBA", format="png",
                canvas_size=(CANVAS_SIZE, CANVAS_SIZE), fixed_canvas=True, layers=False, transforms=(),
                brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=BRUSH_RADIUS),
                scale=2, min_width=460)
            preview = gr.Image(label="What the network sees (28x28)", elem_id="preview", interactive=False,
                               image_mode="L", buttons=[], scale=1, min_width=300)
            probabilities = gr.Label(label="The network's answer", elem_id="answer",
                                     num_top_classes=len(CLASS_NAMES), value=EMPTY_ANSWER, scale=1, min_width=300)
        # Every change of the drawing (a stroke, undo, clear) asks again; while one answer is being
        # computed, only the latest drawing waits.
        canvas.change(lambda drawing: answer(model, drawing), inputs=canvas, outputs=[probabilities, preview],
                      trigger_mode="always_last", show_progress="hidden")
    return page


"""
## Run
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="your trained model, e.g. model.keras")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"local port (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model)
    except (OSError, ValueError) as error:   # a missing file, an unsafe or unsuitable model
        parser.exit(2, f"draw_demo.py: cannot use {args.model}: {error}\n")
    page = build_page(model)
    try:
        # On this machine only (127.0.0.1), never a public share link.
        _, local_url, _ = page.launch(server_name="127.0.0.1", server_port=args.port, share=False, quiet=True,
                                      prevent_thread_lock=True, footer_links=[], js=TAKE_UP_BRUSH_JS)
    except OSError as error:
        parser.exit(2, f"draw_demo.py: {error}\nIs port {args.port} taken? Choose another with --port.\n")
    print(f"Draw a digit at {local_url} (Ctrl+C stops the page)", flush=True)
    page.block_thread()


if __name__ == "__main__":
    main()
