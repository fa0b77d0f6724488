"""Graders for the submitted model.keras and for a budgeted retrain of the student's own pipeline.

The model file is loaded only inside the sandbox (safe_mode, after the grader's own check of the
archive); here its exported layers are checked against the allowlist and the accuracy is computed
with numpy on the Fashion-MNIST test set, whose labels never enter a sandbox.
"""

import json

import numpy as np
import pytest

from autograder.artifacts import ProbeFailed, inert
from autograder.grading import Mismatch, StudentError, expect, linear_credit, probe
from autograder.numpy_model import UnsupportedModel, accuracy, from_export


def _rebuild(artifacts, inputs, thresholds, probe):
    """The exported model rebuilt with numpy and checked against its own outputs (once per probe)."""
    key = (str(artifacts.root), probe)
    if key not in _REBUILT:  # a scoring process grades one submission, so this stays small
        _REBUILT[key] = _rebuild_uncached(artifacts, inputs, thresholds, probe)
    return _REBUILT[key]


_REBUILT: dict = {}


def _rebuild_uncached(artifacts, inputs, thresholds, probe):
    record = artifacts.record(probe)
    description = record.get("model")
    expect(isinstance(description, dict), "No model was exported.")
    try:
        model = from_export(description, lambda key: artifacts.array(probe, key),
                            max_parameters=thresholds.max_parameters)
    except UnsupportedModel as error:
        raise Mismatch(f"The model cannot be graded: {error}.", flag="unsafe_model") from None
    sample = inputs.public_arrays("consistency")["x"]
    try:
        own = artifacts.array(probe, "sample_output")
    except ProbeFailed:
        raise Mismatch(f"The model could not make predictions: {inert(record.get('sample_error', 'unknown error'))}.") from None
    if own.shape[0] != len(sample) or own.reshape(len(sample), -1).shape[1] != model.output_units \
            or not np.allclose(model.predict(sample), own.reshape(len(sample), -1), atol=1e-4):
        raise Mismatch("The model's predictions do not match what its layers and weights compute, so it cannot be "
                       "trusted; use only standard Keras layers.", flag="model_inconsistent")
    return model


def _model_file_problem(intake):
    model_file = intake.get("model_file") or {}
    if not model_file.get("present"):
        return ("No model.keras was submitted. Train your model (the notebook's last section) and submit the file "
                "model.keras next to hello_fashion.py.", None)
    if not model_file.get("accepted"):
        return (f"model.keras was not loaded: {model_file.get('reason', 'it failed the safety check')}.",
                model_file.get("flag", "unsafe_model"))
    return None


@pytest.mark.rubric("trained_model.loads")
def test_model_file_loads(artifacts, inputs, thresholds, intake):
    """Does model.keras load safely as a 784-input, 10-class network of standard layers?"""
    problem = _model_file_problem(intake)
    if problem:
        raise Mismatch(*problem)
    model = _rebuild(artifacts, inputs, thresholds, "trained_model")
    expect(model.output_units == 10, f"The model has {model.output_units} outputs; a clothing classifier needs 10.")


def _accuracy_credit(credit, model, images, labels, *, required, zero, suspicious, summary, advice) -> None:
    """Full credit at ``required``, linear down to 0 at ``zero``; flag accuracy above ``suspicious``."""
    achieved = accuracy(model.predict(images), labels)
    if achieved > suspicious:
        credit.flag("suspicious_accuracy")
    text = summary.format(achieved=achieved, required=required)
    fraction = linear_credit(achieved, required, zero)
    if fraction < 1.0:
        credit.partial(fraction, f"{text} {advice}")
    else:
        credit.add_note(text)


@pytest.mark.rubric("trained_model.accuracy")
def test_test_accuracy(artifacts, inputs, thresholds, intake, credit):
    """Does the submitted model reach the required accuracy on the 10,000 Fashion-MNIST test images?"""
    problem = _model_file_problem(intake)
    if problem:
        raise Mismatch(*problem)
    model = _rebuild(artifacts, inputs, thresholds, "trained_model")
    expect(model.output_units == 10, f"The model has {model.output_units} outputs; a clothing classifier needs 10.")
    _accuracy_credit(credit, model, *inputs.labelled("test"), required=thresholds.trained_model_required,
                     zero=thresholds.trained_model_zero, suspicious=thresholds.suspicious_accuracy,
                     summary="Test accuracy {achieved:.2%}; required {required:.2%}.",
                     advice="Train longer (the assignment uses 15 epochs at batch size 100), check your preprocessing "
                            "(inputs in [0, 1]) and save the trained model, not a fresh one.")


@pytest.mark.rubric("trained_model.retrain")
def test_retrain_budget(artifacts, inputs, thresholds, credit):
    """Does your own pipeline (build_model, compile_model, train_model), retrained from scratch, learn?"""
    record = artifacts.record("retrain")
    model = _rebuild(artifacts, inputs, thresholds, "retrain")
    expect(model.output_units == 10, f"build_model's network has {model.output_units} outputs; it needs 10.")
    budget = json.loads((inputs.trusted / "retrain.json").read_text())
    seconds = record.get("train_seconds")
    took = f" Training took {seconds:.1f} s." if isinstance(seconds, (int, float)) else ""
    _accuracy_credit(credit, model, *inputs.labelled("retrain_eval"), required=thresholds.retrain_required,
                     zero=thresholds.retrain_zero, suspicious=thresholds.retrain_suspicious,
                     summary=f"Retrained with your build_model(hidden_units={tuple(budget['hidden_units'])}), "
                             "compile_model(optimizer='adam') and train_model on a fixed subset, your network "
                             "reached {achieved:.2%} on held-out images; required {required:.2%}." + took,
                     advice="Check that build_model ends in softmax, compile_model uses categorical cross-entropy, "
                            "and train_model passes batch_size and epochs to fit.")


@probe("trained_model", needs_module=False, only_with_model=True, parallel=True)
def record_trained_model(run):
    """The submitted model file, loaded here (it is never mounted where the student's code runs); record its
    layers, weights and outputs on grader inputs."""
    model = run.load_submitted_model()
    run.export(model, sample=run.inputs("consistency")["x"])


@probe("retrain", function="trained_model", timeout="retrain", parallel=True,
       params=lambda assignment, rubric: {"seed": rubric.retrain.seed, "epochs": rubric.retrain.epochs,
                                          "batch_size": rubric.retrain.batch_size,
                                          "hidden_units": list(rubric.retrain.hidden_units)})
def record_retrain(run):
    """The budgeted retrain: the student's build_model, its weights thrown away and drawn afresh here, then the
    student's compile_model and train_model on the secretly rotated and relabelled subset (inputs.py); record
    the trained network. The submitted model file is not where the student's code runs."""
    import time
    from autograder.harness.values import Handle
    from .models import reinitialized
    data = run.inputs()
    params = run.params
    run.seed(params["seed"])
    built = run.call("build_model", hidden_units=tuple(params["hidden_units"]))
    if not built.is_model:
        raise StudentError("build_model", "return", f"returned a {built.type_name}, not a Keras model, so there is "
                           "no network to retrain")
    # Whatever the student's code built in (pretrained weights), the retrain starts from fresh weights.
    fresh = reinitialized(built.model(), params["seed"])
    run.call("compile_model", fresh, optimizer="adam", keep_argument={"model": 0})
    x = data["x"]  # already inputs: rotated, relabelled (inputs.py)
    run.seed(params["seed"])
    started = time.perf_counter()
    trained = run.call("train_model", Handle("model"), x, data["y"], batch_size=params["batch_size"],
                       epochs=params["epochs"], prepare={0: "training"}, after={0: "model"})
    run.record["train_seconds"] = round(time.perf_counter() - started, 3)
    run.export(trained.after_model(0), sample=run.inputs("consistency")["x"])
