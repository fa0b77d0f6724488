"""The grader's own Keras models for v1's probes (built in the sandbox's recorder, never by the student).

Keras is imported inside each function: the scoring process imports the grader files too, and never Keras.
"""

from __future__ import annotations


def known_linear_model(weights: dict):
    """784 -> Dense(10, softmax) with the grader's weights: a model whose every output the graders compute."""
    import keras
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, activation="softmax")])
    model.set_weights([weights["W"], weights["b"]])
    compile_eagerly(model)
    return model


def small_mlp(weights: dict, *, compiled: bool = True):
    """784 -> Dense(32, sigmoid) -> Dense(10, softmax) with the grader's initial weights, compiled unless told
    otherwise (compile_model gets it uncompiled: a compiled one would pass for a compile_model that does
    nothing)."""
    import keras
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(32, activation="sigmoid"),
                              keras.layers.Dense(10, activation="softmax")])
    model.set_weights([weights["w0"], weights["b0"], weights["w1"], weights["b1"]])
    if compiled:
        compile_eagerly(model)
    return model


def tiny_model():
    """784 -> Dense(10, softmax), default initialisation, uncompiled: something compile_model can compile."""
    import keras
    return keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, activation="softmax")])


def compile_eagerly(model) -> None:
    """Compile a grader-built model for a few small batches: eagerly (tracing would cost more than the batches)
    and with plain SGD at Keras's default rate (the graders replay its updates with numpy). Which optimizer
    trains these models is not graded; the student's compile_model is checked on its own."""
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"], run_eagerly=True)


def reinitialized(model, seed: int):
    """A copy of ``model``'s architecture with fresh weights from its own initialisers (seeded): whatever
    weights a submission built in, the retrain starts from scratch."""
    import keras
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def evaluate_with(compile_config: dict, weights: dict, x, y) -> dict:
    """What the student's compile_model configured, measured here: its loss and metrics, rebuilt from the
    compile configuration the student's process reported (standard Keras objects only), on the grader's small
    network and one batch.

    Raises:
        ValueError: the configuration names something other than a standard Keras loss or metric.
    """
    import keras
    from autograder.model_file import check_objects
    loss, metrics = compile_config.get("loss"), compile_config.get("metrics") or []
    for part in (loss, metrics):
        problem = check_objects(part)
        if problem:
            raise ValueError(problem)
    if not isinstance(metrics, list):
        metrics = [metrics]
    model = small_mlp(weights, compiled=False)
    model.compile(loss=keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss,
                  metrics=[keras.metrics.get(metric) if isinstance(metric, dict) else metric for metric in metrics],
                  optimizer="sgd", run_eagerly=True)
    return {str(key): float(value) for key, value in model.test_on_batch(x, y, return_dict=True).items()}
