"""build_model's output layer has no activation: it outputs raw scores, not probabilities."""


def build_model(hidden_units=(500, 500), activation="sigmoid"):
    layers = [keras.Input(shape=(IMAGE_PIXELS,))]
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation=activation))
    layers.append(keras.layers.Dense(NUM_CLASSES))
    return keras.Sequential(layers)
