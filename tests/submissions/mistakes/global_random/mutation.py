"""minibatches shuffles with numpy's global random state instead of the rng it is given."""


def minibatches(x, y, batch_size, rng):
    order = np.random.permutation(len(x))
    for start in range(0, len(x), batch_size):
        batch = order[start:start + batch_size]
        yield x[batch], y[batch]
