"""evaluate_model returns (accuracy, loss) instead of (loss, accuracy)."""


def evaluate_model(model, x, y):
    loss, accuracy = model.evaluate(x, y, verbose=0)[:2]
    return float(accuracy), float(loss)
