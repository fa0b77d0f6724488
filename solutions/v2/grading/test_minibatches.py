"""Graders for minibatches(x, y, batch_size, rng): one shuffled epoch of (xb, yb) pairs."""

import math
from collections import Counter

import numpy as np
import pytest

from autograder.artifacts import ProbeFailed
from autograder.grading import expect, probe
from .cases import MINIBATCH_CASES, SIZE_CASES

CASES = {case["label"]: case for case in MINIBATCH_CASES}


def _describe(case) -> str:
    return f"n={case['n']}, batch_size={case['batch_size']}"


def _batches(artifacts, label):
    record = artifacts.record("minibatches", label)
    case = CASES[label]
    expect(not record.get("too_many"), f"With {_describe(case)}, minibatches kept yielding past one epoch "
                                       f"(more than {4 * case['n']} examples); stop after the last batch.")
    batches = record.get("batches")
    expect(isinstance(batches, list), "minibatches did not yield any batches.")
    return batches


def does_the_job(batches, n) -> bool:
    """Basic job of one call: it yields real rows of x (none made up) covering at least half of the examples.
    Properties (pairing, shuffling, the rng) only pay for calls that do it: yielding one row is no epoch."""
    ids = [i for batch in batches for i in batch]
    return bool(ids) and min(ids) >= 0 and len(set(ids)) * 2 >= n


def _working_batches(artifacts, labels):
    """The batches of each case in ``labels`` that does the basic job; raises when none does."""
    working = {}
    for label in labels:
        try:
            batches = _batches(artifacts, label)
        except ProbeFailed:
            continue
        if does_the_job(batches, CASES[label]["n"]):
            working[label] = batches
    expect(bool(working), "minibatches does not yield an epoch yet (real rows of x, covering the data), so this "
                          "property is not checked.")
    return working


def _coverage_problem(batches, n):
    counts = Counter(i for batch in batches for i in batch)
    unknown = counts.pop(-1, 0)
    missing = [i for i in range(n) if i not in counts]
    repeated = [i for i, c in counts.items() if c > 1]
    if unknown:
        return f"{unknown} yielded rows are not rows of x (were they modified?)"
    if missing:
        return (f"{len(missing)} of {n} examples never appeared (is the last, smaller batch dropped, or does the "
                "loop stop early?)")
    if repeated:
        return f"{len(repeated)} examples appeared more than once (sample without replacement: rng.permutation(n))"
    return None


@pytest.mark.rubric("minibatches.each_once")
def test_every_example_once(artifacts, credit):
    """Does every example appear exactly once per epoch?"""
    problems = []
    for label in SIZE_CASES:
        try:
            problem = _coverage_problem(_batches(artifacts, label), CASES[label]["n"])
        except ProbeFailed as error:
            problem = str(error)
        if problem:
            problems.append(f"With {_describe(CASES[label])}: {problem}.")
    if problems:
        credit.partial(1 - len(problems) / len(SIZE_CASES), " ".join(problems))


@pytest.mark.rubric("minibatches.batch_sizes")
def test_batch_sizes(artifacts, credit):
    """Does every batch hold batch_size examples, with only the last one smaller?"""
    problems = []
    for label in SIZE_CASES:
        case = CASES[label]
        try:
            sizes = [len(batch) for batch in _batches(artifacts, label)]
        except ProbeFailed as error:
            problems.append(f"With {_describe(case)}: {error}")
            continue
        n, size = case["n"], case["batch_size"]
        expected = [size] * (n // size) + ([n % size] if n % size else [])
        if min((i for batch in _batches(artifacts, label) for i in batch), default=-1) < 0:
            problems.append(f"With {_describe(case)}: the batches hold rows that are not rows of x.")
        elif sizes != expected:
            shown = sizes if len(sizes) <= 12 else sizes[:10] + ["..."]
            problems.append(f"With {_describe(case)} the batch sizes were {shown}; expected {math.ceil(n / size)} "
                            f"batches: {expected if len(expected) <= 12 else str(expected[:10])[:-1] + ', ...]'}.")
    if problems:
        credit.partial(1 - len(problems) / len(SIZE_CASES), " ".join(problems))


@pytest.mark.rubric("minibatches.paired")
def test_pairs(artifacts):
    """Does each yielded y row still belong to its x row?"""
    working = _working_batches(artifacts, [case["label"] for case in MINIBATCH_CASES])
    for label in working:
        case = CASES[label]
        record = artifacts.record("minibatches", label)
        expect(record.get("paired") is True,
               f"With {_describe(case)}, some yb rows do not belong to their xb rows: shuffle x and y with the same "
               "index order (x[batch], y[batch]), never separately.")


@pytest.mark.rubric("minibatches.shuffled")
def test_shuffled(artifacts):
    """Is the order of the examples shuffled?"""
    order = [i for batch in _working_batches(artifacts, ["first"])["first"] for i in batch]
    expect(order != sorted(order), "The examples come out in their original order; shuffle them each epoch "
                                   "(rng.permutation(len(x))) so each mini-batch is a random sample.")


@pytest.mark.rubric("minibatches.rng")
def test_shuffle_uses_rng(artifacts):
    """Does all randomness come from rng, so the same seed gives the same batches?"""
    first = _working_batches(artifacts, ["first"])["first"]
    expect(first == _batches(artifacts, "same_seed"),
           "Two calls with generators of the same seed gave different batches: take every random choice from the "
           "rng argument (rng.permutation / rng.shuffle), not from np.random or random.")
    expect(first != _batches(artifacts, "other_seed"),
           "Generators with different seeds gave the same batches: the order must come from rng.")


@probe("minibatches", params={"cases": [dict(c) for c in MINIBATCH_CASES]})
def record_minibatches(run):
    """Drain minibatches for each case (grader-chosen n, batch size and seed); record which rows of x each
    yielded batch holds, and whether its y rows belong to them."""
    from autograder.harness.executor import RowIndex
    from autograder.harness.values import Rng
    data = run.inputs()
    x, y = data["x"], data["y"]
    rows = RowIndex(x)
    outcomes = {}
    for case in run.params["cases"]:
        label, n = case["label"], case["n"]
        with run.case(label):
            result = run.call("minibatches", x[:n], y[:n], case["batch_size"], Rng(case["seed"]),
                              iterate={"max_items": 2000, "max_rows": 4 * n})
            batches, paired = [], True
            for item in result.items():
                xb, yb = item.pair("a pair (xb, yb)")
                ids = rows.ids(xb.array())
                labels = yb.array()
                labels = np.argmax(labels, axis=1) if labels.ndim == 2 else labels.reshape(-1)
                if len(labels) != len(ids) or any(i >= 0 and data["labels"][i] != label_of
                                                  for i, label_of in zip(ids, labels)):
                    paired = False
                batches.append(ids)
            outcomes[label] = {"batches": batches, "paired": paired, "too_many": result.truncated}
    run.record["cases"] = outcomes
