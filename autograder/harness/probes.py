"""Probes: call the student's functions on grader-chosen inputs and record what happened as plain data.

Runs inside the sandbox, in a process the supervisor forked (most probes of a submission share one,
run one after another), with the student's module imported afresh for each probe.
Each probe writes ``result.json`` (JSON only) and ``.npy`` arrays into its output folder. Nothing here
decides a score: the grader reads these files as claims and computes every verdict itself. Inputs
come from ``inputs/<probe>.npz``, written by the grader; labels of data the grader scores on never
appear here.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import time
import traceback
import zipfile

import numpy as np

from . import export

GRADED_FUNCTIONS = ("preprocess", "build_model", "compile_model", "minibatches", "train_one_epoch",
                    "train_model", "forward_loop", "forward_matrix", "evaluate_model", "predict_digits",
                    "save_model", "load_model")
MAX_MESSAGE = 600
MAX_YIELDED_BATCHES = 2000


class StudentError(Exception):
    """The student's code raised, was missing, or returned something unusable; recorded, probe goes on."""

    def __init__(self, function: str, kind: str, message: str, frames=()):
        super().__init__(f"{function}: {kind}: {message}")
        self.info = {"function": function, "kind": kind, "message": message[:MAX_MESSAGE],
                     "frames": list(frames)[-8:]}


class Probe:
    """Per-probe context: inputs, the student module, and what gets recorded."""

    def __init__(self, name: str, params: dict, submission: str, inputs: str, out_dir: str, module: str = "",
                 model: str = ""):
        self.name, self.params = name, params
        self.module_file, self.model_file = module, model
        self.submission, self.inputs_dir, self.out_dir = submission, inputs, out_dir
        self.record: dict = {}
        self.errors: list[dict] = []
        self.arrays: list[str] = []
        self._module = None

    # -- inputs and outputs --------------------------------------------------------------------
    def inputs(self, name: str | None = None) -> dict[str, np.ndarray]:
        path = os.path.join(self.inputs_dir, f"{name or self.name}.npz")
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}

    def save(self, key: str, value) -> None:
        """Save an array the student produced; object arrays and odd types become a recorded error."""
        array = plain_array(value)
        np.save(os.path.join(self.out_dir, f"{key}.npy"), array, allow_pickle=False)
        self.arrays.append(key)

    def progress(self, text: str) -> None:
        # If the process dies inside student code, the last line says where.
        with open(os.path.join(self.out_dir, "progress.txt"), "a") as handle:
            handle.write(text + "\n")

    def write(self) -> None:
        payload = {"probe": self.name, "record": self.record, "errors": self.errors, "arrays": self.arrays,
                   "completed": True}
        with open(os.path.join(self.out_dir, "result.json"), "w") as handle:
            json.dump(payload, handle, default=_json_default)

    # -- the student's module ------------------------------------------------------------------
    def module(self):
        if self._module is None:
            path = os.path.join(self.submission, self.module_file)
            name = os.path.splitext(self.module_file)[0]
            self.progress(f"importing {name}")
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException as error:  # SyntaxError, ImportError, SystemExit, ...
                raise StudentError("import", type(error).__name__, _message(error), _frames(error, path)) from None
            self._module = module
        return self._module

    def function(self, name: str):
        value = getattr(self.module(), name, None)
        if value is None:
            raise StudentError(name, "missing", f"{self.module_file} has no function named {name}")
        if not callable(value):
            raise StudentError(name, "not_callable", f"{name} is a {type(value).__name__}, not a function")
        return value

    def call(self, name: str, *args, **kwargs):
        function = self.function(name)
        self.progress(f"calling {name}")
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        except BaseException as error:  # includes SystemExit from sys.exit() and KeyboardInterrupt
            raise StudentError(name, type(error).__name__, _message(error),
                               _frames(error, os.path.join(self.submission, self.module_file))) from None
        finally:
            self.record.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 4)
            self.progress(f"returned from {name}")

    def case(self, label: str, body) -> None:
        """Run one independent sub-check; a student error is recorded under ``label`` and the probe goes on."""
        try:
            body()
        except StudentError as error:
            self.errors.append({"case": label, **error.info})


def plain_array(value) -> np.ndarray:
    """Convert a student's return value to a plain numpy array, refusing objects and odd types."""
    if isinstance(value, np.ndarray):
        array = np.array(value.view(np.ndarray), copy=True)
    elif isinstance(value, (list, tuple, int, float, np.generic)):
        array = np.asarray(value)
    elif hasattr(value, "numpy") and callable(value.numpy):  # a TensorFlow or Keras tensor
        array = np.asarray(value.numpy())
    else:
        raise TypeError(f"got a {type(value).__name__}, not an array")
    if array.dtype == object:
        raise TypeError("got an array of Python objects, not numbers")
    return array


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)[:200]


def _message(error: BaseException) -> str:
    try:
        text = str(error)
    except BaseException:  # a hostile __str__
        text = "<unprintable>"
    if isinstance(error, SystemExit):
        text = f"sys.exit({text}) was called"
    return text[:MAX_MESSAGE]


def _frames(error: BaseException, student_path: str) -> list[dict]:
    """The traceback frames inside the student's file: what they can act on, nothing of the grader's."""
    frames = []
    try:
        for frame in traceback.extract_tb(error.__traceback__):
            if os.path.abspath(frame.filename) == os.path.abspath(student_path):
                frames.append({"line": frame.lineno, "function": frame.name, "code": (frame.line or "")[:200]})
        if isinstance(error, SyntaxError) and error.lineno:
            frames.append({"line": error.lineno, "function": "<module>", "code": (error.text or "").strip()[:200]})
    except Exception:
        pass
    return frames


# ---------------------------------------------------------------------------------------------
# Grader-built models (plain Keras; the student's build_model is not involved)
# ---------------------------------------------------------------------------------------------

def known_linear_model(weights: dict):
    """784 -> Dense(10, softmax) with the grader's weights, compiled by the harness."""
    import keras
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, activation="softmax")])
    model.set_weights([weights["W"], weights["b"]])
    return model


def small_mlp(weights: dict, base=None):
    """784 -> Dense(32, sigmoid) -> Dense(10, softmax) with the grader's initial weights."""
    import keras
    base = base or keras.Sequential
    model = base([keras.Input(shape=(784,)), keras.layers.Dense(32, activation="sigmoid"),
                  keras.layers.Dense(10, activation="softmax")])
    model.set_weights([weights["w0"], weights["b0"], weights["w1"], weights["b1"]])
    return model


def tiny_model():
    """784 -> Dense(10, softmax), default initialisation: something compile_model can compile."""
    import keras
    return keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, activation="softmax")])


def reference_minibatches(x, y, batch_size, rng):
    """The contract's minibatches, used when checking train_one_epoch so its score stands on its own."""
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        batch = order[start:start + batch_size]
        yield x[batch], y[batch]


class RowIndex:
    """Map rows of x back to their index, to see which examples the student's code used."""

    def __init__(self, x: np.ndarray):
        self.lookup = {np.ascontiguousarray(row, dtype=np.float32).tobytes(): i for i, row in enumerate(x)}

    def ids(self, batch) -> list[int]:
        rows = np.asarray(plain_array(batch), dtype=np.float32)
        rows = rows.reshape(len(rows), -1) if rows.ndim >= 1 and len(rows) else rows.reshape(0, 1)
        return [self.lookup.get(np.ascontiguousarray(row).tobytes(), -1) for row in rows]


def _labels_of(batch) -> list[int]:
    array = plain_array(batch)
    if array.ndim == 2:
        return [int(v) for v in np.argmax(array, axis=1)]
    return [int(v) for v in array.reshape(-1)]


# ---------------------------------------------------------------------------------------------
# Probes, in the order the grader runs them
# ---------------------------------------------------------------------------------------------

def probe_inspect(probe: Probe) -> None:
    module = probe.module()
    functions = {}
    for name in GRADED_FUNCTIONS:
        value = getattr(module, name, None)
        entry = {"present": value is not None, "callable": callable(value)}
        if callable(value):
            try:
                signature = inspect.signature(value)
                entry["parameters"] = [
                    {"name": p.name, "kind": p.kind.name,
                     "default": repr(p.default) if p.default is not inspect.Parameter.empty else None}
                    for p in signature.parameters.values()]
            except (TypeError, ValueError):
                entry["parameters"] = None
            entry["is_generator"] = inspect.isgeneratorfunction(value)
        functions[name] = entry
    probe.record["functions"] = functions


def probe_preprocess(probe: Probe) -> None:
    data = probe.inputs()
    images, labels = data["images"].copy(), data["labels"].copy()
    result = probe.call("preprocess", images, labels)
    probe.record["inputs_unchanged"] = bool(np.array_equal(images, data["images"])
                                            and np.array_equal(labels, data["labels"]))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise StudentError("preprocess", "return", f"returned a {type(result).__name__}, expected a pair (x, y)")
    for key, value in zip(("x", "y"), result):
        try:
            probe.save(key, value)
        except TypeError as error:
            probe.errors.append({"case": key, "function": "preprocess", "kind": "return", "message": f"{key}: {error}"})


def probe_build_model(probe: Probe) -> None:
    sample = probe.inputs()["x"]
    for case in probe.params["cases"]:
        label, kwargs = case["label"], case["kwargs"]

        def body(label=label, kwargs=kwargs):
            if "hidden_units" in kwargs:
                kwargs = {**kwargs, "hidden_units": tuple(kwargs["hidden_units"])}
            model = probe.call("build_model", **kwargs)
            try:
                description, arrays = export.describe_model(model, prefix=f"{label}_")
            except Exception as error:
                raise StudentError("build_model", "return",
                                   f"returned a {type(model).__name__} that is not a Keras model ({error})") from None
            probe.record[label] = description
            if case.get("export_weights"):
                for key, array in arrays.items():
                    probe.save(key, array)
                # The model's own output on grader inputs, to compare with the numpy forward pass.
                probe.save(f"{label}_output", np.asarray(model(export.sample_for(model, sample)), dtype=np.float32))

        probe.case(label, body)


def probe_compile_model(probe: Probe) -> None:
    import keras
    data = probe.inputs("training")
    x, y = data["x"][:128], data["y"][:128]
    outcomes = {}
    shared = []  # one cheap model, compiled again for each optimizer case (Keras allows recompiling)
    for case in probe.params["cases"]:
        label = case["label"]

        def body(case=case, label=label):
            # Only the evaluated case needs the grader's weights; the others check the optimizer, so the
            # cheapest model serves.
            if case.get("evaluate"):
                model = small_mlp(data)
            else:
                shared[:] = shared or [tiny_model()]
                model = shared[0]
            returned = probe.call("compile_model", model, optimizer=case["optimizer"],
                                  learning_rate=case["learning_rate"])
            outcome = {"returned_same_model": returned is model, "returned_type": type(returned).__name__}
            optimizer = getattr(model, "optimizer", None)
            outcome["compiled"] = bool(getattr(model, "compiled", False)) and optimizer is not None
            if optimizer is not None:
                outcome["optimizer_class"] = type(optimizer).__name__
                outcome["optimizer_module"] = type(optimizer).__module__
                try:
                    outcome["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                except Exception as error:
                    outcome["learning_rate_error"] = str(error)[:200]
            try:
                config = model.get_compile_config() or {}
                outcome["loss_config"] = str(config.get("loss"))[:300]
                outcome["metrics_config"] = str(config.get("metrics"))[:300]
            except Exception:
                pass
            if case.get("evaluate") and outcome["compiled"]:
                model.run_eagerly = True  # a few small batches: tracing would cost more than it saves
                probe.progress("evaluating the compiled model")
                try:
                    # One batch through the compiled loss and metrics: what evaluate() computes, without
                    # building a tf.data pipeline for it (~0.1 s).
                    values = model.test_on_batch(x, y, return_dict=True)
                    outcome["evaluate"] = {str(k): float(v) for k, v in values.items()}
                except Exception as error:
                    outcome["evaluate_error"] = f"{type(error).__name__}: {str(error)[:300]}"
            outcomes[label] = outcome

        probe.case(label, body)
    probe.record["cases"] = outcomes


def probe_minibatches(probe: Probe) -> None:
    data = probe.inputs()
    x, y = data["x"], data["y"]
    rows = RowIndex(x)
    outcomes = {}
    for case in probe.params["cases"]:
        label = case["label"]

        def body(case=case, label=label):
            n = case["n"]
            generator = probe.call("minibatches", x[:n], y[:n], case["batch_size"],
                                   np.random.default_rng(case["seed"]))
            batches, paired, too_many = [], True, False
            probe.progress("iterating minibatches")
            try:
                for item in generator:
                    if len(batches) >= MAX_YIELDED_BATCHES or sum(len(b) for b in batches) > 4 * n:
                        too_many = True
                        break
                    if not isinstance(item, (tuple, list)) or len(item) != 2:
                        raise StudentError("minibatches", "yield",
                                           f"yielded a {type(item).__name__}, expected a pair (xb, yb)")
                    xb, yb = item
                    ids = rows.ids(xb)
                    labels = _labels_of(yb)
                    if len(labels) != len(ids) or any(i >= 0 and data["labels"][i] != lab
                                                      for i, lab in zip(ids, labels)):
                        paired = False
                    batches.append(ids)
            except StudentError:
                raise
            except BaseException as error:
                raise StudentError("minibatches", type(error).__name__, _message(error),
                                   _frames(error, os.path.join(probe.submission, probe.module_file))) from None
            outcomes[label] = {"batches": batches, "paired": paired, "too_many": too_many}

        probe.case(label, body)
    probe.record["cases"] = outcomes


def probe_train_one_epoch(probe: Probe) -> None:
    import keras
    data = probe.inputs("training")
    n, batch_size = probe.params["n"], probe.params["batch_size"]
    x, y = data["x"][:n], data["y"][:n]
    rows = RowIndex(x)
    calls, fit_calls = [], []

    class RecordingSequential(keras.Sequential):
        def train_on_batch(self, x=None, y=None, *args, **kwargs):
            calls.append({"ids": rows.ids(x), "labels": _labels_of(y)})
            return super().train_on_batch(x, y, *args, **kwargs)

        def fit(self, *args, **kwargs):
            fit_calls.append(sorted(kwargs))
            return super().fit(*args, **kwargs)

    model = small_mlp(data, base=RecordingSequential)
    _compile_eagerly(model)
    before = [w.copy() for w in model.get_weights()]
    module = probe.module()
    # Give train_one_epoch a correct minibatches, so this score depends on train_one_epoch alone.
    module.minibatches = reference_minibatches
    returned = probe.call("train_one_epoch", model, x, y, batch_size, np.random.default_rng(probe.params["seed"]))
    after = model.get_weights()
    probe.record.update({
        "calls": calls,
        "fit_calls": fit_calls,
        "returned": returned if isinstance(returned, (int, float)) and not isinstance(returned, bool) else repr(returned)[:100],
        "returned_type": type(returned).__name__,
        "weights_changed": any(not np.array_equal(a, b) for a, b in zip(before, after)),
        "labels": [int(v) for v in data["labels"][:n]],
    })


def probe_train_model(probe: Probe) -> None:
    import keras
    data = probe.inputs("training")
    params = probe.params
    x, y = data["x"][:params["n"]], data["y"][:params["n"]]
    fit_calls = []

    class RecordingSequential(keras.Sequential):
        def fit(self, *args, **kwargs):
            fit_calls.append({key: (value if isinstance(value, (int, float, str, bool, type(None))) else
                                    type(value).__name__) for key, value in kwargs.items()})
            return super().fit(*args, **kwargs)

    model = small_mlp(data, base=RecordingSequential)
    _compile_eagerly(model)
    history = probe.call("train_model", model, x, y, batch_size=params["batch_size"], epochs=params["epochs"])
    record = {"fit_calls": fit_calls, "returned_type": type(history).__name__,
              "is_history": isinstance(history, keras.callbacks.History)}
    if record["is_history"]:
        record["params"] = {k: v for k, v in (history.params or {}).items() if isinstance(v, (int, float, str))}
        record["history"] = {str(k): [float(v) for v in values][:1000] for k, values in history.history.items()}
    probe.record.update(record)


# How forward_loop is told from forward_matrix: by how its time grows with the number of examples, not by
# what it does to the array (a conversion such as np.asarray(X) is the student's right). A Python loop pays
# microseconds per row, one matrix product nanoseconds: on a tall, thin batch the two differ ~300-fold, so
# the grader compares each function's time with a reference loop and a reference product timed right after
# it, in the same process, and a noisy neighbour cannot blur the difference. Best of a few runs: noise only
# ever adds time.
TIMING_ROWS, TIMING_FEATURES, TIMING_OUTPUTS, TIMING_RUNS = 5000, 8, 4, 3


def reference_loop(W, b, X):
    z = np.empty((X.shape[0], W.shape[1]))
    for i in range(X.shape[0]):
        z[i] = X[i] @ W + b
    return z


def reference_matrix(W, b, X):
    return X @ W + b


def _best_time(function, *args) -> float:
    best = float("inf")
    for _ in range(TIMING_RUNS):
        started = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - started)
    return best


def probe_forward(probe: Probe) -> None:
    data = probe.inputs()
    rng = np.random.default_rng(7)
    timing_args = (rng.normal(size=(TIMING_FEATURES, TIMING_OUTPUTS)), rng.normal(size=TIMING_OUTPUTS),
                   rng.normal(size=(TIMING_ROWS, TIMING_FEATURES)))
    for name in ("forward_loop", "forward_matrix"):
        def body(name=name):
            z = probe.call(name, data["W"].copy(), data["b"].copy(), data["X"].copy())
            try:
                probe.save(name, z)
            except TypeError as error:
                raise StudentError(name, "return", str(error)) from None
            function = probe.function(name)
            probe.progress(f"timing {name} on {TIMING_ROWS} rows")
            try:
                seconds = _best_time(function, *(array.copy() for array in timing_args))
            except BaseException as error:
                raise StudentError(name, type(error).__name__, _message(error),
                                   _frames(error, os.path.join(probe.submission, probe.module_file))) from None
            probe.record[name] = {"seconds": seconds, "rows": TIMING_ROWS,
                                  "reference_loop_seconds": _best_time(reference_loop, *timing_args),
                                  "reference_matrix_seconds": _best_time(reference_matrix, *timing_args)}

        probe.case(name, body)


def _compile_eagerly(model) -> None:
    """Compile a grader-built model for a few small batches: eagerly (tracing would cost more than the
    batches) and with plain SGD (Adam's per-variable updates are ~4x the eager ops). Which optimizer
    trains these models is not graded; the student's compile_model is checked on its own."""
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"], run_eagerly=True)


def _compiled_known_model(data):
    model = known_linear_model(data)
    _compile_eagerly(model)
    return model


def probe_evaluate_model(probe: Probe) -> None:
    data = probe.inputs("known_model")
    result = probe.call("evaluate_model", _compiled_known_model(data), data["x"], data["y"])
    probe.record["returned_type"] = type(result).__name__
    if isinstance(result, (tuple, list)):
        probe.record["length"] = len(result)
        probe.record["values"] = [float(v) if isinstance(v, (int, float, np.floating, np.integer)) else None
                                  for v in list(result)[:4]]
        probe.record["types"] = [type(v).__name__ for v in list(result)[:4]]


def probe_predict_digits(probe: Probe) -> None:
    data = probe.inputs("known_model")
    result = probe.call("predict_digits", _compiled_known_model(data), data["x"])
    probe.record["returned_type"] = type(result).__name__
    try:
        probe.save("predictions", result)
    except TypeError as error:
        raise StudentError("predict_digits", "return", str(error)) from None


def _native_keras_file(path: str) -> dict:
    info = {"exists": os.path.isfile(path)}
    if info["exists"]:
        info["size"] = os.path.getsize(path)
        info["is_zip"] = zipfile.is_zipfile(path)
        if info["is_zip"]:
            with zipfile.ZipFile(path) as archive:
                info["members"] = sorted(archive.namelist())[:20]
        with open(path, "rb") as handle:
            info["hdf5"] = handle.read(8) == b"\x89HDF\r\n\x1a\n"
    return info


def probe_save_model(probe: Probe) -> None:
    import keras
    data = probe.inputs("known_model")
    work = os.getcwd()  # the sandbox's private work folder, shared with the load_model probe
    # The grader's own copy first: the load_model probe, a separate process, reads it.
    known_linear_model(data).save(os.path.join(work, "saved_by_grader.keras"))
    path = os.path.join(work, "saved_by_student.keras")
    probe.call("save_model", known_linear_model(data), path)
    probe.record["file"] = _native_keras_file(path)
    if probe.record["file"]["exists"]:
        probe.progress("loading the student's file with keras.saving.load_model(safe_mode=True)")
        try:
            reloaded = keras.saving.load_model(path, compile=False, safe_mode=True)
            # A direct call, not predict(): same numbers, without building a tf.data pipeline.
            probe.save("reloaded_predictions", np.asarray(reloaded(data["x"], training=False), dtype=np.float32))
            probe.record["keras_loads_it"] = True
        except Exception as error:
            probe.record["keras_loads_it"] = False
            probe.record["keras_error"] = f"{type(error).__name__}: {str(error)[:300]}"


def probe_load_model(probe: Probe) -> None:
    import keras
    data = probe.inputs("known_model")
    work = os.getcwd()
    model = probe.call("load_model", os.path.join(work, "saved_by_grader.keras"))
    probe.record["returned_type"] = type(model).__name__
    probe.record["is_model"] = isinstance(model, keras.Model)
    if probe.record["is_model"]:
        probe.save("predictions", np.asarray(model(data["x"], training=False), dtype=np.float32))


def probe_trained_model(probe: Probe) -> None:
    import keras
    path = os.path.join(probe.submission, probe.model_file)
    probe.progress(f"loading {probe.model_file} with safe_mode=True")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        raise StudentError("trained_model", type(error).__name__, _message(error)) from None
    _export_trained(probe, model)


def _export_trained(probe: Probe, model, prefix: str = "w") -> None:
    description, arrays = export.describe_model(model, prefix=prefix)
    probe.record["model"] = description
    for key, array in arrays.items():
        probe.save(key, array)
    sample = probe.inputs("consistency")["x"]
    try:
        probe.save("sample_output", np.asarray(model(export.sample_for(model, sample)), dtype=np.float32))
    except Exception as error:
        probe.record["sample_error"] = f"{type(error).__name__}: {str(error)[:300]}"


def _build_training_state(model, x, y) -> None:
    """Create the compiled loss's, metrics' and optimizer's variables before fit, as Keras does on its
    other backends. On TensorFlow fit creates them inside the first trace of its training step, and a
    traced function that creates variables is traced a second time: building them first saves that
    trace (~0.4 s of the retrain). The variables, their values and the training are the same (checked
    bit for bit: weights and History after 2 epochs, adam, sgd, rmsprop, nadam). A model this cannot
    build is left as it is, for fit to report on."""
    try:
        model._symbolic_build(data_batch=(x, y))
    except Exception:
        pass


def probe_retrain(probe: Probe) -> None:
    import keras
    data = probe.inputs()
    params = probe.params
    keras.utils.set_random_seed(params["seed"])
    model = probe.call("build_model", hidden_units=tuple(params["hidden_units"]))
    if not isinstance(model, keras.Model):
        raise StudentError("build_model", "return", f"returned a {type(model).__name__}, not a Keras model, so "
                           "there is no network to retrain")
    probe.call("compile_model", model, optimizer="adam")
    started = time.perf_counter()
    x = data["images"].astype(np.float32) / 255.0
    _build_training_state(model, x[:1], data["y"][:1])
    probe.call("train_model", model, x, data["y"], batch_size=params["batch_size"], epochs=params["epochs"])
    probe.record["train_seconds"] = round(time.perf_counter() - started, 3)
    _export_trained(probe, model)


PROBES = {
    "inspect": probe_inspect,
    "preprocess": probe_preprocess,
    "build_model": probe_build_model,
    "compile_model": probe_compile_model,
    "minibatches": probe_minibatches,
    "train_one_epoch": probe_train_one_epoch,
    "train_model": probe_train_model,
    "forward": probe_forward,
    "evaluate_model": probe_evaluate_model,
    "predict_digits": probe_predict_digits,
    "save_model": probe_save_model,
    "load_model": probe_load_model,
    "trained_model": probe_trained_model,
    "retrain": probe_retrain,
}


def reset_interpreter_state() -> None:
    """Between two probes sharing a process: undo the global settings an honest function may change
    (Keras's float type, epsilon and image layout, TensorFlow's eager switch) so that one function's
    choices do not change how the next one is checked. (The student's module needs nothing here: each
    probe imports it afresh.)"""
    import keras
    keras.config.set_floatx("float32")
    keras.config.set_epsilon(1e-7)
    keras.config.set_image_data_format("channels_last")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        tf.config.run_functions_eagerly(False)


def run(name: str, params: dict, submission: str, inputs: str, out_dir: str, module: str, model: str) -> None:
    """Run one probe and write its result; student errors are recorded, never raised."""
    probe = Probe(name, params, submission, inputs, out_dir, module, model)
    try:
        PROBES[name](probe)
    except StudentError as error:
        probe.errors.append({"case": "probe", **error.info})
    except Exception as error:  # the harness's own failure, on this submission's input
        probe.errors.append({"case": "probe", "function": name, "kind": "harness",
                             "message": f"{type(error).__name__}: {_message(error)}",
                             "frames": [{"line": f.lineno, "function": f.name, "code": (f.line or "")[:200]}
                                        for f in traceback.extract_tb(error.__traceback__)[-4:]]})
    probe.write()
