"""Graders for save_model(model, path) and load_model(path), checked in separate processes."""

import numpy as np
import pytest

from autograder.artifacts import inert
from autograder.grading import expect, probe
from autograder.numpy_model import ACTIVATIONS


def _known_probabilities(inputs):
    data = inputs.public_arrays("known_model")
    return ACTIVATIONS["softmax"](data["x"].astype(np.float64) @ data["W"] + data["b"])


@pytest.mark.rubric("save_model.native")
def test_native_keras_file(artifacts, inputs):
    """Does save_model write a native .keras file that Keras reloads with the same predictions?"""
    record = artifacts.record("save_model")
    file = record.get("file") or {}
    expect(file.get("exists") is True, "save_model did not create a file at the path it was given; call "
                                       "model.save(path) with that path.")
    expect(not file.get("hdf5"), "save_model wrote an HDF5 file (model.save_weights or a legacy .h5 save); save the "
                                 "whole model in the native format with model.save(path), path ending in .keras.")
    members = file.get("members") or []
    expect(file.get("is_zip") is True and "config.json" in members and "model.weights.h5" in members,
           "The saved file is not a native .keras archive (it should hold config.json and model.weights.h5); use "
           "model.save(path).")
    expect(record.get("keras_loads_it") is True,
           f"keras.saving.load_model could not load the saved file: {inert(record.get('keras_error', 'unknown error'))}.")
    reloaded = artifacts.array("save_model", "reloaded_predictions")
    expect(reloaded.shape == _known_probabilities(inputs).shape
           and np.allclose(reloaded, _known_probabilities(inputs), atol=1e-5),
           "The model reloaded from your file predicts differently from the model you saved: save the trained "
           "weights, not a fresh model.")


@pytest.mark.rubric("load_model.predictions")
def test_loads_with_identical_predictions(artifacts, inputs):
    """Does load_model, in a fresh process, return a model with identical predictions?"""
    record = artifacts.record("load_model")
    expect(record.get("is_model") is True,
           f"load_model returned a {inert(record.get('returned_type'))}; return the keras.Model that "
           "keras.models.load_model(path) gives.")
    predictions = artifacts.array("load_model", "predictions")
    expected = _known_probabilities(inputs)
    expect(predictions.shape == expected.shape and np.allclose(predictions, expected, atol=1e-5),
           "The model you loaded predicts differently from the one that was saved.")


@probe("save_model")
def record_save_model(run):
    """Call save_model on the grader's known model with a path; record what the file it wrote is, and the
    predictions of that file reloaded here (after the allowlist check, with safe_mode)."""
    from autograder.harness.recorder import keras_file_info
    from autograder.harness.values import Path
    from .models import known_linear_model
    data = run.inputs("known_model")
    result = run.call("save_model", known_linear_model(data), Path("saved_by_student.keras"),
                      collect=["saved_by_student.keras"])
    info, content = result.collected("saved_by_student.keras")
    run.record["file"] = keras_file_info(content, info.get("exists", False))
    if content is not None and run.record["file"].get("is_zip"):
        run.progress("loading the student's file with keras.saving.load_model(safe_mode=True)")
        try:
            reloaded = run.load_model_bytes(content, function="save_model")
            run.save("reloaded_predictions", np.asarray(reloaded(data["x"], training=False), dtype=np.float32))
            run.record["keras_loads_it"] = True
        except Exception as error:
            run.record["keras_loads_it"] = False
            run.record["keras_error"] = str(getattr(error, "info", {}).get("message") or error)[:300]


@probe("load_model")
def record_load_model(run):
    """Hand load_model a .keras file the grader saved (in another process: this one); record what it returned
    and that model's predictions, computed here."""
    from autograder.harness.recorder import model_bytes
    from autograder.harness.values import Path
    from .models import known_linear_model
    data = run.inputs("known_model")
    grader_file = model_bytes(known_linear_model(data))
    result = run.call("load_model", Path("saved_by_grader.keras", grader_file))
    run.record["returned_type"] = result.type_name
    run.record["is_model"] = result.is_model
    if result.is_model:
        model = result.model()
        run.save("predictions", np.asarray(model(data["x"], training=False), dtype=np.float32))
