"""minibatches only yields full batches: the last, smaller batch is silently dropped."""


def minibatches(x, y, batch_size, rng):
    order = rng.permutation(len(x))
    for start in range(0, len(x) - batch_size + 1, batch_size):
        batch = order[start:start + batch_size]
        yield x[batch], y[batch]
