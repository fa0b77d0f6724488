"""train_model keeps the lecture's signature and defaults but never trains."""


def train_model(model, x, y, batch_size=100, epochs=20):
    return None
