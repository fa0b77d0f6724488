# Generated from autograder/mnist_data.py by `python -m autograder release` (hello_mnist v1); instructors: edit the source and release again.
"""Load MNIST from a local folder (verified against the official checksums) or through Keras's cache.

This is the one loader the notebook, the graders and the benchmarks use. It depends on numpy and the
standard library only; Keras is imported just for the online fallback.

Where the data comes from, in order:

1. The folder named by the environment variable ``MNIST_DATA_DIR`` (or the ``data_dir`` argument):
   either the four official LeCun files (``train-images-idx3-ubyte.gz`` ...) or a Keras-style
   ``mnist.npz``. Every file is checked against its published SHA-256 before it is used.
2. Keras's cache, ``~/.keras/datasets/mnist.npz`` (``KERAS_HOME`` moves it), downloading it once
   when online (``keras.datasets.mnist.load_data``).

Example:
    >>> (x_train, y_train), (x_test, y_test) = load_mnist()
    >>> x_train.shape, x_train.dtype, y_test.shape
    ((60000, 28, 28), dtype('uint8'), (10000,))
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np

ENV_VAR = "MNIST_DATA_DIR"

# Published SHA-256 checksums of the official files (yann.lecun.com/exdb/mnist) and of the
# mnist.npz that Keras downloads (keras/datasets/mnist.py).
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz",
                     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train_labels": ("train-labels-idx1-ubyte.gz",
                     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "test_images": ("t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
NPZ_FILE = ("mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1")

NUM_TRAIN = 60_000
NUM_TEST = 10_000
IMAGE_SHAPE = (28, 28)


class MnistDataError(RuntimeError):
    """MNIST could not be found, or a file failed its checksum or format check."""


def load_mnist(data_dir: str | os.PathLike | None = None, *, verify: bool = True):
    """Return MNIST as ``((x_train, y_train), (x_test, y_test))``, like ``keras.datasets.mnist``.

    Args:
        data_dir: folder holding the four official ``.gz`` files or ``mnist.npz``. Defaults to the
            ``MNIST_DATA_DIR`` environment variable; when neither is set, Keras's cache/download is used.
        verify: check every file against its published SHA-256 (on by default; about 0.1 s).

    Returns:
        Two pairs of numpy arrays: images uint8 ``(n, 28, 28)`` and labels uint8 ``(n,)``,
        60,000 for training and 10,000 for testing.

    Raises:
        MnistDataError: the folder lacks the files, a file is corrupted, or there is no data and no
            network. The message says how to fix it.
    """
    folder = _configured_folder(data_dir)
    if folder is not None:
        return _load_folder(folder, verify=verify)
    return _load_with_keras()


def _configured_folder(data_dir) -> Path | None:
    """The argument, else ``MNIST_DATA_DIR``; None when neither names a folder (Keras's cache is used)."""
    folder = data_dir if data_dir is not None else os.environ.get(ENV_VAR) or None
    return None if folder is None else Path(folder)


def check_configured_folder(data_dir: str | os.PathLike | None = None) -> None:
    """Fail in milliseconds when the configured folder (argument or ``MNIST_DATA_DIR``) holds no MNIST files.

    Only looks for the files; `load_mnist` still verifies them. Without a configured folder there is
    nothing to check before Keras's cache or download is tried.

    Raises:
        MnistDataError: the message `load_mnist` would give, saying what to fix.
    """
    folder = _configured_folder(data_dir)
    if folder is not None:
        _folder_layout(folder)


def _folder_layout(folder: Path) -> str:
    """"idx" or "npz": which files the folder holds; MnistDataError when it holds neither."""
    if not folder.is_dir():
        raise MnistDataError(
            f"{ENV_VAR} points to {str(folder)!r}, which is not a folder. Set it to the folder that holds "
            f"the four MNIST files ({', '.join(name for name, _ in IDX_FILES.values())}) or mnist.npz.")
    if all((folder / name).is_file() for name, _ in IDX_FILES.values()):
        return "idx"
    if (folder / NPZ_FILE[0]).is_file():
        return "npz"
    present = sorted(p.name for p in folder.iterdir())[:10]
    raise MnistDataError(
        f"No MNIST files in {str(folder)!r} (found: {present or 'nothing'}). Expected the four official "
        f"files {[name for name, _ in IDX_FILES.values()]} or Keras's mnist.npz.")


def _load_folder(folder: Path, *, verify: bool):
    if _folder_layout(folder) == "idx":
        arrays = {}
        for key, (name, sha256) in IDX_FILES.items():
            raw = (folder / name).read_bytes()
            if verify:
                _check_sha256(folder / name, raw, sha256)
            arrays[key] = _parse_idx(gzip.decompress(raw), name)
        result = ((arrays["train_images"], arrays["train_labels"]),
                  (arrays["test_images"], arrays["test_labels"]))
        _check_shapes(result, folder)
        return result
    return _load_npz(folder / NPZ_FILE[0], verify=verify)


def _load_npz(path: Path, *, verify: bool):
    if verify:
        _check_sha256(path, path.read_bytes(), NPZ_FILE[1])
    with np.load(path, allow_pickle=False) as archive:
        result = ((archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"]))
    _check_shapes(result, path)
    return result


def _load_with_keras():
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    cached = keras_home / "datasets" / NPZ_FILE[0]
    if cached.is_file():
        return _load_npz(cached, verify=True)
    try:
        import keras  # the download path only; importing Keras costs seconds
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # no network, DNS failure, proxy ...
        raise MnistDataError(
            "MNIST is not on this machine and could not be downloaded "
            f"({type(error).__name__}: {error}).\n"
            f"Fix: set {ENV_VAR} to a folder with the four official files from "
            "https://yann.lecun.com/exdb/mnist/ (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) or Keras's mnist.npz, e.g.\n"
            f"    export {ENV_VAR}=/path/to/mnist\n"
            "or run once with internet access so Keras can download it into ~/.keras/datasets/."
        ) from error
    result = ((x_train, y_train), (x_test, y_test))
    _check_shapes(result, "keras.datasets.mnist")
    return result


def _check_sha256(path: Path, raw: bytes, expected: str) -> None:
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise MnistDataError(
            f"{path} is corrupted or not the official file: its SHA-256 is {actual}, expected {expected}. "
            "Delete it and copy or download it again.")


def _parse_idx(raw: bytes, name: str) -> np.ndarray:
    """Decode one IDX file: a big-endian magic (0x0000 0803 images, 0x0000 0801 labels), sizes, bytes."""
    if len(raw) < 8:
        raise MnistDataError(f"{name} is too short to be an IDX file ({len(raw)} bytes).")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise MnistDataError(f"{name} has an unexpected IDX header {raw[:4].hex()}; expected unsigned bytes.")
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape))
    if len(raw) - header != count:
        raise MnistDataError(f"{name} holds {len(raw) - header} data bytes; its header promises {count}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _check_shapes(result, source) -> None:
    (x_train, y_train), (x_test, y_test) = result
    expected = [(x_train, (NUM_TRAIN, *IMAGE_SHAPE)), (y_train, (NUM_TRAIN,)),
                (x_test, (NUM_TEST, *IMAGE_SHAPE)), (y_test, (NUM_TEST,))]
    for array, shape in expected:
        if array.shape != shape or array.dtype != np.uint8:
            raise MnistDataError(
                f"MNIST from {source} has an array of shape {array.shape} and dtype {array.dtype}; "
                f"expected {shape} uint8.")
    if y_train.max() > 9 or y_test.max() > 9:
        raise MnistDataError(f"MNIST from {source} has labels outside 0-9.")
