"""predict_classes returns the probabilities instead of the most probable class; confusion_matrix, which uses
it, then fails too."""


def predict_classes(model, x):
    return model.predict(x, verbose=0)
