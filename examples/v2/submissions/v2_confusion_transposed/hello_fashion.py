# Generated from solutions/v2/hello_fashion.py by `python -m autograder release` (hello_fashion v2); instructors: edit the source and release again.
# Students: replace each `raise NotImplementedError(...)` line with your code; keep the function names and parameters.
# Test submission v2/v2_confusion_transposed: confusion_matrix is transposed (rows are predictions)
# GENERATED from solutions/v2/hello_fashion.py by tests/submissions/factory.py
"""Hello world of deep learning: recognise clothing images (Fashion-MNIST) with a Keras network.

You implement the steps of the lecture as functions; the notebook ``hello_fashion.ipynb`` calls them,
and the autograder checks each one. Keep the function names and parameter names exactly as given.

    images (n, 28, 28) uint8 --preprocess--> x (n, 784) float32 in [0, 1], y (n, 10) one-hot
    build_model -> compile_model -> train_model (or train_one_epoch by hand) -> evaluate_model / predict_classes
    confusion_matrix tells which classes the trained network mixes up.
    save_model / load_model keep the trained network between sessions.

Fashion-MNIST has the same format as the lecture's MNIST digits (28x28 grey images, 60,000 for training and
10,000 for testing, 10 classes), but its classes are clothes: label 0 is ``CLASS_NAMES[0]`` ("T-shirt/top"),
..., label 9 is ``CLASS_NAMES[9]`` ("Ankle boot").

In your copy every graded body is ``raise NotImplementedError(...)``: replace that line with your code.
"""

import numpy as np
import keras

NUM_CLASSES = 10          # ten kinds of clothing
IMAGE_PIXELS = 28 * 28    # 784 inputs once an image is flattened
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")   # CLASS_NAMES[label]
OPTIMIZER_NAMES = ("sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam")


def preprocess(images, labels):
    """Turn raw Fashion-MNIST arrays into network inputs and targets.

    Args:
        images: uint8 array of shape (n, 28, 28), pixel values 0-255.
        labels: integer array of shape (n,), classes 0-9 (``CLASS_NAMES[label]`` names each).

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
    images = np.asarray(images)
    x = images.reshape(len(images), IMAGE_PIXELS).astype("float32") / 255.0
    y = np.eye(NUM_CLASSES, dtype="float32")[np.asarray(labels, dtype="int64")]
    return x, y


def build_model(hidden_units=(256, 128), activation="relu"):
    """Build the lecture's fully connected network as a ``keras.Sequential``.

    Args:
        hidden_units: sizes of the hidden layers, one ``Dense`` layer per entry
            (this assignment uses two layers, of 256 and 128; the lecture used two of 500).
        activation: activation of every hidden layer ("relu" here; the lecture used "sigmoid").

    Returns:
        An uncompiled ``keras.Sequential`` taking inputs of shape (784,) and ending in
        ``Dense(10, activation="softmax")``, so each output row is a probability per class.

    Example:
        >>> build_model().count_params()
        235146
    """
    # Hint: start the list of layers with keras.Input(shape=(IMAGE_PIXELS,)).
    layers = [keras.Input(shape=(IMAGE_PIXELS,))]
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation=activation))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    return keras.Sequential(layers)


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
    classes = {
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
        "adadelta": keras.optimizers.Adadelta,
        "adam": keras.optimizers.Adam,
        "adamax": keras.optimizers.Adamax,
        "nadam": keras.optimizers.Nadam,
    }
    name = str(optimizer).lower()
    if name not in classes:
        raise ValueError(f"Unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZER_NAMES)}.")
    kwargs = {} if learning_rate is None else {"learning_rate": learning_rate}
    model.compile(loss="categorical_crossentropy", optimizer=classes[name](**kwargs), metrics=["accuracy"])
    return model


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
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        batch = order[start:start + batch_size]
        yield x[batch], y[batch]


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
    updates = 0
    for xb, yb in minibatches(x, y, batch_size, rng):
        model.train_on_batch(xb, yb)
        updates += 1
    return updates


def train_model(model, x, y, batch_size=100, epochs=15, verbose=2):
    """Train with ``model.fit``: the lecture's ``model.fit(x_train, y_train, batch_size=100, epochs=20)``,
    with this assignment's 15 epochs.

    Args:
        model: a compiled model.
        x, y: the training data (preprocessed).
        batch_size: examples per mini-batch.
        epochs: passes over the whole training set.
        verbose: passed on to ``fit``: 2 prints one line per epoch, 0 prints nothing. In a notebook use
            0 or 2, never 1: ``fit``'s default progress bar redraws itself many times per epoch, and
            every redraw is stored in the notebook's output, which makes the file huge.

    Returns:
        The ``keras.callbacks.History`` that ``fit`` returns.
    """
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose)


def forward_loop(W, b, X):
    """Compute z = XW + b one example at a time, like stochastic gradient descent sees the data.

    Args:
        W: weights, shape (d_in, d_out).
        b: biases, shape (d_out,).
        X: a batch of examples, shape (n, d_in).

    Returns:
        z, shape (n, d_out), computed row by row in a Python loop (``X[i] @ W + b``).
    """
    z = np.empty((X.shape[0], W.shape[1]), dtype=np.result_type(X, W, b))
    for i in range(X.shape[0]):
        z[i] = X[i] @ W + b
    return z


def forward_matrix(W, b, X):
    """Compute z = XW + b for the whole batch with one matrix product (why mini-batches are fast).

    Args:
        W: weights, shape (d_in, d_out).
        b: biases, shape (d_out,).
        X: a batch of examples, shape (n, d_in).

    Returns:
        z, shape (n, d_out), from a single matrix multiplication (no Python loop).
    """
    return X @ W + b


def evaluate_model(model, x, y):
    """Measure loss and accuracy on a data set with ``model.evaluate``.

    Args:
        model: a compiled model.
        x, y: preprocessed inputs and one-hot targets.

    Returns:
        (loss, accuracy) as two Python floats.
    """
    loss, accuracy = model.evaluate(x, y, verbose=0)[:2]
    return float(loss), float(accuracy)


def predict_classes(model, x):
    """Predict the class of each input with ``model.predict``.

    Args:
        model: a trained model.
        x: preprocessed inputs, shape (n, 784).

    Returns:
        Integer numpy array of shape (n,): the most probable class per row (0-9; ``CLASS_NAMES`` names them).
    """
    # Hint: model.predict gives probabilities of shape (n, 10); pick the largest per row.
    probabilities = model.predict(x, verbose=0)
    return np.argmax(probabilities, axis=1).astype("int64")


def confusion_matrix(model, x, labels):
    predictions = predict_classes(model, x)
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype="int64")
    np.add.at(matrix, (predictions, np.asarray(labels, dtype="int64")), 1)
    return matrix


def save_model(model, path):
    """Save the whole model (architecture, weights, optimizer state) in Keras's native format.

    Args:
        model: the model to save.
        path: file name ending in ``.keras``.
    """
    model.save(path)


def load_model(path):
    """Load a model saved by ``save_model``; its predictions must equal the original's.

    Args:
        path: a ``.keras`` file.

    Returns:
        The loaded ``keras.Model``.
    """
    return keras.models.load_model(path)
