# Generated from solutions/v1/hello_mnist.py by `python -m autograder release` (hello_mnist v1); instructors: edit the source and release again.
# Students: replace each `raise NotImplementedError(...)` line with your code; keep the function names and parameters.
"""Hello world of deep learning: recognise handwritten digits (MNIST) with a Keras network.

You implement the steps of the lecture as functions; the notebook ``hello_mnist.ipynb`` calls them,
and the autograder checks each one. Keep the function names and parameter names exactly as given.

    images (n, 28, 28) uint8 --preprocess--> x (n, 784) float32 in [0, 1], y (n, 10) one-hot
    build_model -> compile_model -> train_model (or train_one_epoch by hand) -> evaluate_model / predict_digits
    save_model / load_model keep the trained network between sessions.

In your copy every graded body is ``raise NotImplementedError(...)``: replace that line with your code.
"""

import numpy as np
import keras

NUM_CLASSES = 10          # digits 0-9
IMAGE_PIXELS = 28 * 28    # 784 inputs once an image is flattened
OPTIMIZER_NAMES = ("sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam")


def preprocess(images, labels):
    """Turn raw MNIST arrays into network inputs and targets.

    Args:
        images: uint8 array of shape (n, 28, 28), pixel values 0-255.
        labels: integer array of shape (n,), digits 0-9.

    Returns:
        (x, y): x is float32 of shape (n, 784) with values in [0, 1];
        y is the one-hot encoding of labels, float32 of shape (n, 10).

    Example:
        >>> x, y = preprocess(x_train[:2], y_train[:2])
        >>> x.shape, y.shape, y[0].argmax() == y_train[0]
        ((2, 784), (2, 10), True)
    """
    # Hint: reshape each 28x28 image into a row of 784 numbers and convert to float32 *before* dividing
    # by 255. For the one-hot labels, np.eye(NUM_CLASSES, dtype="float32")[labels] picks one row of the
    # identity matrix per label; keras.utils.to_categorical(labels, NUM_CLASSES).astype("float32") works
    # too (in Keras 3 it has no dtype argument and returns float64, hence the astype).
    raise NotImplementedError("Replace this line with your code.")


def build_model(hidden_units=(500, 500), activation="sigmoid"):
    """Build the lecture's fully connected network as a ``keras.Sequential``.

    Args:
        hidden_units: sizes of the hidden layers, one ``Dense`` layer per entry
            (the lecture uses two layers of 500).
        activation: activation of every hidden layer ("sigmoid" in the lecture; try "relu").

    Returns:
        An uncompiled ``keras.Sequential`` taking inputs of shape (784,) and ending in
        ``Dense(10, activation="softmax")``, so each output row is a probability per digit.

    Example:
        >>> build_model().count_params()
        648010
    """
    # Hint: start the list of layers with keras.Input(shape=(IMAGE_PIXELS,)).
    raise NotImplementedError("Replace this line with your code.")


def compile_model(model, optimizer="adam", learning_rate=None):
    """Configure training: categorical cross-entropy loss, an optimizer, and the accuracy metric.

    Args:
        model: a model from ``build_model``.
        optimizer: one of "sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam",
            in any letter case.
        learning_rate: the optimizer's learning rate; ``None`` keeps the Keras default.

    Returns:
        The same model, compiled.

    Raises:
        ValueError: for an optimizer name outside the list above.
    """
    # Hint: the optimizers live in keras.optimizers (keras.optimizers.SGD, .RMSprop, .Adagrad, ...);
    # create the object yourself so you can pass learning_rate.
    raise NotImplementedError("Replace this line with your code.")


def minibatches(x, y, batch_size, rng):
    """Yield one epoch of mini-batches in a random order.

    Args:
        x: inputs, shape (n, ...).
        y: targets, shape (n, ...), row i belongs to x[i].
        batch_size: examples per batch; the last batch holds what is left and may be smaller.
        rng: a ``numpy.random.Generator``; all randomness comes from it, so the same seed gives the
            same batches.

    Yields:
        (xb, yb) pairs. Over one epoch every example appears exactly once, and x/y rows stay paired.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> [len(xb) for xb, yb in minibatches(x[:250], y[:250], 100, rng)]
        [100, 100, 50]
    """
    # Hint: shuffle the *indices* (rng.permutation(n)), then slice them batch_size at a time.
    raise NotImplementedError("Replace this line with your code.")


def train_one_epoch(model, x, y, batch_size, rng):
    """Train for one epoch by hand, the way the lecture draws it: one update per mini-batch.

    Args:
        model: a compiled model.
        x, y: the training data (preprocessed).
        batch_size: examples per mini-batch.
        rng: ``numpy.random.Generator`` passed on to ``minibatches``.

    Returns:
        The number of parameter updates made (that is, the number of mini-batches).
    """
    # Hint: loop over minibatches(...) and call model.train_on_batch(xb, yb) once per batch.
    raise NotImplementedError("Replace this line with your code.")


def train_model(model, x, y, batch_size=100, epochs=20):
    """Train with ``model.fit``: the lecture's ``model.fit(x_train, y_train, batch_size=100, epochs=20)``.

    Args:
        model: a compiled model.
        x, y: the training data (preprocessed).
        batch_size: examples per mini-batch.
        epochs: passes over the whole training set.

    Returns:
        The ``keras.callbacks.History`` that ``fit`` returns.

    Pass ``verbose=2`` to ``fit`` (one line per epoch) or ``verbose=0`` (nothing), never the default
    progress bar: it redraws itself many times per epoch, and in a notebook every redraw is stored in the
    cell's output, which makes the file huge. The grader does not mind which of 0 and 2 you choose.
    """
    raise NotImplementedError("Replace this line with your code.")


def forward_loop(W, b, X):
    """Compute z = XW + b one example at a time, like stochastic gradient descent sees the data.

    Args:
        W: weights, shape (d_in, d_out).
        b: biases, shape (d_out,).
        X: a batch of examples, shape (n, d_in).

    Returns:
        z, shape (n, d_out), computed row by row in a Python loop (``X[i] @ W + b``).
    """
    raise NotImplementedError("Replace this line with your code.")


def forward_matrix(W, b, X):
    """Compute z = XW + b for the whole batch with one matrix product (why mini-batches are fast).

    Args:
        W: weights, shape (d_in, d_out).
        b: biases, shape (d_out,).
        X: a batch of examples, shape (n, d_in).

    Returns:
        z, shape (n, d_out), from a single matrix multiplication (no Python loop).
    """
    raise NotImplementedError("Replace this line with your code.")


def evaluate_model(model, x, y):
    """Measure loss and accuracy on a data set with ``model.evaluate``.

    Args:
        model: a compiled model.
        x, y: preprocessed inputs and one-hot targets.

    Returns:
        (loss, accuracy) as two Python floats.
    """
    raise NotImplementedError("Replace this line with your code.")


def predict_digits(model, x):
    """Predict the digit of each input with ``model.predict``.

    Args:
        model: a trained model.
        x: preprocessed inputs, shape (n, 784).

    Returns:
        Integer numpy array of shape (n,): the most probable digit per row.
    """
    # Hint: model.predict gives probabilities of shape (n, 10); pick the largest per row.
    raise NotImplementedError("Replace this line with your code.")


def save_model(model, path):
    """Save the whole model (architecture, weights, optimizer state) in Keras's native format.

    Args:
        model: the model to save.
        path: file name ending in ``.keras``.
    """
    raise NotImplementedError("Replace this line with your code.")


def load_model(path):
    """Load a model saved by ``save_model``; its predictions must equal the original's.

    Args:
        path: a ``.keras`` file.

    Returns:
        The loaded ``keras.Model``.
    """
    raise NotImplementedError("Replace this line with your code.")
