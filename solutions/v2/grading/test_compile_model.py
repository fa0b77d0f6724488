"""Graders for compile_model(model, optimizer="adam", learning_rate=None)."""

import numpy as np
import pytest

from autograder.artifacts import ProbeFailed, inert
from autograder.grading import expect, probe
from autograder.numpy_model import ACTIVATIONS, accuracy, cross_entropy
from .cases import (COMPILE_CASES, COMPILE_EVALUATION_ROWS, EVALUATED_CASE, KERAS_DEFAULT_LEARNING_RATE,
                    OPTIMIZERS)


def _case(artifacts, label):
    return artifacts.record("compile_model", label)


def _expected_evaluation(inputs):
    """Loss and accuracy of the grader's small network (784-32-10), computed with numpy."""
    data = inputs.public_arrays("training")
    x, y = data["x"][:COMPILE_EVALUATION_ROWS], data["y"][:COMPILE_EVALUATION_ROWS]
    hidden = ACTIVATIONS["sigmoid"](x.astype(np.float64) @ data["w0"] + data["b0"])
    probabilities = ACTIVATIONS["softmax"](hidden @ data["w1"] + data["b1"])
    return cross_entropy(probabilities, y), accuracy(probabilities, np.argmax(y, axis=1))


def _evaluated(artifacts):
    case = _case(artifacts, EVALUATED_CASE)
    expect(case.get("compiled") is True, f"After compile_model(model, {EVALUATED_CASE!r}) the model is not compiled: "
                                         "call model.compile(...) on the model you were given.")
    expect("evaluate" in case, f"Evaluating the model (model.test_on_batch) failed after compile_model: {inert(case.get('evaluate_error', 'no result'))}.")
    return case


@pytest.mark.rubric("compile_model.loss")
def test_loss(artifacts, inputs):
    """Is the loss categorical cross-entropy (on softmax probabilities)?"""
    case = _evaluated(artifacts)
    expected_loss, _ = _expected_evaluation(inputs)
    loss = case["evaluate"].get("loss")
    configured = inert(case.get("loss_config", "?"))
    expect(loss is not None and np.isclose(loss, expected_loss, rtol=1e-3, atol=1e-4),
           f"With your compile_model the loss on a known model and batch is {loss if loss is None else round(loss, 4)} "
           f"(loss configured as {configured}); categorical cross-entropy gives a different value. Use "
           "loss='categorical_crossentropy' (one-hot targets, probabilities from softmax, from_logits=False).")


@pytest.mark.rubric("compile_model.metric")
def test_accuracy_metric(artifacts, inputs):
    """Does the compiled model report the accuracy metric?"""
    case = _evaluated(artifacts)
    _, expected_accuracy = _expected_evaluation(inputs)
    metrics = {k: v for k, v in case["evaluate"].items() if k != "loss"}
    accuracy_like = {k: v for k, v in metrics.items() if "acc" in k}
    expect(bool(accuracy_like), f"The compiled model reports {sorted(metrics) or 'no metrics'}; add metrics=['accuracy'] "
                                "to model.compile.")
    expect(any(np.isclose(v, expected_accuracy, atol=1e-4) for v in accuracy_like.values()),
           f"The metric {sorted(accuracy_like)} does not measure classification accuracy on one-hot targets; use "
           "metrics=['accuracy'].")


def _summarise(problems: list[str], shown: int = 2) -> str:
    """The first problems in full, then how many more: one error repeated seven times helps nobody."""
    text = "; ".join(problems[:shown]) + "."
    if len(problems) > shown:
        text += f" The same kind of problem with {len(problems) - shown} more name(s)."
    return text


def _per_optimizer(artifacts, check) -> tuple[int, list[str]]:
    """Apply ``check(case, record) -> problem or None`` to every case; a name counts when all its cases pass.

    Returns the number of names that pass and the first problem of each name that does not.
    """
    right, problems = 0, []
    for key in OPTIMIZERS:
        wrong = []
        for case in (c for c in COMPILE_CASES if c["key"] == key):
            try:
                problem = check(case, _case(artifacts, case["label"]))
            except ProbeFailed as error:
                problem = f"optimizer={case['optimizer']!r}: {error}"
            if problem:
                wrong.append(problem)
        if wrong:
            problems.append(wrong[0])
        else:
            right += 1
    return right, problems


@pytest.mark.rubric("compile_model.optimizers")
def test_optimizers(artifacts, credit):
    """Does each of the seven names (sgd ... nadam, any letter case) create that Keras optimizer?"""
    def check(case, record):
        found, wanted = record.get("optimizer_class"), OPTIMIZERS[case["key"]]
        if found != wanted or not str(record.get("optimizer_module", "")).startswith("keras."):
            return f"optimizer={case['optimizer']!r} gave {inert(found) if found else 'no optimizer'}, expected keras.optimizers.{wanted}"
        return None

    right, problems = _per_optimizer(artifacts, check)
    if problems:
        credit.partial(right / len(OPTIMIZERS), f"{right} of {len(OPTIMIZERS)} names work. " + _summarise(problems)
                       + " Compare names case-insensitively (optimizer.lower()).")


@pytest.mark.rubric("compile_model.learning_rate")
def test_learning_rate(artifacts, credit):
    """Is learning_rate applied when given, and the Keras default kept when it is None?"""
    def check(case, record):
        rate = record.get("learning_rate")
        given = case["learning_rate"]
        wanted = given if given is not None else KERAS_DEFAULT_LEARNING_RATE[case["key"]]
        if isinstance(rate, (int, float)) and np.isclose(rate, wanted, rtol=1e-5):
            return None
        return (f"{OPTIMIZERS[case['key']]} with learning_rate={given} has learning rate {rate}, expected "
                f"{wanted}{' (the Keras default)' if given is None else ''}")

    right, problems = _per_optimizer(artifacts, check)
    if problems:
        credit.partial(right / len(OPTIMIZERS), _summarise(problems) + " Pass learning_rate to the optimizer only "
                       "when it is not None, e.g. keras.optimizers.Adam(learning_rate=learning_rate).")


@pytest.mark.rubric("compile_model.returns_model")
def test_returns_model(artifacts):
    """Does compile_model return the model it compiled?"""
    record = _case(artifacts, EVALUATED_CASE)
    expect(record.get("compiled") is True, f"After compile_model(model, {EVALUATED_CASE!r}) the model is not compiled, "
                                           "so there is nothing to return yet: call model.compile(...) first.")
    # The points rest on the returned model's own archive (compiled with the same optimizer and loss as the
    # model that was passed in); the identity the student's process reports only picks the message.
    if record.get("returned_compiled_as_given") is True:
        return
    expect(record.get("returned_type") in ("Sequential", "Functional", "Model") or record.get("returned_same_model"),
           f"compile_model returned a {inert(record.get('returned_type'))}; return the model you compiled (return model).")
    expect(False, "compile_model returned a model that is not compiled like the one it was given; return the model "
                  "you compiled (return model).")


@probe("compile_model", params={"cases": [dict(c) for c in COMPILE_CASES], "rows": COMPILE_EVALUATION_ROWS})
def record_compile_model(run):
    """Call compile_model on the grader's models for each optimizer name and learning rate; record how the
    model it was given came out (compiled? which optimizer, which rate, which loss and metrics) and, for one
    case, the loss and accuracy those settings compute here, on a known network and batch."""
    from .models import evaluate_with, small_mlp, tiny_model
    data = run.inputs("training")
    rows = run.params["rows"]
    x, y = data["x"][:rows], data["y"][:rows]
    tiny = tiny_model()
    outcomes = {}
    for case in run.params["cases"]:
        label = case["label"]
        with run.case(label):
            model = small_mlp(data, compiled=False) if case.get("evaluate") else tiny
            result = run.call("compile_model", model, optimizer=case["optimizer"],
                              learning_rate=case["learning_rate"], after={0: "compiled"})
            state = result.after(0)
            optimizer = state.get("optimizer") if isinstance(state.get("optimizer"), dict) else {}
            config = state.get("compile_config") if isinstance(state.get("compile_config"), dict) else {}
            outcome = {"returned_same_model": result.returned_argument == 0, "returned_type": result.type_name,
                       "compiled": bool(state.get("compiled")) and bool(optimizer)}
            if result.is_model:  # what the returned archive declares, read here: the model as compiled?
                declared = result.declared_compile_config() or {}
                declared_optimizer = declared.get("optimizer") if isinstance(declared.get("optimizer"), dict) else {}
                outcome["returned_compiled_as_given"] = bool(optimizer) and \
                    declared_optimizer.get("class_name") == optimizer.get("class_name") and \
                    str(declared.get("loss")) == str(config.get("loss"))
            if optimizer:
                outcome["optimizer_class"] = str(optimizer.get("class_name"))[:100]
                outcome["optimizer_module"] = str(optimizer.get("module"))[:100]
                settings = optimizer.get("config") if isinstance(optimizer.get("config"), dict) else {}
                rate = settings.get("learning_rate")
                if isinstance(rate, (int, float)) and not isinstance(rate, bool):
                    outcome["learning_rate"] = float(rate)
                else:
                    outcome["learning_rate_error"] = f"the learning rate is a {type(rate).__name__}, not a number"
            outcome["loss_config"] = str(config.get("loss"))[:300]
            outcome["metrics_config"] = str(config.get("metrics"))[:300]
            if case.get("evaluate") and outcome["compiled"]:
                run.progress("evaluating the compiled loss and metrics on a known model")
                try:
                    outcome["evaluate"] = evaluate_with(config, data, x, y)
                except Exception as error:
                    outcome["evaluate_error"] = f"{type(error).__name__}: {str(error)[:300]}"
            outcomes[label] = outcome
    run.record["cases"] = outcomes
