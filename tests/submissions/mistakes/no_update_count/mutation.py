"""train_one_epoch trains correctly but forgets to return the number of updates."""


def train_one_epoch(model, x, y, batch_size, rng):
    for xb, yb in minibatches(x, y, batch_size, rng):
        model.train_on_batch(xb, yb)
