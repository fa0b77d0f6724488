"""train_model keeps last term's defaults (epochs=20, no verbose argument)."""


def train_model(model, x, y, batch_size=100, epochs=20):
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=2)
