"""minibatches walks the data in its original order: no shuffling."""


def minibatches(x, y, batch_size, rng):
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]
