"""Graders for build_model(hidden_units=(256, 128), activation="relu")."""

import numpy as np
import pytest

from autograder.artifacts import ProbeFailed, inert
from autograder.grading import Mismatch, expect, probe
from autograder.numpy_model import UnsupportedModel, from_export
from .cases import BUILD_CASES


@probe("build_model", params={"cases": [{"label": c["label"], "kwargs": c["kwargs"],
                                         "export_weights": c.get("export_weights", False)} for c in BUILD_CASES]})
def record_build_model(run):
    """Call build_model with each case's arguments; record the returned model's layers (read back from the
    archive it saves to) and, for the default, its weights and its outputs on grader inputs."""
    from autograder.harness import export
    sample = run.inputs()["x"]
    for case in run.params["cases"]:
        label, kwargs = case["label"], dict(case["kwargs"])
        with run.case(label):
            if "hidden_units" in kwargs:
                kwargs["hidden_units"] = tuple(kwargs["hidden_units"])
            result = run.call("build_model", **kwargs)
            model = result.model()  # refused unless it is a plain Keras model of allowlisted layers
            description, arrays = export.describe_model(model, prefix=f"{label}_")
            # What class the student's object was, as the student's process reported it (the archive holds
            # only standard classes, or it was refused above).
            description.update(qualified_name=result.tree.get("class"), is_model=True,
                               is_sequential=bool(result.tree.get("is_sequential")),
                               exact_sequential=bool(result.tree.get("exact_sequential")))
            run.record[label] = description
            if case.get("export_weights"):
                for key, array in arrays.items():
                    run.save(key, array)
                run.save(f"{label}_output", np.asarray(model(export.sample_for(model, sample), training=False),
                                                       dtype=np.float32))

LECTURE_PARAMETERS = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10  # 235,146


def _call(case) -> str:
    args = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in case["kwargs"].items())
    return f"build_model({args})"


@pytest.fixture
def default_model(artifacts, inputs, thresholds):
    """The default model's record, after checking that its layers compute what the model outputs."""
    record = artifacts.record("build_model", "default")
    try:
        rebuilt = from_export(record, lambda key: artifacts.array("build_model", key),
                              max_parameters=thresholds.max_parameters)
    except (UnsupportedModel, ProbeFailed):
        return record  # the individual checks below say what is wrong with the layers
    sample = inputs.public_arrays("build_model")["x"]
    own_output = artifacts.array("build_model", "default_output")
    if own_output.shape != (len(sample), rebuilt.output_units) or not np.allclose(
            rebuilt.predict(sample), own_output, atol=1e-4):
        raise Mismatch("The model's output does not match what its Dense layers and weights compute, so its "
                       "structure cannot be checked. Build it from standard keras.layers only.",
                       flag="model_inconsistent")
    return record


def _dense_layers(record):
    return [layer for layer in record["layers"] if isinstance(layer, dict) and layer.get("class_name") == "Dense"]


def _expect_a_network(record, case) -> None:
    """Basic job: the returned model has layers that compute something (at least one Dense layer)."""
    expect(bool(_dense_layers(record)), f"{_call(case)} returned a model without any Dense layer, so it computes "
                                        "nothing yet; add the hidden and output layers.")


@pytest.mark.rubric("build_model.sequential")
def test_returns_sequential(default_model):
    """Does build_model return a keras.Sequential?"""
    expect(default_model.get("is_model") is True,
           f"build_model() returned a {inert(default_model.get('qualified_name'))}, not a Keras model.")
    expect(default_model.get("exact_sequential") is True,
           f"build_model() returned a {inert(default_model.get('qualified_name'))}; this term's network is a plain "
           "keras.Sequential (not a subclass or a functional Model).")
    _expect_a_network(default_model, BUILD_CASES[0])


@pytest.mark.rubric("build_model.input")
def test_input_shape(artifacts, default_model):
    """Does the network take flattened 784-pixel images as input?"""
    for case in BUILD_CASES:
        record = default_model if case["label"] == "default" else artifacts.record("build_model", case["label"])
        shape = record.get("input_shape")
        _expect_a_network(record, case)
        expect(shape == [None, 784],
               f"{_call(case)} takes inputs of shape {tuple(shape[1:]) if isinstance(shape, list) else shape}; "
               "expected (784,). Start the layers with keras.Input(shape=(784,)).")


@pytest.mark.rubric("build_model.hidden_layers")
def test_hidden_layers(artifacts, default_model, credit):
    """Is there one Dense layer per entry of hidden_units, with that many units and the given activation?"""
    problems = []
    for case in BUILD_CASES:
        try:
            record = default_model if case["label"] == "default" else artifacts.record("build_model", case["label"])
        except ProbeFailed as error:
            problems.append(f"{_call(case)}: {error}")
            continue
        others = [layer.get("class_name") for layer in record["layers"]
                  if isinstance(layer, dict) and layer.get("class_name") not in ("Dense", "InputLayer")]
        hidden = [(layer["config"].get("units"), layer["config"].get("activation"))
                  for layer in _dense_layers(record)][:-1]
        expected = [(units, case["activation"]) for units in case["hidden_units"]]
        if others:
            problems.append(f"{_call(case)} has layers other than Dense: {inert(', '.join(map(str, others)))}.")
        elif hidden != expected:
            problems.append(f"{_call(case)} has hidden Dense layers {inert(hidden or 'none')} as (units, activation); "
                            f"expected {expected}.")
    passed = len(BUILD_CASES) - len(problems)
    if problems:
        credit.partial(passed / len(BUILD_CASES), " ".join(problems) + " Create one keras.layers.Dense(units, "
                       "activation=activation) per entry of hidden_units, then the output layer.")


@pytest.mark.rubric("build_model.output_layer")
def test_output_layer(artifacts, default_model):
    """Does the network end in Dense(10) with a softmax activation?"""
    for case in BUILD_CASES:
        record = default_model if case["label"] == "default" else artifacts.record("build_model", case["label"])
        layers = [layer for layer in record["layers"] if isinstance(layer, dict)]
        expect(bool(layers), f"{_call(case)} returned a model without layers.")
        last = layers[-1]
        config = last.get("config", {})
        expect(last.get("class_name") == "Dense",
               f"The last layer of {_call(case)} is a {last.get('class_name')}; end with "
               "keras.layers.Dense(10, activation='softmax').")
        expect(config.get("units") == 10,
               f"The last layer of {_call(case)} has {config.get('units')} units; a 10-class classifier needs "
               "units=10 with a softmax activation.")
        expect(config.get("activation") == "softmax",
               f"The last layer of {_call(case)} uses activation={config.get('activation')!r}; use 'softmax' so "
               "each output row is a probability per class (the loss expects probabilities).")


@pytest.mark.rubric("build_model.parameter_count")
def test_parameter_count(artifacts, default_model):
    """Does the default network have this term's 784-256-128-10 size (235,146 parameters)?"""
    counted = sum(int(np.prod(shape)) for layer in default_model["layers"] if isinstance(layer, dict)
                  for shape in layer.get("weight_shapes", []))
    expect(counted == LECTURE_PARAMETERS and default_model.get("count_params") == LECTURE_PARAMETERS,
           f"build_model() has {counted:,} parameters; this term's 784-256-128-10 network has "
           f"{LECTURE_PARAMETERS:,}. Check the default hidden_units=(256, 128) and that every Dense layer has a bias.")
