"""The graders' own replay of training, with numpy: what SGD on the grader's small network must produce.

The grader's network (``models.small_mlp``: 784 -> 32 sigmoid -> 10 softmax, categorical cross-entropy, plain
SGD at Keras's default rate) is handed to the student's training functions; the weights they leave are an
effect the student's process cannot claim away. Replaying the contract's updates here and comparing the
weights tells whether the function made exactly those updates (Keras's float32 steps agree with this float64
replay to ~1e-7, one step moves the weights by ~1e-4).
"""

from __future__ import annotations

import numpy as np

from .cases import SGD_LEARNING_RATE

TOLERANCE = 2e-5


def initial_weights(data: dict) -> list[np.ndarray]:
    return [np.asarray(data[key], dtype=np.float64) for key in ("w0", "b0", "w1", "b1")]


def _probabilities(weights, x):
    w0, b0, w1, b1 = weights
    hidden = 1.0 / (1.0 + np.exp(-(x @ w0 + b0)))
    logits = hidden @ w1 + b1
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return hidden, exp / exp.sum(axis=1, keepdims=True)


def loss(weights, x, y) -> float:
    """Keras's categorical cross-entropy of the network on (x, y), mean over the batch."""
    _, probabilities = _probabilities(weights, np.asarray(x, dtype=np.float64))
    return float(np.mean(-np.sum(y * np.log(np.clip(probabilities, 1e-7, 1 - 1e-7)), axis=1)))


def sgd_step(weights, x, y, rate: float = SGD_LEARNING_RATE) -> list[np.ndarray]:
    """One ``train_on_batch`` of the network on (x, y)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w0, b0, w1, b1 = weights
    hidden, probabilities = _probabilities(weights, x)
    gradient = (probabilities - y) / len(x)
    hidden_gradient = gradient @ w1.T * hidden * (1.0 - hidden)
    return [w0 - rate * x.T @ hidden_gradient, b0 - rate * hidden_gradient.sum(axis=0),
            w1 - rate * hidden.T @ gradient, b1 - rate * gradient.sum(axis=0)]


def same_weights(actual: list[np.ndarray], expected: list[np.ndarray]) -> bool:
    return len(actual) == len(expected) and all(
        a.shape == e.shape and np.allclose(a, e, rtol=1e-4, atol=TOLERANCE) for a, e in zip(actual, expected))


def steps_taken(actual: list[np.ndarray], states: list[list[np.ndarray]]) -> int | None:
    """How many of the replayed steps ``actual`` is after (0: untouched), or None when it is none of them."""
    return next((index for index, state in enumerate(states) if same_weights(actual, state)), None)
