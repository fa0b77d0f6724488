"""Every graded function has its signature and returns None: code that does nothing earns nothing."""


def preprocess(images, labels):
    return None


def build_model(hidden_units=(500, 500), activation="sigmoid"):
    return None


def compile_model(model, optimizer="adam", learning_rate=None):
    return None


def minibatches(x, y, batch_size, rng):
    return None


def train_one_epoch(model, x, y, batch_size, rng):
    return None


def train_model(model, x, y, batch_size=100, epochs=20):
    return None


def forward_loop(W, b, X):
    return None


def forward_matrix(W, b, X):
    return None


def evaluate_model(model, x, y):
    return None


def predict_digits(model, x):
    return None


def save_model(model, path):
    return None


def load_model(path):
    return None
