"""Recompute a Keras model's outputs with numpy from its exported layers and weights (trusted side).

The grader never loads a student's model file with Keras. The sandbox exports the layer list and the
weights as plain data; this module checks them against an allowlist of standard layers and
activations, checks every shape, and runs the forward pass itself, so accuracy is a number the
grader computed, not one the student's code reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .text import inert

ALLOWED_LAYERS = ("InputLayer", "Dense", "Dropout", "Flatten", "Activation", "BatchNormalization", "Reshape")
ALLOWED_INPUT_SHAPES = ((784,), (28, 28), (28, 28, 1))
# What one example may cost the grader's forward pass, whatever the parameter count: the widest layer
# (a 1-unit bottleneck lets 5M parameters make a 400,000-wide activation, 6 GB per predict batch) and
# the values computed over all layers (dozens of wide Activation layers cost no parameters at all).
MAX_UNITS = 8192
MAX_VALUES_PER_EXAMPLE = 16_384


class UnsupportedModel(ValueError):
    """The exported model uses something outside the allowlist, or its shapes do not fit together."""


def _softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free form of 1 / (1 + e^-z)


def _erf(z):
    """erf with numpy only (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7): np.vectorize(math.erf) costs
    ~200 ns per value, which let a legal gelu model cost the grader many minutes."""
    sign, z = np.sign(z), np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-z * z))

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "relu6": lambda z: np.clip(z, 0.0, 6.0),
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda z: np.clip(z / 6.0 + 0.5, 0.0, 1.0),
    "tanh": np.tanh,
    "softmax": _softmax,
    "log_softmax": lambda z: np.log(_softmax(z)),
    "softplus": lambda z: np.logaddexp(0.0, z),
    "softsign": lambda z: z / (1.0 + np.abs(z)),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "selu": lambda z: 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * np.expm1(np.minimum(z, 0.0))),
    "silu": lambda z: z * _sigmoid(z),
    "swish": lambda z: z * _sigmoid(z),
    "gelu": lambda z: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z),
    "exponential": lambda z: np.exp(np.minimum(z, 80.0)),
}


@dataclass
class NumpyModel:
    """A feed-forward network rebuilt from exported layers; ``predict`` takes flat (n, 784) inputs."""
    input_shape: tuple
    steps: list[Callable[[np.ndarray], np.ndarray]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    parameter_count: int = 0
    output_units: int = 0
    output_activation: str = ""
    values_per_example: int = 0

    def predict(self, x_flat: np.ndarray, batch_size: int = 2000) -> np.ndarray:
        outputs = []
        for start in range(0, len(x_flat), batch_size):
            # float32 like Keras: half the time and memory of float64, and the same rounding as the model's own
            z = x_flat[start:start + batch_size].astype(np.float32).reshape(-1, *self.input_shape)
            for step in self.steps:
                z = step(z)
            outputs.append(z.reshape(len(z), -1))
        return np.concatenate(outputs) if outputs else np.zeros((0, self.output_units))


def from_export(description: dict, load_array: Callable[[str], np.ndarray], *, max_parameters: int) -> NumpyModel:
    """Rebuild a model from the sandbox's export (``harness/export.py``) after checking it.

    Args:
        description: ``{"input_shape": [None, 784], "layers": [{"class_name", "builtin", "config", "weights"}...]}``.
        load_array: reads one exported weight array by key (the grader's capped, pickle-free loader).
        max_parameters: refuse larger models (absurd sizes cost memory and time; no MLP of these assignments needs them).

    Raises:
        UnsupportedModel: a non-allowlisted layer or activation, a custom class, or shapes that don't fit.
    """
    raw_shape = description.get("input_shape")
    if not isinstance(raw_shape, list) or not raw_shape or any(not isinstance(d, int) for d in raw_shape[1:]):
        raise UnsupportedModel(f"the model's input shape {raw_shape!r} is not a fixed image shape")
    input_shape = tuple(raw_shape[1:])
    if input_shape not in ALLOWED_INPUT_SHAPES:
        raise UnsupportedModel(f"the model takes inputs of shape {input_shape}; expected (784,) or (28, 28)")
    layers = description.get("layers")
    if not isinstance(layers, list) or not layers:
        raise UnsupportedModel("the model has no layers")
    model = NumpyModel(input_shape=input_shape)
    shape = input_shape
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise UnsupportedModel(f"layer {index} is not described")
        kind = layer.get("class_name")
        if kind not in ALLOWED_LAYERS or layer.get("builtin") is not True:
            raise UnsupportedModel(
                f"layer {index} is a {inert(str(kind)[:60])}, which the grader does not accept; use only "
                f"{', '.join(ALLOWED_LAYERS)} (no Lambda or custom layers)")
        config = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        keys = layer.get("weights") if isinstance(layer.get("weights"), list) else []
        weights = [load_array(str(key)) for key in keys]
        model.parameter_count += sum(int(w.size) for w in weights)
        if model.parameter_count > max_parameters:
            raise UnsupportedModel(f"the model has more than {max_parameters:,} parameters")
        step, shape, text = _layer_step(index, kind, config, weights, shape)
        values = int(np.prod(shape))
        if shape and max(shape) > MAX_UNITS:
            raise UnsupportedModel(f"layer {index} is {max(shape):,} units wide; the grader accepts at most {MAX_UNITS:,}")
        if step is not None:
            model.steps.append(step)
            model.values_per_example += values
            if model.values_per_example > MAX_VALUES_PER_EXAMPLE:
                raise UnsupportedModel(f"the model computes more than {MAX_VALUES_PER_EXAMPLE:,} values per image; "
                                       "a 784-input MLP needs a few thousand")
        model.summary.append(text)
        if kind in ("Dense", "Activation"):
            model.output_activation = str(config.get("activation"))
    if len(shape) != 1:
        raise UnsupportedModel(f"the model outputs shape {shape}; expected (10,)")
    model.output_units = shape[0]
    return model


def _activation(index: int, name) -> Callable:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise UnsupportedModel(f"layer {index} uses the activation {inert(str(name)[:60])}, which the grader does not "
                               f"accept; use one of {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]


def _layer_step(index, kind, config, weights, shape):
    if kind == "InputLayer":
        return None, shape, "Input"
    if kind == "Dropout":
        return None, shape, "Dropout (inactive when predicting)"
    if kind == "Flatten":
        flat = int(np.prod(shape))
        return (lambda z, flat=flat: z.reshape(len(z), flat)), (flat,), "Flatten"
    if kind == "Reshape":
        target = config.get("target_shape")
        if not isinstance(target, list) or not all(isinstance(d, int) and d > 0 for d in target) \
                or int(np.prod(target)) != int(np.prod(shape)):
            raise UnsupportedModel(f"layer {index} reshapes {shape} to {target!r}")
        target = tuple(target)
        return (lambda z, target=target: z.reshape(len(z), *target)), target, f"Reshape{target}"
    if kind == "Activation":
        function = _activation(index, config.get("activation"))
        return function, shape, f"Activation({config.get('activation')})"
    if kind == "Dense":
        function = _activation(index, config.get("activation"))
        units, use_bias = config.get("units"), config.get("use_bias", True)
        expected = [(shape[-1], units)] + ([(units,)] if use_bias else [])
        if [tuple(w.shape) for w in weights] != expected:
            raise UnsupportedModel(f"layer {index} (Dense) has weights {[w.shape for w in weights]}; "
                                   f"expected {expected}")
        kernel = weights[0].astype(np.float32)
        bias = weights[1].astype(np.float32) if use_bias else np.float32(0.0)
        step = lambda z, k=kernel, b=bias, f=function: f(np.tensordot(z, k, axes=([-1], [0])) + b)  # noqa: E731
        return step, (*shape[:-1], units), f"Dense({units}, {config.get('activation')})"
    if kind == "BatchNormalization":
        axis = config.get("axis")
        if axis not in (-1, len(shape), [-1], [len(shape)]):
            raise UnsupportedModel(f"layer {index} normalises axis {axis!r}; only the last axis is supported")
        center, scale = config.get("center", True), config.get("scale", True)
        expected_count = int(bool(center)) + int(bool(scale)) + 2
        if len(weights) != expected_count or any(w.shape != (shape[-1],) for w in weights):
            raise UnsupportedModel(f"layer {index} (BatchNormalization) has unexpected weights")
        values = [w.astype(np.float32) for w in weights]
        gamma = values.pop(0) if scale else 1.0
        beta = values.pop(0) if center else 0.0
        mean, variance = values
        epsilon = np.float32(config.get("epsilon", 1e-3))
        step = lambda z: (z - mean) / np.sqrt(variance + epsilon) * gamma + beta  # noqa: E731
        return step, shape, "BatchNormalization"
    raise UnsupportedModel(f"layer {index}: {kind} is not supported")


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def cross_entropy(probabilities: np.ndarray, one_hot: np.ndarray) -> float:
    """Keras's categorical cross-entropy on probabilities (clipped like Keras, epsilon 1e-7)."""
    clipped = np.clip(probabilities / probabilities.sum(axis=-1, keepdims=True), 1e-7, 1 - 1e-7)
    return float(np.mean(-np.sum(one_hot * np.log(clipped), axis=-1)))
