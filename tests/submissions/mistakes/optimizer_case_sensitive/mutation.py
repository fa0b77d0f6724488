"""compile_model looks the optimizer up without lowering its name: "Adam" and "SGD" fail."""


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
    kwargs = {} if learning_rate is None else {"learning_rate": learning_rate}
    model.compile(loss="categorical_crossentropy", optimizer=classes[optimizer](**kwargs), metrics=["accuracy"])
    return model
