"""build_model always uses sigmoid, whatever activation it is given."""


def build_model(hidden_units=(500, 500), activation="sigmoid"):
    layers = [keras.Input(shape=(IMAGE_PIXELS,))]
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation="sigmoid"))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    return keras.Sequential(layers)
