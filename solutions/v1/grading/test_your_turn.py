"""Graders for the guided notebook's three "your turn" cells, in notebook submissions only.

Each cell runs in the sandbox (``your_turn_<name>`` in the module built from the notebook), in a namespace of
the notebook's kept names and the inputs chosen here: new ones every run and unlike the notebook's own
(other optimizers' loss curves, another training-set size and batch size, another accuracy and test-set size).
Each cell runs twice, with two sets of inputs whose answers differ, so an answer that hard-codes a number (the
one the notebook printed, or any other) fails, and nothing has to be trained. The inputs are recorded by the
recorder beside what came back; the tests recompute the answers from them.
"""

import math

import numpy as np
import pytest

from autograder.grading import expect, probe

OPTIMIZERS = ("sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam")


RUNS = 2


def _call(run, name, cases):
    """Run the answer cell once per ``(recorded inputs, the cell's inputs)``; record each run's variables as plain
    values (None for what is not a plain number or text)."""
    runs = []
    for recorded, inputs in cases:
        returned = run.call(f"your_turn_{name}", inputs)
        runs.append({"inputs": recorded, "answer": [item.value if item.kind == "json" else None
                                                    for item in returned.items()]})
    run.record["runs"] = runs


@probe("best_optimizer", only_with_notebook=True)
def record_best_optimizer(run):
    """Loss curves whose lowest final loss is a random optimizer, a different one in each run."""
    rng = np.random.default_rng()
    bests = rng.choice(len(OPTIMIZERS), size=RUNS, replace=False)
    _call(run, "best_optimizer", [_loss_curves(rng, OPTIMIZERS[int(best)]) for best in bests])


def _loss_curves(rng, best):
    epochs = int(rng.integers(3, 9))
    curves = {}
    for name in OPTIMIZERS:
        start = float(rng.uniform(1.5, 2.5))
        end = float(rng.uniform(0.05, 0.2)) if name == best else float(rng.uniform(0.3, 1.2))
        # the best optimizer is not the one with the lowest loss somewhere earlier, nor on average
        curve = list(np.linspace(start, end, epochs))
        if name != best:
            curve[len(curve) // 2] = 0.01
        curves[name] = [round(float(value), 6) for value in curve]
    return {"loss_curves": curves, "epochs": epochs}, {"loss_curves": curves, "SIZES": {"optimizer_epochs": epochs}}


@probe("updates_per_epoch", only_with_notebook=True)
def record_updates_per_epoch(run):
    """Training-set sizes that the batch size does not divide, so the smaller last batch counts."""
    rng = np.random.default_rng()
    cases, seen = [], set()
    while len(cases) < RUNS:
        batch_size = int(rng.choice([32, 64, 100, 128, 250]))
        examples = batch_size * int(rng.integers(7, 40)) + int(rng.integers(1, batch_size))
        expected = math.ceil(examples / batch_size)
        if expected in seen:
            continue
        seen.add(expected)
        cases.append(({"examples": examples, "batch_size": batch_size},
                      {"x_hand": np.zeros((examples, 1), np.uint8), "BATCH_SIZE": batch_size, "updates": expected}))
    _call(run, "updates_per_epoch", cases)


@probe("test_error_rate", only_with_notebook=True)
def record_test_error_rate(run):
    rng = np.random.default_rng()
    cases = []
    for accuracy in rng.choice(np.arange(8000, 9900), size=RUNS, replace=False) / 10_000:
        test_images = int(rng.integers(2_000, 10_001))
        cases.append(({"test_accuracy": float(accuracy), "test_images": test_images},
                      {"test_accuracy": float(accuracy), "x_test": np.zeros((test_images, 1), np.uint8)}))
    _call(run, "test_error_rate", cases)


def _runs(artifacts, probe_name) -> list[tuple[dict, list]]:
    """(inputs, answer) of each run; the first wrong one decides the message."""
    record = artifacts.record(probe_name)
    return [(entry["inputs"], entry.get("answer") or []) for entry in record["runs"]]


@pytest.mark.rubric("best_optimizer.lowest_final_loss")
def test_best_optimizer(artifacts):
    """Does best_optimizer name the optimizer with the lowest training loss after the last epoch?"""
    for inputs, answer in _runs(artifacts, "best_optimizer"):
        _check_best_optimizer(inputs, answer)


def _check_best_optimizer(inputs, answer):
    curves = inputs["loss_curves"]
    best = min(curves, key=lambda name: curves[name][-1])
    given = answer[0] if answer else None
    expect(isinstance(given, str), f"best_optimizer should be an optimizer's name (text, a key of loss_curves); "
                                   f"the cell set it to {given!r}.")
    expect(given.lower() == best,
           f"With other loss curves than your notebook's ({len(curves)} optimizers, {inputs['epochs']} epochs each), "
           f"the lowest loss after the last epoch was {best!r}'s ({curves[best][-1]:.4f}), but your cell chose "
           f"{given!r}. Compute the answer from loss_curves (loss_curves[name][-1] is the final loss), rather than "
           "writing down the name your own run printed; the lowest loss earlier in training does not count.")


@pytest.mark.rubric("updates_per_epoch.counts_the_last_batch")
def test_updates_per_epoch(artifacts):
    """Is updates_per_epoch the number of mini-batches of BATCH_SIZE in len(x_hand) examples, the last one included?"""
    for inputs, answer in _runs(artifacts, "updates_per_epoch"):
        _check_updates(inputs, answer)


def _check_updates(inputs, answer):
    examples, batch_size = inputs["examples"], inputs["batch_size"]
    expected = math.ceil(examples / batch_size)
    given = answer[0] if answer else None
    expect(isinstance(given, (int, float)) and not isinstance(given, bool),
           f"updates_per_epoch should be a whole number; the cell set it to {given!r}.")
    if given == expected - 1:
        expect(False, f"For {examples:,} examples and BATCH_SIZE {batch_size}, one epoch makes {expected} updates; your "
                      f"cell gave {given}: the smaller last batch ({examples % batch_size} examples) is an update too. "
                      "Round up: math.ceil(len(x_hand) / BATCH_SIZE).")
    expect(given == expected,
           f"For {examples:,} examples (len(x_hand)) and BATCH_SIZE {batch_size}, one epoch makes {expected} updates "
           f"(one per mini-batch, rounding up); your cell gave {given}. Compute it from len(x_hand) and BATCH_SIZE, "
           "not from your own run's numbers.")


@pytest.mark.rubric("test_error_rate.from_accuracy")
def test_test_error_rate(artifacts, credit):
    """Is test_error_rate 1 - test_accuracy, and wrong_digits how many of len(x_test) images that is?"""
    checked = [_check_error_rate(inputs, answer) for inputs, answer in _runs(artifacts, "test_error_rate")]
    if all(fraction == 1.0 for fraction, _ in checked):
        return
    messages = [message for _, message in checked if message]
    if all(fraction == 0.5 for fraction, _ in checked):
        credit.fraction, credit.message = 0.5, "Half of this answer is right: " + messages[0]
        return
    expect(False, "Computed from the accuracy and the test set the check gave your cell: " + messages[0] +
           " Use test_accuracy and len(x_test), not the numbers of your own run.")


def _check_error_rate(inputs, answer):
    """(1.0, "") when right; (0.5, why) when one of the two variables is; (0.0, why) otherwise."""
    accuracy, images = inputs["test_accuracy"], inputs["test_images"]
    rate, wrong = (list(answer) + [None, None])[:2]
    expected_rate = 1 - accuracy
    expected_wrong = round(expected_rate * images)
    rate_ok = isinstance(rate, (int, float)) and not isinstance(rate, bool) and abs(rate - expected_rate) < 1e-6
    wrong_ok = isinstance(wrong, (int, float)) and not isinstance(wrong, bool) and abs(wrong - expected_wrong) <= 1 \
        and float(wrong).is_integer()
    if rate_ok and wrong_ok:
        return 1.0, ""
    problems = []
    if not rate_ok:
        problems.append(f"for a test accuracy of {accuracy} the error rate is {expected_rate:.4f}, and your cell gave "
                        f"{rate!r}" + (" (a percentage? give the fraction)" if isinstance(rate, (int, float))
                                       and abs(rate - 100 * expected_rate) < 1e-4 else ""))
    if not wrong_ok:
        problems.append(f"of {images:,} test images that is {expected_wrong:,} wrong (a whole number), and your cell "
                        f"gave {wrong!r}")
    return (0.5 if rate_ok or wrong_ok else 0.0), "; ".join(problems) + "."
