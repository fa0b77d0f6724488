"""Student modules for the similarity tests: the released stub with its bodies filled in three ways.

``solution_a`` and ``solution_b`` are two genuinely independent correct implementations (different APIs,
structure and idioms); ``renamed_copy_of_a`` is ``solution_a`` with every local name changed, comments
rewritten and blank lines moved, the usual disguise of a copied module.
"""

from __future__ import annotations

import re
from pathlib import Path

STUB = Path(__file__).resolve().parents[2] / "assignments" / "v1" / "hello_mnist.py"

SOLUTION_A = {
    "preprocess": '''
    x = images.reshape(len(images), IMAGE_PIXELS).astype("float32") / 255.0
    y = keras.utils.to_categorical(labels, NUM_CLASSES).astype("float32")
    return x, y''',
    "build_model": '''
    layers = [keras.Input(shape=(IMAGE_PIXELS,))]
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation=activation))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    return keras.Sequential(layers)''',
    "compile_model": '''
    name = optimizer.lower()
    classes = {"sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop,
               "adagrad": keras.optimizers.Adagrad, "adadelta": keras.optimizers.Adadelta,
               "adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax, "nadam": keras.optimizers.Nadam}
    if name not in classes:
        raise ValueError(f"unknown optimizer {optimizer!r}")
    chosen = classes[name]() if learning_rate is None else classes[name](learning_rate=learning_rate)
    model.compile(loss="categorical_crossentropy", optimizer=chosen, metrics=["accuracy"])
    return model''',
    "minibatches": '''
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        chosen = order[start:start + batch_size]
        yield x[chosen], y[chosen]''',
    "train_one_epoch": '''
    updates = 0
    for xb, yb in minibatches(x, y, batch_size, rng):
        model.train_on_batch(xb, yb)
        updates += 1
    return updates''',
    "train_model": '''
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)''',
    "forward_loop": '''
    rows = []
    for i in range(X.shape[0]):
        rows.append(X[i] @ W + b)
    return np.array(rows)''',
    "forward_matrix": '''
    return X @ W + b''',
    "evaluate_model": '''
    loss, accuracy = model.evaluate(x, y, verbose=0)
    return float(loss), float(accuracy)''',
    "predict_digits": '''
    probabilities = model.predict(x, verbose=0)
    return np.argmax(probabilities, axis=1)''',
    "save_model": '''
    model.save(path)''',
    "load_model": '''
    return keras.models.load_model(path)''',
}

SOLUTION_B = {
    "preprocess": '''
    count = images.shape[0]
    flat = np.asarray(images, dtype=np.float32).reshape(count, -1)
    flat *= 1.0 / 255
    onehot = np.zeros((labels.shape[0], NUM_CLASSES), dtype=np.float32)
    onehot[np.arange(labels.shape[0]), labels] = 1.0
    return flat, onehot''',
    "build_model": '''
    net = keras.Sequential()
    net.add(keras.Input((IMAGE_PIXELS,)))
    idx = 0
    while idx < len(hidden_units):
        net.add(keras.layers.Dense(hidden_units[idx]))
        net.add(keras.layers.Activation(activation))
        idx += 1
    net.add(keras.layers.Dense(NUM_CLASSES))
    net.add(keras.layers.Softmax())
    return net''',
    "compile_model": '''
    key = str(optimizer).strip().lower()
    if key not in OPTIMIZER_NAMES:
        raise ValueError("optimizer must be one of " + ", ".join(OPTIMIZER_NAMES))
    opt = keras.optimizers.get(key)
    if learning_rate is not None:
        opt.learning_rate = learning_rate
    model.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return model''',
    "minibatches": '''
    n = x.shape[0]
    shuffled = np.arange(n)
    rng.shuffle(shuffled)
    pieces = np.array_split(shuffled, int(np.ceil(n / batch_size)))
    return ((x[p], y[p]) for p in pieces if p.size)''',
    "train_one_epoch": '''
    steps = [model.train_on_batch(a, b) for a, b in minibatches(x, y, batch_size, rng)]
    return len(steps)''',
    "train_model": '''
    history = model.fit(x=x, y=y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=2)
    return history''',
    "forward_loop": '''
    n, d_out = X.shape[0], W.shape[1]
    z = np.empty((n, d_out))
    i = 0
    while i < n:
        z[i, :] = np.dot(X[i], W) + b
        i += 1
    return z''',
    "forward_matrix": '''
    return np.matmul(X, W) + b[np.newaxis, :]''',
    "evaluate_model": '''
    results = model.evaluate(x, y, return_dict=True, verbose=0)
    return float(results["loss"]), float(results["accuracy"])''',
    "predict_digits": '''
    return model.predict(x, batch_size=256, verbose=0).argmax(axis=-1).astype(int)''',
    "save_model": '''
    keras.saving.save_model(model, path)''',
    "load_model": '''
    model = keras.saving.load_model(path, compile=True)
    return model''',
}

RENAMES = {"x": "inputs", "y": "targets", "layers": "stack", "units": "width", "name": "opt_name",
           "classes": "lookup", "chosen": "picked", "order": "perm", "start": "offset", "updates": "count",
           "xb": "batch_in", "yb": "batch_out", "rows": "out_rows", "i": "row", "loss": "test_loss",
           "accuracy": "test_accuracy", "probabilities": "probs"}


def fill(stub_text: str, bodies: dict[str, str]) -> str:
    """The stub with each function's ``raise NotImplementedError(...)`` (and hint comments) replaced."""
    out = stub_text
    for function, body in bodies.items():
        pattern = re.compile(rf"(def {function}\(.*?\"\"\"\n)(.*?)(    raise NotImplementedError\(.*?\)\n)", re.S)
        out, count = pattern.subn(lambda match: match.group(1) + body.strip("\n") + "\n", out, count=1)
        assert count == 1, function
    return out


def stub() -> str:
    return STUB.read_text(encoding="utf-8")


def solution_a() -> str:
    return fill(stub(), SOLUTION_A)


def solution_b() -> str:
    return fill(stub(), SOLUTION_B)


def renamed_copy_of_a() -> str:
    bodies = {}
    for function, body in SOLUTION_A.items():
        for old, new in RENAMES.items():
            body = re.sub(rf"(?<![\w.\"'])({old})(?![\w\"'=])", new, body)  # keyword arguments stay
        bodies[function] = "\n    # my own work\n" + body.replace("\n    return", "\n\n    return")
    text = fill(stub(), bodies)
    # Renamed parameters would change the graded signature, so a copier keeps those; comments differ.
    return text.replace("# Hint:", "# Note to self:")
