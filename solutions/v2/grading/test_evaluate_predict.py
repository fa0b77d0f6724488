"""Graders for evaluate_model(model, x, y) and predict_classes(model, x), on a model the grader knows exactly."""

import numpy as np
import pytest

from autograder.artifacts import inert
from autograder.grading import describe_shape, expect, probe
from autograder.numpy_model import ACTIVATIONS, accuracy, cross_entropy


def _known(inputs):
    data = inputs.public_arrays("known_model")
    probabilities = ACTIVATIONS["softmax"](data["x"].astype(np.float64) @ data["W"] + data["b"])
    return data, probabilities


@pytest.mark.rubric("evaluate_model.returns_floats")
def test_returns_two_floats(artifacts, inputs):
    """Does evaluate_model return (loss, accuracy) as two Python floats?"""
    record = artifacts.record("evaluate_model")
    expect(record.get("returned_type") in ("tuple", "list") and record.get("length") == 2,
           f"evaluate_model returned a {inert(record.get('returned_type'))}"
           f"{' of length ' + str(record.get('length')) if record.get('length') is not None else ''}; return a pair "
           "(loss, accuracy), e.g. loss, accuracy = model.evaluate(x, y, verbose=0).")
    expect(all(kind in ("float", "float64") for kind in record.get("types", [])),
           f"evaluate_model returned values of types {inert(record.get('types'))}; convert each with float(...).")
    data, probabilities = _known(inputs)
    expected = (cross_entropy(probabilities, data["y"]), accuracy(probabilities, np.argmax(data["y"], axis=1)))
    values = record.get("values") or []
    measured = len(values) >= 2 and all(isinstance(v, (int, float)) for v in values[:2]) and (
        _matches(values[:2], expected) or _matches(values[1::-1], expected))
    expect(measured, "evaluate_model returned two floats, but not the model's loss and accuracy on the given data, so "
                     "it does not evaluate the model yet: return what model.evaluate(x, y) gives.")


def _matches(pair, expected) -> bool:
    return bool(np.isclose(pair[0], expected[0], rtol=1e-3, atol=1e-4) and np.isclose(pair[1], expected[1], atol=1e-4))


@pytest.mark.rubric("evaluate_model.values")
def test_values(artifacts, inputs):
    """Are the loss and accuracy those of model.evaluate on the given data?"""
    record = artifacts.record("evaluate_model")
    data, probabilities = _known(inputs)
    values = record.get("values") or []
    expect(len(values) >= 2 and all(isinstance(v, (int, float)) for v in values[:2]),
           "evaluate_model did not return two numbers (loss, accuracy).")
    loss, acc = values[:2]
    expected_loss = cross_entropy(probabilities, data["y"])
    expected_accuracy = accuracy(probabilities, np.argmax(data["y"], axis=1))
    swapped = np.isclose(loss, expected_accuracy, atol=1e-4) and np.isclose(acc, expected_loss, rtol=1e-3)
    expect(not swapped, "evaluate_model returned (accuracy, loss); the contract is (loss, accuracy), in the order "
                        "model.evaluate gives them.")
    expect(np.isclose(loss, expected_loss, rtol=1e-3, atol=1e-4),
           f"The loss you returned ({loss:.4f}) is not the model's loss on the given x and y. Return the first value "
           "of model.evaluate(x, y).")
    expect(np.isclose(acc, expected_accuracy, atol=1e-4),
           f"The accuracy you returned ({acc:.4f}) is not the model's accuracy on the given x and y. Return the "
           "second value of model.evaluate(x, y), a fraction between 0 and 1.")


@pytest.mark.rubric("predict_classes.shape")
def test_one_label_per_input(artifacts, inputs):
    """Does predict_classes return one integer label per input row?"""
    data, _ = _known(inputs)
    n = len(data["x"])
    predictions = artifacts.array("predict_classes", "predictions")
    expect(predictions.shape != (n, 10),
           f"predict_classes returned probabilities of shape ({n}, 10); return the most probable class of each row "
           "(np.argmax(probabilities, axis=1)).")
    expect(predictions.shape == (n,), f"predict_classes should return shape ({n},); yours has {describe_shape(predictions)}.")
    expect(predictions.dtype.kind in "iu",
           f"predict_classes returned dtype {predictions.dtype}; class labels are integers (.astype(int)).")
    _, probabilities = _known(inputs)
    agreement = float(np.mean(predictions == np.argmax(probabilities, axis=1)))
    expect(agreement >= 0.5, f"predict_classes returns one integer per input, but only {agreement:.0%} of them are the "
                             "model's predictions, so it does not predict with the model yet: use model.predict(x).")


@pytest.mark.rubric("predict_classes.values")
def test_most_probable_class(artifacts, inputs):
    """Is each label the model's most probable class, from model.predict?"""
    data, probabilities = _known(inputs)
    predictions = artifacts.array("predict_classes", "predictions")
    n = len(data["x"])
    expect(predictions.size == n, f"predict_classes returned {predictions.size} values for {n} inputs.")
    expected = np.argmax(probabilities, axis=1)
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    clear = (top_two[:, 1] - top_two[:, 0]) > 1e-5  # ignore near-ties that float32 may break either way
    wrong = int(np.count_nonzero((predictions.reshape(-1) != expected) & clear))
    expect(wrong == 0, f"{wrong} of {n} labels are not the model's most probable class. Use model.predict(x) and "
                       "np.argmax(..., axis=1) over the 10 probabilities of each row.")


@probe("evaluate_model")
def record_evaluate(run):
    """Call evaluate_model on the grader's known model and samples; record what it returned."""
    from .models import known_linear_model
    data = run.inputs("known_model")
    result = run.call("evaluate_model", known_linear_model(data), data["x"], data["y"])
    run.record["returned_type"] = result.type_name
    if result.kind in ("tuple", "list"):
        items = result.items()
        run.record["length"] = int(result.tree.get("length", len(items)))
        run.record["values"] = [item.value if item.kind == "json" and isinstance(item.value, (int, float))
                                and not isinstance(item.value, bool) else None for item in items[:4]]
        run.record["types"] = [item.type_name for item in items[:4]]


@probe("predict_classes")
def record_predict(run):
    """Call predict_classes on the grader's known model and samples; record the labels it returned."""
    from .models import known_linear_model
    data = run.inputs("known_model")
    result = run.call("predict_classes", known_linear_model(data), data["x"])
    run.record["returned_type"] = result.type_name
    run.save("predictions", result)
