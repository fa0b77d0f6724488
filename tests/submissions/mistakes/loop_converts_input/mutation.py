"""forward_loop starts with the common X = np.asarray(X) (and W, b likewise) and then loops row by row: correct."""


def forward_loop(W, b, X):
    X = np.asarray(X, dtype=np.float64)
    W, b = np.array(W), np.asarray(b).astype(np.float64)
    rows = []
    for row in X:
        rows.append(row @ W + b)
    return np.array(rows)
