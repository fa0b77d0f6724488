"""Naive smuggled weights: build_model hands back an already trained network (weights from
pretrained.npz shipped next to the module, which is never staged, else from the submitted
model.keras) and train_model is a no-op, hoping the budgeted retrain only measures the result."""


def build_model(hidden_units=(500, 500), activation="sigmoid"):
    layers = [keras.Input(shape=(IMAGE_PIXELS,))]
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation=activation))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    model = keras.Sequential(layers)
    weights = _pretrained_weights()
    if weights is not None and [w.shape for w in weights] == [w.shape for w in model.get_weights()]:
        model.set_weights(weights)
    return model


def train_model(model, x, y, batch_size=100, epochs=20):
    return None  # "already trained"


import os as _os

_HERE = _os.path.dirname(_os.path.abspath(__file__))


def _pretrained_weights():
    try:
        with np.load(_os.path.join(_HERE, "pretrained.npz")) as data:
            return [data[key] for key in sorted(data.files)]
    except OSError:
        pass
    try:
        return keras.saving.load_model(_os.path.join(_HERE, "model.keras"), compile=False).get_weights()
    except Exception:
        return None
