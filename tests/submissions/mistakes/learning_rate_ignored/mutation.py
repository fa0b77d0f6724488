"""compile_model never passes learning_rate to the optimizer."""


def compile_model(model, optimizer="adam", learning_rate=None):
    classes = {
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
        "adadelta": keras.optimizers.Adadelta,
        "adam": keras.optimizers.Adam,
        "adamax": keras.optimizers.Adamax,
        "nadam": keras.optimizers.Nadam,
    }
    model.compile(loss="categorical_crossentropy", optimizer=classes[optimizer.lower()](), metrics=["accuracy"])
    return model
