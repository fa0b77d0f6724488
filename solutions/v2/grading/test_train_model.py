"""Graders for train_model(model, x, y, batch_size=100, epochs=15, verbose=2): training with model.fit."""

import numpy as np
import pytest

from autograder.artifacts import inert
from autograder.grading import expect, probe
from .cases import TRAIN_MODEL
from .replay import initial_weights, loss, same_weights, sgd_step, steps_taken

N, BATCH, EPOCHS = TRAIN_MODEL["n"], TRAIN_MODEL["batch_size"], TRAIN_MODEL["epochs"]


def _effect(artifacts, inputs):
    """(how many full-batch updates the weights show, or None; whether they changed; the replay's losses)."""
    data = inputs.public_arrays("training")
    x, y = data["x"][:N], data["y"][:N]
    states, losses = [initial_weights(data)], []
    for _ in range(EPOCHS + 20):  # a few more than asked, to tell the student how many were made
        losses.append(loss(states[-1], x, y))
        states.append(sgd_step(states[-1], x, y))
    after = [artifacts.array("train_model", f"after_{index}") for index in range(4)]
    return steps_taken(after, states), not same_weights(after, states[0]), losses[:EPOCHS]


@pytest.mark.rubric("train_model.fit_arguments")
def test_fit_arguments(artifacts, inputs):
    """Does train_model train with fit on all the data, with the given batch_size and epochs?"""
    record = artifacts.record("train_model")
    steps, changed, _ = _effect(artifacts, inputs)
    if steps == EPOCHS:
        return  # batch_size = n: one update per epoch, whatever order fit shuffles in
    calls = record.get("fit_calls") or []
    expect(changed and len(calls) >= 1, "train_model never trained the model: call model.fit(x, y, ...).")
    expect(len(calls) <= 1, f"train_model called model.fit {len(calls)} times; call it once with epochs=epochs.")
    split = calls[0].get("validation_split") if calls else None
    expect(not split, f"train_model passes validation_split={inert(split)}, so fit trains on only part of x; an "
                      "epoch is a pass over the whole training set. Drop validation_split.")
    params = record.get("params") or {}
    expect(params.get("epochs") in (None, EPOCHS),
           f"Asked for epochs={EPOCHS}, model.fit ran with epochs={inert(params.get('epochs'))}; pass epochs=epochs.")
    expect(False, f"With {N} examples and batch_size={BATCH}, fit makes one update per epoch, {EPOCHS} in all; "
                  f"the weights show {steps if steps is not None else 'other'} updates. Pass batch_size=batch_size and "
                  "epochs=epochs to fit, and train on all of x.")


@pytest.mark.rubric("train_model.history")
def test_returns_history(artifacts, inputs):
    """Does train_model return the History object from fit?"""
    record = artifacts.record("train_model")
    expect(record.get("is_history") is True,
           f"train_model returned a {inert(record.get('returned_type'))}; return what model.fit returns (a History).")
    losses = (record.get("history") or {}).get("loss", [])
    expect(len(losses) == EPOCHS, f"The History holds {len(losses)} epochs of loss; expected {EPOCHS}.")
    steps, _, replayed = _effect(artifacts, inputs)
    if steps == EPOCHS:  # one full batch per epoch: each epoch's loss is the replay's, before its update
        expect(np.allclose(losses, replayed, rtol=2e-3, atol=1e-4),
               "The History's losses are not those of the training the weights show; return the History that "
               "model.fit returns.")


@pytest.mark.rubric("train_model.defaults")
def test_defaults(artifacts, inputs):
    """Are the defaults batch_size=100 and epochs=15?"""
    record = artifacts.record("train_model")
    # Defaults of a function that does not train earn nothing (the stub already has this signature).
    _, changed, _ = _effect(artifacts, inputs)
    expect(changed and record.get("is_history") is True,
           "train_model does not train yet (it should train with model.fit and return its History), so its defaults "
           "are not checked.")
    # Read from the module's source by the recorder (a parse, nothing run), not reported by the student's process.
    defaults = (artifacts.record("inspect").get("source_defaults") or {}).get("train_model")
    expect(isinstance(defaults, dict), "hello_fashion.py has no top-level `def train_model(...)`; keep the signature "
                                       "train_model(model, x, y, batch_size=100, epochs=15, verbose=2).")
    parameters = {str(k): v for k, v in defaults.items()}
    expect(parameters.get("batch_size") == "100" and parameters.get("epochs") == "15",
           f"train_model's defaults are batch_size={parameters.get('batch_size')}, epochs={parameters.get('epochs')}; "
           "the assignment uses batch_size=100 and epochs=15. Keep the signature train_model(model, x, y, "
           "batch_size=100, epochs=15, verbose=2).")


@probe("inspect", function="train_model",
       params=lambda assignment, rubric: {"functions": list(assignment.module_functions)})
def record_signatures(run):
    """The graded functions' signatures as the student's process reports them (for messages), and the defaults
    of each top-level def in the module's source, read here (train_model's defaults are checked from those)."""
    import ast
    import os
    run.record["functions"] = run.signatures(run.params["functions"])
    try:
        with open(os.path.join(run.plan["submission"], run.plan["module"]), "rb") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return
    found = {}
    for node in tree.body:  # the last definition of a name wins, as when the module runs
        if isinstance(node, ast.FunctionDef) and node.name in run.params["functions"]:
            arguments = node.args.args + node.args.kwonlyargs
            given = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults + node.args.kw_defaults
            found[node.name] = {a.arg: (ast.unparse(d)[:100] if d is not None else None) for a, d in zip(arguments, given)}
    run.record["source_defaults"] = found


@probe("train_model", parallel=True, params=dict(TRAIN_MODEL))
def record_train_model(run):
    """Give train_model the grader's small network (compiled with SGD); record the weights it left (the graders
    replay the epochs), what it returned, and how it called fit (a claim, for the messages)."""
    from .models import small_mlp
    data = run.inputs("training")
    params = run.params
    x, y = data["x"][:params["n"]], data["y"][:params["n"]]
    result = run.call("train_model", small_mlp(data), x, y, batch_size=params["batch_size"], epochs=params["epochs"],
                      watch={0: {"methods": ["fit"]}}, after={0: "weights"})
    record = {"fit_calls": [call.get("kwargs", {}) for call in result.watched(0).get("fit", [])],
              "returned_type": result.type_name, "is_history": result.kind == "history"}
    if result.history is not None:
        record["params"] = {k: v for k, v in result.history["params"].items() if isinstance(v, (int, float, str))}
        record["history"] = {str(k): [float(v) for v in values][:1000] for k, values in result.history["history"].items()}
    run.record.update(record)
    for index, array in enumerate(result.after_weights(0)):
        run.save(f"after_{index}", array)
