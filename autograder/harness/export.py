"""Turn a Keras model into plain data: a JSON description of its layers and a dict of weight arrays.

Runs inside the sandbox. The grader re-checks everything it receives (layer allowlist, shapes,
parameter counts) and recomputes the model's outputs with numpy; this export is only a claim.
"""

from __future__ import annotations

import numpy as np

# Config keys the grader's numpy forward pass understands; everything else is dropped.
CONFIG_KEYS = ("units", "activation", "use_bias", "rate", "axis", "epsilon", "center", "scale",
               "target_shape", "data_format", "batch_shape", "negative_slope")
MAX_LAYERS = 64


def qualified_name(obj) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def _plain(value):
    """Keep JSON-safe scalars and short lists; describe anything else as a string."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and len(value) <= 8:
        return [_plain(item) for item in value]
    return f"<{type(value).__name__}>"


def describe_model(model, *, prefix: str = "w") -> tuple[dict, dict[str, np.ndarray]]:
    """Return ``(description, arrays)`` for a Keras model.

    ``description["layers"][i]["weights"]`` lists the keys of that layer's arrays in ``arrays``.
    """
    import keras

    layers, arrays = [], {}
    for index, layer in enumerate(model.layers[:MAX_LAYERS]):
        try:
            config = layer.get_config()
        except Exception as error:  # a custom layer may not implement it
            config = {"error": f"{type(error).__name__}: {error}"}
        keys = []
        for position, value in enumerate(layer.get_weights()):
            key = f"{prefix}{index}_{position}"
            arrays[key] = np.asarray(value, dtype=np.float32)
            keys.append(key)
        layers.append({
            "class_name": type(layer).__name__,
            "qualified_name": qualified_name(layer),
            "builtin": type(layer).__module__.startswith("keras."),
            "config": {key: _plain(config.get(key)) for key in CONFIG_KEYS if key in config},
            "weights": keys,
            "weight_shapes": [list(arrays[key].shape) for key in keys],
        })
    try:
        input_shape = _plain(list(model.input_shape)) if hasattr(model, "input_shape") else None
    except Exception:
        input_shape = None
    try:
        count = int(model.count_params())
    except Exception:
        count = None
    return {
        "qualified_name": qualified_name(model),
        "is_sequential": isinstance(model, keras.Sequential),
        "exact_sequential": type(model) is keras.Sequential,
        "is_model": isinstance(model, keras.Model),
        "input_shape": input_shape,
        "count_params": count,
        "num_layers": len(model.layers),
        "layers": layers,
    }, arrays


def sample_for(model, flat_images: np.ndarray) -> np.ndarray:
    """Reshape flat (n, 784) images to the model's input shape: (n, 784), (n, 28, 28) or (n, 28, 28, 1)."""
    shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else (784,)
    return flat_images.reshape((len(flat_images), *shape))
