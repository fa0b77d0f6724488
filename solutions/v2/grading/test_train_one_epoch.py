"""Graders for train_one_epoch(model, x, y, batch_size, rng): the lecture's update-per-mini-batch loop."""

import math

import numpy as np
import pytest

from autograder.artifacts import inert
from autograder.grading import expect, probe
from .cases import TRAIN_ONE_EPOCH
from .replay import initial_weights, same_weights, sgd_step, steps_taken

N, BATCH, SEED = TRAIN_ONE_EPOCH["n"], TRAIN_ONE_EPOCH["batch_size"], TRAIN_ONE_EPOCH["seed"]
UPDATES = math.ceil(N / BATCH)


def _record(artifacts):
    return artifacts.record("train_one_epoch")


def _effect(artifacts, inputs):
    """(how many of the contract's updates the weights show, or None; whether they changed at all)."""
    data = inputs.public_arrays("training")
    x, y = data["x"][:N], data["y"][:N]
    states = [initial_weights(data)]
    order = np.random.default_rng(SEED).permutation(N)
    for start in range(0, N, BATCH):  # the batches reference_minibatches gives, in its order
        batch = order[start:start + BATCH]
        states.append(sgd_step(states[-1], x[batch], y[batch]))
    after = [artifacts.array("train_one_epoch", f"after_{index}") for index in range(4)]
    return steps_taken(after, states), not same_weights(after, states[0])


@pytest.mark.rubric("train_one_epoch.updates")
def test_one_update_per_batch(artifacts, inputs):
    """Does the epoch make one update (train_on_batch) per mini-batch, in the order minibatches gives them?"""
    record = _record(artifacts)
    steps, changed = _effect(artifacts, inputs)
    if steps == UPDATES:
        return
    calls = record.get("calls") or []
    expect(changed, "The model's weights did not change during the epoch: call model.train_on_batch(xb, yb) for "
                    "each mini-batch.")
    if not calls and record.get("fit_calls"):
        expect(False, f"train_one_epoch called model.fit {len(record['fit_calls'])} times and train_on_batch never; "
                      "the lecture's loop updates once per batch with model.train_on_batch(xb, yb).")
    if steps is not None:
        expect(False, f"The weights after the epoch are those of {steps} updates; {N} examples in batches of {BATCH} "
                      f"make {UPDATES}. Call train_on_batch once for every batch minibatches yields.")
    expect(False, f"The weights after the epoch are not those of one update per mini-batch of minibatches(x, y, "
                  f"batch_size, rng), in its order (your code made {len(calls)} train_on_batch calls; {UPDATES} are "
                  "expected). Loop over minibatches(x, y, batch_size, rng) and train on each (xb, yb) once.")


@pytest.mark.rubric("train_one_epoch.coverage")
def test_every_example_once(artifacts, inputs):
    """Are the mini-batches an epoch: every example once, batch_size at a time, labels paired?"""
    record = _record(artifacts)
    steps, changed = _effect(artifacts, inputs)
    if steps == UPDATES:
        return  # the weights are those of exactly that epoch
    expect(changed, "train_one_epoch did not train on any example (the weights did not change).")
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
def test_returns_update_count(artifacts, inputs):
    """Does train_one_epoch return how many updates it made?"""
    record = _record(artifacts)
    steps, changed = _effect(artifacts, inputs)
    returned = record.get("returned")
    expect(record.get("returned_type") == "int",
           f"train_one_epoch returned a {inert(record.get('returned_type'))}; return the number of updates as an int.")
    made = steps if steps is not None else len(record.get("calls") or [])
    expect(changed and returned == made and made > 0,
           f"train_one_epoch returned {returned} but made {made} updates; count one per train_on_batch call.")


@probe("train_one_epoch", params=dict(TRAIN_ONE_EPOCH))
def record_train_one_epoch(run):
    """Give train_one_epoch the grader's small network (compiled with SGD) and the contract's minibatches, so
    its check depends on train_one_epoch alone; record the weights it left (the graders replay the epoch),
    what it returned, and which Keras calls it made (claims, for the messages)."""
    from autograder.harness.values import Rng
    from .models import small_mlp
    data = run.inputs("training")
    n, batch_size = run.params["n"], run.params["batch_size"]
    x, y = data["x"][:n], data["y"][:n]
    result = run.call("train_one_epoch", small_mlp(data), x, y, batch_size, Rng(run.params["seed"]),
                      patch={"minibatches": "reference_minibatches"},
                      watch={0: {"methods": ["train_on_batch", "fit"], "rows_of": 1}}, after={0: "weights"})
    watched = result.watched(0)
    run.record.update({
        "calls": watched.get("train_on_batch", []),
        "fit_calls": [sorted(call.get("kwargs", {})) for call in watched.get("fit", [])],
        "returned": result.value if result.kind == "json" else None,
        "returned_type": result.type_name,
        "labels": [int(v) for v in data["labels"][:n]],
    })
    for index, array in enumerate(result.after_weights(0)):
        run.save(f"after_{index}", array)
