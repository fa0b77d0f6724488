"""The recorder: runs a version's probes, calls the student's functions through the executor, records what happened.

It runs in the sandbox, in a process apart from the student's code (``executor.py``), which it talks to over
two pipes with plain data only (``values``): it sends each call's arguments and reads back the returned
value, the arguments' state after the call, the files written. The student's process shares neither its
memory nor its view of the files, so what is recorded here (``result.json`` and ``.npy`` arrays, read by
the trusted graders as data) is made where the student cannot reach it. Models the student's code returns
come back as ``.keras`` archives, checked against the allowlist (``model_file``) before this process loads
them with ``safe_mode``.

A probe is a function of a version's grader file, registered with ``autograder.grading.probe``; it gets a
``Run`` (this module) and uses only its methods, plus numpy and Keras.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
import zipfile

import numpy as np

from ..model_file import refusal
from . import export, protocol, values
from .values import Handle, Path, Rng

MAX_MESSAGE = 600
MAX_ARRAY_BYTES = 48 * 1024 * 1024


class StudentError(Exception):
    """The student's code raised, was missing, or returned something unusable; recorded, the probe goes on."""

    def __init__(self, function: str, kind: str, message: str, frames=()):
        super().__init__(f"{function}: {kind}: {message}")
        self.info = {"function": function, "kind": kind, "message": str(message)[:MAX_MESSAGE],
                     "frames": list(frames)[-8:]}


class ExecutorLost(Exception):
    """The student's process ended (or broke the protocol) during a call: the check is unfinished."""

    def __init__(self, message: str, *, protocol: bool = False):
        super().__init__(message)
        self.protocol = protocol  # it wrote something that is not an answer (forged or garbled frames)


class Returned:
    """What a call gave back, as plain data the recorder decoded (never the student's object itself)."""

    def __init__(self, function: str, tree: dict, files: values.Files, answer: dict, run: "Run"):
        self.function, self.tree, self.files, self.answer, self.run = function, tree, files, answer, run
        self.kind = tree.get("t")
        self.type_name = str(tree.get("type") or tree.get("class") or self.kind)[:200]
        self.seconds = answer.get("seconds")

    # -- scalars and arrays -----------------------------------------------------------------------
    @property
    def value(self):
        return self.tree.get("v") if self.kind == "json" else None

    def array(self) -> np.ndarray:
        if self.kind != "array":
            raise StudentError(self.function, "return", f"returned a {self.type_name}, not an array")
        try:
            return values.read_array(self.files.get(self.tree.get("f")), max_bytes=MAX_ARRAY_BYTES)
        except ValueError as error:
            raise StudentError(self.function, "return", str(error)) from None

    def items(self) -> list["Returned"]:
        if self.kind not in ("tuple", "list", "iterator"):
            raise StudentError(self.function, "return", f"returned a {self.type_name}, expected a sequence")
        return [Returned(self.function, item, self.files, {}, self.run) for item in self.tree.get("items", [])]

    def pair(self, what: str = "a pair") -> tuple["Returned", "Returned"]:
        if self.kind not in ("tuple", "list") or len(self.tree.get("items", [])) != 2:
            raise StudentError(self.function, "return", f"returned a {self.type_name}, expected {what}")
        first, second = self.items()
        return first, second

    @property
    def truncated(self) -> bool:
        return bool(self.tree.get("truncated"))

    # -- models and histories ---------------------------------------------------------------------
    @property
    def is_model(self) -> bool:
        return self.kind == "model"

    def model(self):
        """The returned model, loaded here from its archive after the allowlist check (StudentError otherwise)."""
        if self.kind != "model":
            raise StudentError(self.function, "return", f"returned a {self.type_name}, not a Keras model")
        if self.tree.get("error") or not self.tree.get("f"):
            raise StudentError(self.function, "return", f"returned a model that cannot be saved and checked: "
                               f"{self.tree.get('error', 'no archive')}")
        return self.run.load_model_bytes(self.files.get(self.tree["f"]), function=self.function)

    def declared_compile_config(self) -> dict | None:
        """The compile configuration the returned model's archive declares (None: saved uncompiled), read here
        after the allowlist check, without loading the model."""
        if self.kind != "model" or self.tree.get("error") or not self.tree.get("f"):
            raise StudentError(self.function, "return", f"returned a {self.type_name}, not a Keras model")
        config = self.run.archive_config(self.files.get(self.tree["f"]), function=self.function)
        compiled = config.get("compile_config") if isinstance(config, dict) else None
        return compiled if isinstance(compiled, dict) else None

    @property
    def history(self) -> dict | None:
        return {"history": self.tree.get("history", {}), "params": self.tree.get("params", {})} \
            if self.kind == "history" else None

    # -- effects and claims -----------------------------------------------------------------------
    def after(self, index: int) -> dict:
        return (self.answer.get("after") or {}).get(str(index)) or {}

    def after_value(self, index: int) -> "Returned":
        """An argument as it was after the call (``after={index: "value"}``), to see what the call changed."""
        return Returned(self.function, self.after(index), self.files, {}, self.run)

    def after_model(self, index: int):
        """A model argument as the call left it (``after={index: "model"}``), loaded here after the check."""
        tree = self.after(index).get("model") or {}
        return Returned(self.function, tree, self.files, {}, self.run).model()

    def after_weights(self, index: int) -> list[np.ndarray]:
        state = self.after(index)
        return [values.read_array(self.files.get(name)) for name in state.get("weights", [])]

    def watched(self, index: int) -> dict:
        return (self.answer.get("watched") or {}).get(str(index)) or {}

    def collected(self, name: str) -> tuple[dict, bytes | None]:
        info = (self.answer.get("collected") or {}).get(name) or {"exists": False}
        return info, (self.files.get(info["f"]) if info.get("f") else None)

    @property
    def returned_argument(self):
        return self.answer.get("returned_argument")


class Run:
    """What a probe works with: its inputs and parameters, the student's functions (through the executor), and
    what it records."""

    def __init__(self, name: str, params: dict, plan: dict, out_dir: str, channel: "Channel"):
        self.name, self.params, self.plan, self.out_dir, self.channel = name, params, plan, out_dir, channel
        self.record: dict = {}
        self.errors: list[dict] = []
        self.arrays: list[str] = []
        self.module_file = plan["module"]
        self.model_file = plan["model"]

    # -- inputs and outputs -----------------------------------------------------------------------
    def inputs(self, name: str | None = None) -> dict[str, np.ndarray]:
        path = os.path.join(self.plan["inputs"], f"{name or self.name}.npz")
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}

    def save(self, key: str, value) -> None:
        """Record an array (a returned value's, or one this probe computed)."""
        array = value.array() if isinstance(value, Returned) else np.asarray(value)
        if array.dtype == object:
            raise StudentError(self.name, "return", "got an array of Python objects, not numbers")
        np.save(os.path.join(self.out_dir, f"{key}.npy"), array, allow_pickle=False)
        self.arrays.append(key)

    def progress(self, text: str) -> None:
        # If the student's process dies, the last line says where.
        with open(os.path.join(self.out_dir, "progress.txt"), "a") as handle:
            handle.write(text + "\n")

    @contextlib.contextmanager
    def case(self, label: str):
        """One independent sub-check: a student error is recorded under ``label`` and the probe goes on."""
        try:
            yield
        except StudentError as error:
            self.errors.append({"case": label, **error.info})

    def write(self) -> None:
        payload = {"probe": self.name, "record": self.record, "errors": self.errors, "arrays": self.arrays,
                   "completed": True}
        with open(os.path.join(self.out_dir, "result.json"), "w") as handle:
            json.dump(payload, handle, default=_json_default)

    # -- the student's functions ------------------------------------------------------------------
    def call(self, function: str, *args, patch: dict | None = None, watch: dict | None = None,
             after: dict | None = None, iterate: dict | None = None, collect: list | None = None,
             keep: str | None = None, keep_argument: dict | None = None, prepare: dict | None = None,
             **kwargs) -> Returned:
        """Call the student's ``function`` in the executor and return what came back.

        Args:
            function: the name in the student's module.
            args, kwargs: numpy arrays, plain values, Keras models (the recorder's own), ``Rng(seed)``,
                ``Path(name, content)``, ``Handle(name)`` (an object kept by ``keep=`` earlier in this check).
            patch: module attributes replaced by the executor's references first (``{"minibatches":
                "reference_minibatches"}``).
            watch: ``{argument index: {"methods": [...], "rows_of": index}}``: calls of those methods of that
                argument, recorded in the student's process (claims: for messages, never for points).
            after: ``{argument index: "value" | "compiled" | "weights" | "model"}``: what the call did to it.
            iterate: drain a returned generator, ``{"max_items": n, "max_rows": n}``.
            collect: file names the function should have written in its scratch folder (``Path``).
            keep: keep the returned object in the executor under this name (``Handle(name)`` later).
            keep_argument: ``{name: argument index}``: keep an argument (as the call left it) instead.
            prepare: ``{argument index: "training"}``: build a compiled model's loss, metrics and optimizer
                state before the call (what fit would do first; TensorFlow then traces the step once).

        Raises:
            StudentError: the function raised, is missing or the module does not import.
            ExecutorLost: the student's process ended during the call.
        """
        files = values.Files()
        payload = {"function": function, "args": [self._encode(a, files) for a in args],
                   "kwargs": {key: self._encode(value, files) for key, value in kwargs.items()},
                   "patch": patch or {}, "watch": {str(k): v for k, v in (watch or {}).items()},
                   "after": {str(k): v for k, v in (after or {}).items()}, "iterate": iterate, "collect": collect,
                   "keep": keep, "keep_argument": keep_argument or {},
                   "prepare": {str(k): v for k, v in (prepare or {}).items()}}
        self.progress(f"calling {function}")
        started = time.perf_counter()
        answer, answer_files = self.channel.request("call", payload, files)
        seconds = time.perf_counter() - started
        self.record.setdefault("seconds", {})[function] = round(seconds, 4)
        self.progress(f"returned from {function}")
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise StudentError(str(error.get("function", function)), str(error.get("kind", "error")),
                               str(error.get("message", "")), error.get("frames") if isinstance(error.get("frames"), list) else [])
        returned = Returned(function, answer.get("value") or {}, answer_files, answer, self)
        returned.round_trip_seconds = seconds
        return returned

    def echo(self, value):
        """Send ``value`` to the student's process and back, through the harness alone (the transfer's cost)."""
        files = values.Files()
        answer, answer_files = self.channel.request("echo", {"value": self._encode(value, files)}, files)
        return answer

    def signatures(self, functions) -> dict:
        answer, _ = self.channel.request("signatures", {"functions": list(functions)}, values.Files())
        if "error" in answer:
            raise StudentError(**{k: answer["error"].get(k, "") for k in ("function", "kind", "message")})
        return answer.get("functions", {})

    def seed(self, seed: int) -> None:
        self.channel.request("seed", {"seed": int(seed)}, values.Files())

    def _encode(self, value, files: values.Files) -> dict:
        if isinstance(value, Rng):
            return {"t": "rng", "seed": value.seed}
        if isinstance(value, Path):
            tree = {"t": "path", "name": value.name}
            if value.content is not None:
                tree["f"] = files.add(value.content, ".bin")
            return tree
        if isinstance(value, Handle):
            return {"t": "handle", "name": value.name}
        if isinstance(value, np.ndarray):
            return {"t": "array", "f": files.add(values.array_bytes(value), ".npy")}
        if value is None or isinstance(value, (bool, int, float, str)):
            return {"t": "json", "v": value}
        if isinstance(value, (tuple, list)):
            return {"t": "tuple" if isinstance(value, tuple) else "list", "items": [self._encode(v, files) for v in value]}
        if isinstance(value, dict):
            return {"t": "dict", "items": {str(k): self._encode(v, files) for k, v in value.items()}}
        keras = sys.modules.get("keras")
        if keras is not None and isinstance(value, keras.Model):
            return {"t": "model", "f": files.add(model_bytes(value), ".keras"), "compiled": bool(value.compiled)}
        raise TypeError(f"a probe cannot send a {type(value).__name__} to the student's function")

    # -- models -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _checked_archive(self, data: bytes, *, function: str):
        """A ``.keras`` archive the student's code produced, written here and checked against the allowlist."""
        with tempfile.NamedTemporaryFile(suffix=".keras", dir=self.plan["work_dir"], delete=False) as handle:
            handle.write(data)
            path = handle.name
        try:
            problem = refusal(path)
            if problem:
                problem = problem.replace("model.keras", "the model", 1)
                raise StudentError(function, "refused", f"returned a model the grader does not load: {problem}")
            yield path
        finally:
            os.unlink(path)

    def load_model_bytes(self, data: bytes, *, function: str):
        """A ``.keras`` archive the student's code produced, checked against the allowlist, loaded with safe_mode."""
        import keras
        with self._checked_archive(data, function=function) as path:
            try:
                return keras.saving.load_model(path, compile=False, safe_mode=True)
            except Exception as error:
                raise StudentError(function, "return", f"returned a model Keras cannot reload "
                                   f"({type(error).__name__}: {str(error)[:200]})") from None

    def archive_config(self, data: bytes, *, function: str):
        """The parsed config.json of a checked ``.keras`` archive (its size is bounded by the check)."""
        with self._checked_archive(data, function=function) as path:
            try:
                with zipfile.ZipFile(path) as archive:
                    return json.loads(archive.read("config.json"))
            except (zipfile.BadZipFile, KeyError, ValueError) as error:
                raise StudentError(function, "return", f"returned a model whose archive cannot be read "
                                   f"({type(error).__name__})") from None

    def load_submitted_model(self):
        """The submission's own model file (mounted for the recorder only), checked and loaded with safe_mode."""
        import keras
        path = os.path.join(self.plan["submission"], self.model_file)
        problem = refusal(path)
        if problem:
            raise StudentError("trained_model", "return", f"{self.model_file} was refused: {problem}")
        self.progress(f"loading {self.model_file} with safe_mode=True")
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as error:
            raise StudentError("trained_model", type(error).__name__, _message(error)) from None

    def export(self, model, *, prefix: str = "w", sample: np.ndarray | None = None, key: str = "model") -> None:
        """Record a model as plain data: its layers (``export``), its weights, its outputs on ``sample``."""
        description, arrays = export.describe_model(model, prefix=prefix)
        self.record[key] = description
        for name, array in arrays.items():
            self.save(name, array)
        if sample is not None:
            try:
                self.save(f"{prefix}sample_output" if prefix != "w" else "sample_output",
                          np.asarray(model(export.sample_for(model, sample), training=False), dtype=np.float32))
            except Exception as error:
                self.record["sample_error"] = f"{type(error).__name__}: {str(error)[:300]}"


def model_bytes(model) -> bytes:
    """A Keras model of the recorder's as a ``.keras`` archive."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def keras_file_info(data: bytes | None, exists: bool) -> dict:
    """What a file the student's code wrote is, judged from its bytes (is it a native .keras archive?)."""
    info = {"exists": bool(exists)}
    if data is None:
        return info
    import io
    info["size"] = len(data)
    info["hdf5"] = data[:8] == b"\x89HDF\r\n\x1a\n"
    info["is_zip"] = zipfile.is_zipfile(io.BytesIO(data))
    if info["is_zip"]:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                info["members"] = sorted(archive.namelist())[:20]
        except zipfile.BadZipFile:
            info["is_zip"] = False
    return info


class Channel:
    """The two pipes to the executor: one request, one answer, at a time."""

    def __init__(self, requests: int, responses: int):
        self.requests = requests
        self.responses = os.fdopen(responses, "rb", buffering=0)

    def request(self, op: str, payload: dict, files: values.Files):
        data = protocol.encode_frame(op, payload, files.items)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.requests, view):]
            frame = protocol.read_frame(self.responses, max_file_bytes=MAX_ARRAY_BYTES + 1024,
                                        max_frame_bytes=4 * MAX_ARRAY_BYTES)
        except OSError as error:
            raise ExecutorLost(f"{type(error).__name__}: {error}") from None
        except (protocol.ProtocolError, ValueError) as error:
            raise ExecutorLost(f"{type(error).__name__}: {error}", protocol=True) from None
        if frame is None:
            raise ExecutorLost("the student's process ended")
        header, answer_files = frame
        answer = header["status"]
        if header.get("probe") != "answer" or not isinstance(answer, dict):
            raise ExecutorLost("a frame that is not an answer", protocol=True)
        return answer, values.Files(answer_files)


def resolve(reference: str):
    """A probe function from its ``module:qualname`` reference (a version's grader module, imported here)."""
    module_name, _, qualname = reference.partition(":")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return getattr(target, "__wrapped_probe__", target)


def run(spec: dict, plan: dict, out_dir: str, channel: Channel) -> bool:
    """Run one probe and write its result; student errors are recorded, never raised.

    Returns False when the student's process was lost during it (the check is then unfinished: no result).
    Raises whatever else goes wrong: a failure of this harness, which the supervisor reports as the grader's.
    """
    probe = Run(spec["name"], spec.get("params", {}), plan, out_dir, channel)
    try:
        if spec.get("needs_module", True):  # a probe of the model file alone never talks to the student's process
            begun, _ = channel.request("begin", {"reset": True}, values.Files())
            if "error" in begun:
                raise StudentError(**{k: begun["error"].get(k, "") for k in ("function", "kind", "message", "frames")})
        resolve(spec["probe"])(probe)
    except StudentError as error:
        probe.errors.append({"case": "probe", **error.info})
    except ExecutorLost as lost:
        if lost.protocol:  # for the supervisor: the student's process is alive but broke the protocol
            with open(os.path.join(out_dir, "lost.json"), "w") as handle:
                json.dump({"protocol_violation": True, "detail": str(lost)[:300]}, handle)
        return False
    probe.write()
    return True


def harness_failure(error: BaseException, name: str) -> dict:
    return {"case": "probe", "function": name, "kind": "harness",
            "message": f"{type(error).__name__}: {_message(error)}",
            "frames": [{"line": f.lineno, "function": f.name, "code": (f.line or "")[:200]}
                       for f in traceback.extract_tb(error.__traceback__)[-4:]]}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)[:200]


def _message(error: BaseException) -> str:
    try:
        return str(error)[:MAX_MESSAGE]
    except BaseException:
        return "<unprintable>"
