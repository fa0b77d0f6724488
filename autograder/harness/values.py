"""Plain data both ways between the recorder and the executor: call arguments out, returned values and effects back.

Loaded on both sides of the boundary inside the sandbox, so it is numpy and the standard library only (Keras
is imported lazily, where a model is saved or loaded). Everything travels as a JSON tree plus raw files
(``.npy`` without pickle, ``.keras`` archives) in one ``protocol`` frame. What the executor sends is the
student's: the recorder decodes it with caps and refuses anything but numbers, strings, the tree types
below, and model archives that pass ``model_check``.

Tree nodes, ``{"t": <tag>, ...}``:

* ``json`` (``v``: a bool, number, string or None, ``type``: its Python type's name),
* ``array`` (``f``: the file's name, ``shape``, ``dtype``, ``type``), ``tuple`` / ``list`` (``items``),
  ``dict`` (``items``: string keys),
* ``model`` (``f``: a ``.keras`` file, ``class``, ``is_model``, ``exact_sequential``), ``history``
  (``history``, ``params``), ``iterator`` (``items``, ``truncated``), ``object`` (``type``, ``repr``),
* arguments only: ``rng`` (``seed``), ``path`` (``name``, optional content ``f``), ``handle`` (``name``).
"""

from __future__ import annotations

import io
import json

import numpy as np

MAX_ITEMS = 64             # elements of a tuple, list or dict that are described
MAX_DEPTH = 4
MAX_STRING = 2000
MAX_ARRAY_BYTES = 48 * 1024 * 1024
MAX_REPR = 200


class Rng:
    """An argument: ``numpy.random.default_rng(seed)``, made in the executor."""

    def __init__(self, seed: int):
        self.seed = int(seed)


class Path:
    """An argument: a file name in the executor's scratch folder, optionally with content written first."""

    def __init__(self, name: str, content: bytes | None = None):
        self.name, self.content = name, content


class Handle:
    """An argument: an object the executor kept from an earlier call of the same check (``keep=``)."""

    def __init__(self, name: str):
        self.name = name


def array_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def read_array(data: bytes, *, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """An ``.npy`` payload, without pickle, numeric or boolean only.

    Raises:
        ValueError: too large, not an array file, or not plain numbers.
    """
    if len(data) > max_bytes:
        raise ValueError(f"an array of {len(data)} bytes is above the cap of {max_bytes}")
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise ValueError(f"not a numeric array (dtype {getattr(array, 'dtype', '?')})")
    return array


class Files:
    """The files of one frame: named in order, so a tree refers to them by name."""

    def __init__(self, files: list[tuple[str, bytes]] | None = None):
        self.items: list[tuple[str, bytes]] = list(files or [])
        self.by_name = dict(self.items)

    def add(self, data: bytes, suffix: str) -> str:
        name = f"f{len(self.items)}{suffix}"
        self.items.append((name, data))
        self.by_name[name] = data
        return name

    def get(self, name) -> bytes:
        if not isinstance(name, str) or name not in self.by_name:
            raise ValueError(f"the frame has no file {str(name)[:40]!r}")
        return self.by_name[name]


def plain_array(value) -> np.ndarray:
    """A returned value as a plain numpy array (tensors converted, ndarray subclasses stripped), or TypeError."""
    if isinstance(value, np.ndarray):
        array = np.array(value.view(np.ndarray), copy=True)
    elif isinstance(value, (list, tuple, int, float, np.generic)):
        array = np.asarray(value)
    elif hasattr(value, "numpy") and callable(value.numpy):  # a TensorFlow or Keras tensor
        array = np.asarray(value.numpy())
    else:
        raise TypeError(f"got a {type(value).__name__}, not an array")
    if array.dtype == object:
        raise TypeError("got an array of Python objects, not numbers")
    return array


def json_safe(value, depth: int = 0):
    """A value as JSON, losing what JSON cannot hold (for configs and call summaries)."""
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) else value[:MAX_STRING]
    if isinstance(value, (int, float)):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, np.generic):
        return json_safe(value.item(), depth)
    if depth >= MAX_DEPTH:
        return f"<{type(value).__name__}>"
    if isinstance(value, (list, tuple)):
        return [json_safe(item, depth + 1) for item in list(value)[:MAX_ITEMS]]
    if isinstance(value, dict):
        return {str(key)[:100]: json_safe(item, depth + 1) for key, item in list(value.items())[:MAX_ITEMS]}
    return f"<{type(value).__name__}>"


def header_bytes(tree) -> int:
    return len(json.dumps(tree))
