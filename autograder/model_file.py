"""Check a submitted model.keras as an archive, before any Keras code sees it (trusted side).

Only the zip's directory and its small ``config.json`` are read, with caps; nothing is extracted and
nothing is deserialised but JSON. A file that fails here is never loaded, not even in the sandbox:
legacy HDF5 (which ignored ``safe_mode`` before Keras 3.11.3), Lambda layers or any custom or
registered class, path traversal or links inside the archive, and zip bombs.
"""

from __future__ import annotations

import json
import stat
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .archives import ArchiveError, open_zip, read_member
from .text import inert
from .numpy_model import ACTIVATIONS, ALLOWED_LAYERS

MAX_MODEL_BYTES = 64 * 1024 * 1024
MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
MAX_MEMBERS = 16
MAX_DIRECTORY_BYTES = 64 * 1024  # 16 entries with 255-byte names and extras fit in a few KiB
MAX_RATIO = 100  # uncompressed / compressed per member: float32 weights compress by 1.1-3x, bombs by 1000x
ALLOWED_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
MODEL_CLASSES = ("Sequential", "Functional")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass
class ModelFileVerdict:
    present: bool
    accepted: bool = False
    reason: str = ""
    flag: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def check_model_file(path: Path, *, name: str = "") -> ModelFileVerdict:
    """Decide whether ``path`` may be loaded (in the sandbox) as the student's trained model.

    Never raises for what the file holds: every damaged or odd archive is a refusal with a reason.
    """
    path = Path(path)
    name = name or path.name
    if not path.exists():
        return ModelFileVerdict(present=False)
    if path.is_symlink() or not path.is_file():
        return ModelFileVerdict(True, reason=f"{name} is not a regular file", flag="unsafe_model")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        return ModelFileVerdict(True, reason=f"{name} is {size / 2**20:.0f} MB; the limit is "
                                f"{MAX_MODEL_BYTES // 2**20} MB (a 784-input MLP of the lectures needs about 8 MB)", flag="oversized_model")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head == HDF5_MAGIC:
        return ModelFileVerdict(True, reason=f"{name} is a legacy HDF5 (.h5) file; save it in the native format "
                                f"with model.save('{name}')", flag="legacy_h5")
    try:
        # The directory is sized up before it is parsed (a million entries must not cost the grader memory).
        with open_zip(path, max_entries=MAX_MEMBERS, max_directory_bytes=MAX_DIRECTORY_BYTES) as archive:
            problem = _check_members(archive.infolist())
            if problem:
                return ModelFileVerdict(True, reason=problem, flag="unsafe_model")
            config = read_member(archive, archive.getinfo("config.json"), limit=MAX_CONFIG_BYTES)
    except ArchiveError as error:
        if error.too_large:
            return ModelFileVerdict(True, reason=f"{name} was not opened: {error}; a Keras model has 3 files",
                                    flag="unsafe_model")
        return ModelFileVerdict(True, reason=f"{name} is not a readable Keras archive ({error}); save it again "
                                f"with model.save('{name}')", flag="corrupt_model")
    try:
        tree = json.loads(config)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return ModelFileVerdict(True, reason=f"{name} has an unreadable config.json", flag="corrupt_model")
    problem = check_config(tree)
    if problem:
        return ModelFileVerdict(True, reason=problem, flag="unsafe_model")
    return ModelFileVerdict(True, accepted=True)


def refusal(path: Path) -> str | None:
    """Why the model file at ``path`` may not be loaded (None: it may, with safe_mode). Used on the trusted side
    for a submitted file and by the sandbox's recorder for every model the student's code hands back."""
    verdict = check_model_file(path)
    if not verdict.present:
        return "there is no model file"
    return None if verdict.accepted else verdict.reason


def _check_members(members: list[zipfile.ZipInfo]) -> str | None:
    if len(members) > MAX_MEMBERS:
        return f"model.keras holds {len(members)} files; a Keras model has 3"
    names = [member.filename for member in members]
    for member in members:
        name = member.filename
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
            return f"model.keras contains a file with an unsafe path ({inert(name[:80])})"
        if stat.S_ISLNK(member.external_attr >> 16):
            return f"model.keras contains a symbolic link ({inert(name[:80])})"
        if name not in ALLOWED_MEMBERS:
            return f"model.keras contains {inert(name[:80])}; only {', '.join(ALLOWED_MEMBERS)} are expected"
        if member.compress_size and member.file_size / member.compress_size > MAX_RATIO and member.file_size > 2**20:
            return f"model.keras contains {inert(name[:80])} compressed {member.file_size // member.compress_size}:1 (a zip bomb?)"
    if sum(member.file_size for member in members) > MAX_UNCOMPRESSED_BYTES:
        return "model.keras unpacks to more than 256 MB"
    if "config.json" not in names or "model.weights.h5" not in names:
        return "model.keras lacks config.json or model.weights.h5; save the whole model with model.save('model.keras')"
    return None


def check_config(tree) -> str | None:
    """Walk a Keras model config: only allowlisted classes from the keras package, no code, no custom objects.

    Any JSON value is handled (a list where an object belongs, a string where a layer's config belongs):
    the answer is a reason to refuse, never an exception.
    """
    if not isinstance(tree, dict) or tree.get("class_name") not in MODEL_CLASSES:
        kind = tree.get("class_name") if isinstance(tree, dict) else type(tree).__name__
        return f"model.keras holds a {inert(str(kind)[:60])}; expected a keras.Sequential (or functional) model"
    model_config = tree.get("config")
    layers = model_config.get("layers") if isinstance(model_config, dict) else None
    if not isinstance(layers, list) or not layers:
        return "model.keras describes no layers"
    for layer in layers:
        kind = layer.get("class_name") if isinstance(layer, dict) else None
        if not isinstance(kind, str) or kind not in ALLOWED_LAYERS:
            return (f"model.keras uses a {inert(str(kind)[:60])} layer; only {', '.join(ALLOWED_LAYERS)} are accepted "
                    "(no Lambda or custom layers)")
        layer_config = layer.get("config")
        if not isinstance(layer_config, dict):
            return f"model.keras describes its {inert(kind)} layer without a configuration object"
        activation = layer_config.get("activation")
        if activation is not None and (not isinstance(activation, str) or activation not in ACTIVATIONS):
            return f"model.keras uses the activation {inert(str(activation)[:60])}, which is not a standard Keras activation"
    return _walk(tree, depth=0)


def check_objects(tree) -> str | None:
    """A configuration (a loss, metrics, an optimizer) refers only to standard Keras objects: no code, no custom
    or registered classes. Returns the reason to refuse it, or None."""
    return _walk(tree, depth=0)


def _walk(node, depth: int) -> str | None:
    if depth > 40:
        return "model.keras has a config nested too deeply"
    if isinstance(node, dict):
        module, registered = node.get("module"), node.get("registered_name")
        if "class_name" in node and module is not None and not (
                isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            return f"model.keras refers to code outside Keras (module {inert(str(module)[:60])})"
        if isinstance(registered, str) and ">" in registered:
            return f"model.keras refers to a custom registered object ({inert(registered[:60])})"
        if node.get("class_name") in ("Lambda", "TFOpLambda", "__lambda__") or "function_type" in node:
            return "model.keras contains a Lambda (serialised Python code)"
        return next((problem for value in node.values() if (problem := _walk(value, depth + 1))), None)
    if isinstance(node, list):
        return next((problem for value in node if (problem := _walk(value, depth + 1))), None)
    return None
