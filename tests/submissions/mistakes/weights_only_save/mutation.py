"""save_model saves only the weights (model.save_weights), so the file is not a whole model."""


def save_model(model, path):
    model.save_weights(str(path).replace(".keras", ".weights.h5"))
