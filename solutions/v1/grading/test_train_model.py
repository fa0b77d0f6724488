"""Graders for train_model(model, x, y, batch_size=100, epochs=20): training with model.fit."""

import math

import pytest

from autograder.artifacts import inert
from autograder.grading import expect
from .cases import TRAIN_MODEL

N, BATCH, EPOCHS = TRAIN_MODEL["n"], TRAIN_MODEL["batch_size"], TRAIN_MODEL["epochs"]


@pytest.mark.rubric("train_model.fit_arguments")
def test_fit_arguments(artifacts):
    """Does train_model call model.fit with the given batch_size and epochs, on all the data?"""
    record = artifacts.record("train_model")
    calls = record.get("fit_calls") or []
    expect(len(calls) >= 1, "train_model never called model.fit.")
    expect(len(calls) == 1, f"train_model called model.fit {len(calls)} times; call it once with epochs=epochs.")
    params = record.get("params") or {}
    expect(params.get("epochs") == EPOCHS,
           f"Asked for epochs={EPOCHS}, model.fit ran with epochs={params.get('epochs')}; pass epochs=epochs.")
    steps = math.ceil(N / BATCH)
    expect(params.get("steps") == steps,
           f"With {N} examples and batch_size={BATCH}, fit should run {steps} steps per epoch; yours ran "
           f"{params.get('steps')}. Pass batch_size=batch_size and train on all of x (no validation_split).")
    # A small split leaves the step count unchanged (90 of 100 examples still make 2 batches of 50), so
    # look at the argument itself: each epoch must be a pass over the whole training set.
    split = calls[0].get("validation_split")
    expect(not split, f"train_model passes validation_split={inert(split)}, so fit trains on only part of x; an "
                      "epoch is a pass over the whole training set. Drop validation_split.")


@pytest.mark.rubric("train_model.history")
def test_returns_history(artifacts):
    """Does train_model return the History object from fit?"""
    record = artifacts.record("train_model")
    expect(record.get("is_history") is True,
           f"train_model returned a {inert(record.get('returned_type'))}; return what model.fit returns (a History).")
    losses = (record.get("history") or {}).get("loss", [])
    expect(len(losses) == EPOCHS, f"The History holds {len(losses)} epochs of loss; expected {EPOCHS}.")


@pytest.mark.rubric("train_model.defaults")
def test_defaults(artifacts):
    """Are the defaults the lecture's batch_size=100 and epochs=20?"""
    record = artifacts.record("train_model")
    # Defaults of a function that does not train earn nothing (the stub already has this signature).
    expect(len(record.get("fit_calls") or []) == 1 and record.get("is_history") is True,
           "train_model does not train yet (it should call model.fit once and return its History), so its defaults "
           "are not checked.")
    functions = artifacts.record("inspect").get("functions", {})
    entry = functions.get("train_model") or {}
    expect(entry.get("present") is True, "hello_mnist.py has no function named `train_model`.")
    parameters = {p.get("name"): p.get("default") for p in entry.get("parameters") or [] if isinstance(p, dict)}
    expect(parameters.get("batch_size") == "100" and parameters.get("epochs") == "20",
           f"train_model's defaults are batch_size={parameters.get('batch_size')}, epochs={parameters.get('epochs')}; "
           "the lecture uses batch_size=100 and epochs=20. Keep the signature train_model(model, x, y, "
           "batch_size=100, epochs=20).")
