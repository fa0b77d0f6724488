"""The grader's numpy forward pass agrees with Keras, and refuses what it does not understand."""

import numpy as np
import pytest

from autograder.numpy_model import ACTIVATIONS, UnsupportedModel, accuracy, cross_entropy, from_export

pytestmark = pytest.mark.numeric  # CI runs these again with OPENBLAS_CORETYPE unset (another BLAS kernel)


def dense(units, activation, keys):
    return {"class_name": "Dense", "builtin": True, "config": {"units": units, "activation": activation,
                                                               "use_bias": True}, "weights": keys}


def test_forward_pass_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    arrays = {"a": rng.normal(size=(784, 8)), "b": rng.normal(size=8), "c": rng.normal(size=(8, 10)),
              "d": rng.normal(size=10)}
    description = {"input_shape": [None, 784], "layers": [dense(8, "relu", ["a", "b"]), dense(10, "softmax", ["c", "d"])]}
    model = from_export(description, arrays.__getitem__, max_parameters=10**6)
    x = rng.random((5, 784))
    expected = ACTIVATIONS["softmax"](np.maximum(x @ arrays["a"] + arrays["b"], 0) @ arrays["c"] + arrays["d"])
    # The grader computes in float32 (like Keras); the hand computation is float64. float32 sums of 784 terms
    # differ from float64 by ~1e-6 relative, and by how much depends on the BLAS kernel numpy picked.
    assert np.allclose(model.predict(x), expected, rtol=1e-4, atol=1e-6)
    assert model.parameter_count == 784 * 8 + 8 + 8 * 10 + 10 and model.output_units == 10


def test_flatten_input_and_dropout_are_understood():
    rng = np.random.default_rng(1)
    arrays = {"k": rng.normal(size=(784, 10)), "b": np.zeros(10)}
    description = {"input_shape": [None, 28, 28], "layers": [
        {"class_name": "Flatten", "builtin": True, "config": {}, "weights": []},
        {"class_name": "Dropout", "builtin": True, "config": {"rate": 0.5}, "weights": []},
        dense(10, "softmax", ["k", "b"])]}
    model = from_export(description, arrays.__getitem__, max_parameters=10**6)
    x = rng.random((3, 784))
    assert np.allclose(model.predict(x), ACTIVATIONS["softmax"](x @ arrays["k"]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("change, message", [
    ({"class_name": "Lambda"}, "does not accept"),
    ({"builtin": False}, "does not accept"),
    ({"config": {"units": 10, "activation": "evil", "use_bias": True}}, "activation"),
])
def test_unknown_layers_and_activations_are_refused(change, message):
    arrays = {"k": np.zeros((784, 10)), "b": np.zeros(10)}
    layer = {**dense(10, "softmax", ["k", "b"]), **change}
    with pytest.raises(UnsupportedModel, match=message):
        from_export({"input_shape": [None, 784], "layers": [layer]}, arrays.__getitem__, max_parameters=10**6)


def test_shape_mismatch_and_size_caps():
    arrays = {"k": np.zeros((700, 10)), "b": np.zeros(10)}
    with pytest.raises(UnsupportedModel, match="weights"):
        from_export({"input_shape": [None, 784], "layers": [dense(10, "softmax", ["k", "b"])]}, arrays.__getitem__,
                    max_parameters=10**6)
    arrays = {"k": np.zeros((784, 10)), "b": np.zeros(10)}
    with pytest.raises(UnsupportedModel, match="more than"):
        from_export({"input_shape": [None, 784], "layers": [dense(10, "softmax", ["k", "b"])]}, arrays.__getitem__,
                    max_parameters=100)
    with pytest.raises(UnsupportedModel, match="inputs of shape"):
        from_export({"input_shape": [None, 32, 32, 3], "layers": []}, arrays.__getitem__, max_parameters=100)


def test_metrics():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert accuracy(probabilities, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    one_hot = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert cross_entropy(probabilities, one_hot) == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4])))


@pytest.mark.slow
def test_agrees_with_keras_on_every_allowed_activation(tmp_path):
    """Keras computes the same outputs as the numpy forward pass for every allowlisted activation."""
    import subprocess
    import sys
    import json
    code = """
import json, sys, numpy as np, keras
names = json.loads(sys.argv[1]); rng = np.random.default_rng(0); x = rng.normal(size=(4, 784)).astype("float32")
out = {}
for name in names:
    m = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(6, activation=name),
                          keras.layers.BatchNormalization(), keras.layers.Dense(10, activation="softmax")])
    m.set_weights([w + rng.normal(size=w.shape).astype("float32") * 0.1 for w in m.get_weights()])
    out[name] = {"weights": [w.tolist() for w in m.get_weights()], "y": m.predict(x, verbose=0).tolist()}
json.dump({"x": x.tolist(), "out": out}, open(sys.argv[2], "w"))
"""
    names = sorted(ACTIVATIONS)
    target = tmp_path / "keras.json"
    subprocess.run([sys.executable, "-c", code, json.dumps(names), str(target)], check=True,
                   env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}, capture_output=True)
    data = json.loads(target.read_text())
    x = np.array(data["x"])
    for name in names:
        weights = [np.array(w) for w in data["out"][name]["weights"]]
        arrays = {str(i): w for i, w in enumerate(weights)}
        description = {"input_shape": [None, 784], "layers": [
            dense(6, name, ["0", "1"]),
            {"class_name": "BatchNormalization", "builtin": True, "config": {"axis": -1, "epsilon": 0.001,
                                                                               "center": True, "scale": True},
             "weights": ["2", "3", "4", "5"]},
            dense(10, "softmax", ["6", "7"])]}
        model = from_export(description, arrays.__getitem__, max_parameters=10**6)
        assert np.allclose(model.predict(x), np.array(data["out"][name]["y"]), atol=2e-5), name
