# Generated from solutions/v2/test_hello_fashion.py by `python -m autograder release` (hello_fashion v2); instructors: edit the source and release again.
"""Public tests: run them next to your hello_fashion.py with `python -m pytest test_hello_fashion.py`.

They check the basics of every function on a few real Fashion-MNIST images in about a minute. The
autograder runs more (hidden) checks of the same functions, and it grades your model.keras; passing
these is a good sign, not a guarantee. A function you have not written yet fails with
NotImplementedError.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: no start-up messages

import numpy as np
import pytest

import hello_fashion as hf
from fashion_data import load_fashion_mnist

SAMPLE = 600

# Keras's own code (not yours) triggers these: a DeprecationWarning in recent numpy versions, and "Skipping
# variable loading for optimizer" when a model saved before any training is loaded (it has no optimizer state
# yet, so there is nothing to load; save and load are fine). They would only bury your results.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*"),
              pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer:UserWarning")]


@pytest.fixture(scope="module")
def fashion_sample():
    (x_train, y_train), _ = load_fashion_mnist()
    return x_train[:SAMPLE], y_train[:SAMPLE]


def preprocessed(fashion_sample):
    """Your preprocess, called inside each test so an unfinished one fails that test, not a fixture."""
    images, labels = fashion_sample
    x, y = hf.preprocess(images, labels)
    return np.asarray(x), np.asarray(y), labels


def test_preprocess(fashion_sample):
    images, labels = fashion_sample
    x, y = hf.preprocess(images, labels)
    assert x.shape == (SAMPLE, 784) and x.dtype == np.float32, "x should be float32 of shape (n, 784)"
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5, "pixels should be scaled to [0, 1]"
    assert y.shape == (SAMPLE, 10) and y.dtype == np.float32, "y should be one-hot float32 of shape (n, 10)"
    assert np.array_equal(np.argmax(y, axis=1), labels), "y's rows should be the one-hot labels, in order"


def test_build_model():
    import keras
    model = hf.build_model()
    assert isinstance(model, keras.Sequential)
    assert model.input_shape == (None, 784)
    assert model.output_shape == (None, 10)
    assert model.count_params() == 235_146, "784-256-128-10 has 235,146 parameters"
    assert [layer.get_config()["activation"] for layer in model.layers] == ["relu", "relu", "softmax"], \
        "by default the hidden layers use relu and the output layer softmax"
    small = hf.build_model(hidden_units=(32,), activation="sigmoid")
    assert [layer.units for layer in small.layers] == [32, 10]
    assert small.layers[0].get_config()["activation"] == "sigmoid"
    assert small.layers[-1].get_config()["activation"] == "softmax"


@pytest.mark.parametrize("name", ["sgd", "RMSprop", "adagrad", "Adadelta", "ADAM", "adamax", "nadam"])
def test_compile_model_optimizers(name):
    model = hf.compile_model(hf.build_model(hidden_units=(8,)), optimizer=name, learning_rate=0.05)
    assert model is not None, "compile_model should return the model"
    assert type(model.optimizer).__name__.lower() == name.lower()
    assert np.isclose(float(model.optimizer.learning_rate), 0.05)


def test_compile_model_loss_and_metric(fashion_sample):
    x, y, labels = preprocessed(fashion_sample)
    model = hf.compile_model(hf.build_model(hidden_units=(8,)))
    results = model.evaluate(x[:100], y[:100], verbose=0, return_dict=True)
    assert "loss" in results and any("acc" in name for name in results), "compile with metrics=['accuracy']"
    assert 1.0 < results["loss"] < 5.0, "an untrained network's categorical cross-entropy is about 2.3"


def test_minibatches(fashion_sample):
    x, y, _ = preprocessed(fashion_sample)
    rng = np.random.default_rng(0)
    batches = list(hf.minibatches(x[:250], y[:250], 100, rng))
    assert [len(xb) for xb, yb in batches] == [100, 100, 50], "three batches: 100, 100 and the last 50"
    rows = np.concatenate([xb for xb, yb in batches])
    assert len({row.tobytes() for row in rows}) == 250, "every example exactly once per epoch"
    again = list(hf.minibatches(x[:250], y[:250], 100, np.random.default_rng(0)))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again)), "same seed, same batches"
    assert not np.array_equal(rows, x[:250]), "the order should be shuffled"


def test_train_one_epoch(fashion_sample):
    x, y, _ = preprocessed(fashion_sample)
    model = hf.compile_model(hf.build_model(hidden_units=(16,)))
    updates = hf.train_one_epoch(model, x[:250], y[:250], 64, np.random.default_rng(1))
    assert updates == 4, "250 examples in batches of 64 make 4 updates"


def test_train_model(fashion_sample):
    x, y, _ = preprocessed(fashion_sample)
    model = hf.compile_model(hf.build_model(hidden_units=(16,)))
    history = hf.train_model(model, x, y, batch_size=50, epochs=2, verbose=0)
    assert history.params["epochs"] == 2 and history.params["steps"] == SAMPLE // 50
    assert len(history.history["loss"]) == 2


def test_forward_loop_and_matrix():
    rng = np.random.default_rng(2)
    W, b, X = rng.normal(size=(20, 5)), rng.normal(size=5), rng.normal(size=(30, 20))
    expected = X @ W + b
    assert np.allclose(hf.forward_loop(W, b, X), expected)
    assert np.allclose(hf.forward_matrix(W, b, X), expected)


def test_evaluate_and_predict(fashion_sample):
    x, y, labels = preprocessed(fashion_sample)
    model = hf.compile_model(hf.build_model(hidden_units=(32,)))
    hf.train_model(model, x, y, batch_size=50, epochs=2, verbose=0)
    loss, accuracy = hf.evaluate_model(model, x, y)
    assert isinstance(loss, float) and isinstance(accuracy, float)
    assert 0.0 <= accuracy <= 1.0 and loss > 0.0
    classes = hf.predict_classes(model, x)
    assert classes.shape == (SAMPLE,) and np.issubdtype(classes.dtype, np.integer)
    assert np.isclose(np.mean(classes == labels), accuracy, atol=0.01)


def pixel_reader(classes):
    """A network whose answer is known: an image with only pixel p lit is read as class classes[p]."""
    import keras
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, activation="softmax")])
    kernel = np.zeros((784, 10), dtype="float32")
    kernel[np.arange(len(classes)), classes] = 10.0
    model.layers[0].set_weights([kernel, np.zeros(10, dtype="float32")])
    return model


def test_confusion_matrix():
    # Six images: three T-shirts (class 0), two shirts (6) and a sneaker (7). The network reads them as
    # T-shirt, shirt, shirt, T-shirt, shirt, sneaker.
    labels = np.array([0, 0, 0, 6, 6, 7])
    predicted = np.array([0, 6, 6, 0, 6, 7])
    x = np.eye(len(labels), 784, dtype="float32")  # image p lights pixel p only
    matrix = np.asarray(hf.confusion_matrix(pixel_reader(predicted), x, labels))
    assert matrix.shape == (10, 10) and np.issubdtype(matrix.dtype, np.integer), \
        "the confusion matrix is an integer array of shape (10, 10)"
    assert matrix.sum() == len(labels), "every image is counted exactly once"
    expected = np.zeros((10, 10), dtype="int64")
    expected[0, 0], expected[0, 6], expected[6, 0], expected[6, 6], expected[7, 7] = 1, 2, 1, 1, 1
    if np.array_equal(matrix, expected.T):
        pytest.fail("the matrix is transposed: rows are true classes, columns predictions "
                    "(entry [i, j] counts images of class i predicted as j)")
    assert np.array_equal(matrix, expected), \
        f"entry [i, j] counts images of true class i predicted as j; expected\n{expected}\ngot\n{matrix}"


def test_save_and_load(tmp_path, fashion_sample):
    x, y, _ = preprocessed(fashion_sample)
    model = hf.compile_model(hf.build_model(hidden_units=(16,)))
    # One update first, so the saved file holds the optimizer's state, as after real training.
    model.train_on_batch(x[:32], y[:32])
    path = tmp_path / "model.keras"
    hf.save_model(model, str(path))
    assert path.exists(), "save_model should write the file it is given"
    loaded = hf.load_model(str(path))
    assert np.allclose(loaded.predict(x[:20], verbose=0), model.predict(x[:20], verbose=0), atol=1e-6)
