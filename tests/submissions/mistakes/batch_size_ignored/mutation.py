"""train_model calls fit without batch_size, so Keras's default of 32 is used."""


def train_model(model, x, y, batch_size=100, epochs=20):
    return model.fit(x, y, epochs=epochs, verbose=2)
