"""Graders for train_one_epoch(model, x, y, batch_size, rng): the lecture's update-per-mini-batch loop."""

import math

import pytest

from autograder.artifacts import inert
from autograder.grading import expect
from .cases import TRAIN_ONE_EPOCH

N, BATCH = TRAIN_ONE_EPOCH["n"], TRAIN_ONE_EPOCH["batch_size"]
UPDATES = math.ceil(N / BATCH)


def _record(artifacts):
    return artifacts.record("train_one_epoch")


@pytest.mark.rubric("train_one_epoch.updates")
def test_one_update_per_batch(artifacts):
    """Is model.train_on_batch called exactly once per mini-batch?"""
    record = _record(artifacts)
    calls = record.get("calls") or []
    if not calls and record.get("fit_calls"):
        expect(False, f"train_one_epoch called model.fit {len(record['fit_calls'])} times and train_on_batch never; "
                      "the lecture's loop updates once per batch with model.train_on_batch(xb, yb).")
    expect(len(calls) == UPDATES,
           f"For {N} examples and batch_size={BATCH}, one epoch has {UPDATES} mini-batches, so {UPDATES} calls to "
           f"train_on_batch; yours made {len(calls)}.")
    expect(record.get("weights_changed") is True, "The model's weights did not change during the epoch.")


@pytest.mark.rubric("train_one_epoch.coverage")
def test_every_example_once(artifacts):
    """Are the mini-batches an epoch: every example once, batch_size at a time, labels paired?"""
    record = _record(artifacts)
    calls = record.get("calls") or []
    expect(bool(calls), "train_on_batch was never called, so no example was trained on.")
    seen = sorted(i for call in calls for i in call.get("ids", []))
    expect(seen == list(range(N)), f"Over one epoch the {N} examples should each be trained on once; yours trained on "
                                   f"{len(seen)} rows ({len(set(seen) & set(range(N)))} distinct). Use minibatches(x, "
                                   "y, batch_size, rng).")
    sizes = [len(call.get("ids", [])) for call in calls]
    expect(max(sizes) <= BATCH, f"Batches of up to {max(sizes)} rows were passed to train_on_batch; batch_size was "
                                f"{BATCH}.")
    labels = record.get("labels", [])
    for call in calls:
        expect(all(labels[i] == label for i, label in zip(call.get("ids", []), call.get("labels", []))),
               "Some targets passed to train_on_batch do not belong to their inputs: pass xb and yb from the same "
               "mini-batch.")


@pytest.mark.rubric("train_one_epoch.returns_count")
def test_returns_update_count(artifacts):
    """Does train_one_epoch return how many updates it made?"""
    record = _record(artifacts)
    calls = len(record.get("calls") or [])
    returned = record.get("returned")
    expect(record.get("returned_type") == "int",
           f"train_one_epoch returned a {inert(record.get('returned_type'))}; return the number of updates as an int.")
    expect(returned == calls and calls > 0,
           f"train_one_epoch returned {returned} but made {calls} updates; count one per train_on_batch call.")
