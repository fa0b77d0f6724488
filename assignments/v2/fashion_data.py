# Generated from autograder/datasets.py by `python -m autograder release` (hello_fashion v2); instructors: edit the source and release again.
"""Load an image-classification dataset in the IDX format (MNIST, Fashion-MNIST) from a local folder, every file
verified against its checksum, or through Keras's cache.

This one loader serves the notebooks, the graders and the benchmarks; it depends on numpy and the standard
library only, and is released to students with their assignment's dataset written in (``mnist_data.py`` in
v1). Keras is imported just for the online fallback. A dataset is described by a plain dict (its
assignment's ``[dataset]`` table, ``Dataset.as_dict()``): the environment variable naming its folder, the
file names with their SHA-256 (of the file, or of its uncompressed content, which a distribution's own
gzip container does not change), the Keras dataset to download when online, the class names.

Where the data comes from, in order:

1. the ``data_dir`` argument, else the folder named by the dataset's environment variable (``MNIST_DATA_DIR``);
2. a folder where a distribution package installs the files, when the dataset names one
   (Debian's ``dataset-fashion-mnist``: ``/usr/share/datasets/fashion-mnist``);
3. Keras's cache, downloading once when online (``keras.datasets.<name>.load_data``).

Example:
    >>> (x_train, y_train), (x_test, y_test) = load(DATASET)
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

IDX_ROLES = ("train_images", "train_labels", "test_images", "test_labels")


class DatasetError(RuntimeError):
    """The dataset could not be found, or a file failed its checksum or format check."""


def load(dataset: dict, data_dir: str | os.PathLike | None = None, *, verify: bool = True):
    """Return the dataset as ``((x_train, y_train), (x_test, y_test))``, like ``keras.datasets``.

    Args:
        dataset: the dataset's description (see the module docstring).
        data_dir: a folder holding its four IDX files (or Keras's ``.npz``); defaults to its environment
            variable, then to a distribution's folder; when none holds it, Keras's cache/download is used.
        verify: check every file against its SHA-256 (on by default; about 0.1 s).

    Returns:
        Two pairs of numpy arrays: images uint8 ``(n, height, width)`` and labels uint8 ``(n,)``.

    Raises:
        DatasetError: the folder lacks the files, a file is corrupted, or there is no data and no network.
            The message says how to fix it.
    """
    folder = configured_folder(dataset, data_dir)
    if folder is not None:
        return _load_folder(dataset, folder, verify=verify)
    return _load_with_keras(dataset)


def configured_folder(dataset: dict, data_dir=None) -> Path | None:
    """The argument, else the environment variable, else an existing distribution folder; None for Keras."""
    folder = data_dir if data_dir is not None else os.environ.get(dataset["env"]) or None
    if folder is not None:
        return Path(folder)
    for candidate in dataset.get("folders", ()):
        if all((Path(candidate) / dataset["files"][role]["name"]).is_file() for role in IDX_ROLES):
            return Path(candidate)
    return None


def check_configured_folder(dataset: dict, data_dir=None) -> None:
    """Fail in milliseconds when the configured folder holds none of the dataset's files.

    Only looks for the files; `load` still verifies them. Without a configured folder there is nothing to
    check before Keras's cache or download is tried.

    Raises:
        DatasetError: the message `load` would give, saying what to fix.
    """
    folder = configured_folder(dataset, data_dir)
    if folder is not None:
        _folder_layout(dataset, folder)


def _idx_names(dataset: dict) -> list[str]:
    return [dataset["files"][role]["name"] for role in IDX_ROLES]


def _folder_layout(dataset: dict, folder: Path) -> str:
    """"idx" or "npz": which files the folder holds; DatasetError when it holds neither."""
    title, variable = dataset["title"], dataset["env"]
    npz = dataset["files"].get("npz")
    if not folder.is_dir():
        raise DatasetError(
            f"{variable} points to {str(folder)!r}, which is not a folder. Set it to the folder that holds "
            f"the four {title} files ({', '.join(_idx_names(dataset))}){' or ' + npz['name'] if npz else ''}.")
    if all((folder / name).is_file() for name in _idx_names(dataset)):
        return "idx"
    if npz and (folder / npz["name"]).is_file():
        return "npz"
    present = sorted(p.name for p in folder.iterdir())[:10]
    raise DatasetError(
        f"No {title} files in {str(folder)!r} (found: {present or 'nothing'}). Expected the four files "
        f"{_idx_names(dataset)}{' or Keras' + chr(39) + 's ' + npz['name'] if npz else ''}.")


def _load_folder(dataset: dict, folder: Path, *, verify: bool):
    if _folder_layout(dataset, folder) == "idx":
        arrays = {}
        for role in IDX_ROLES:
            entry = dataset["files"][role]
            path = folder / entry["name"]
            raw = path.read_bytes()
            try:
                content = gzip.decompress(raw) if entry["name"].endswith(".gz") else raw
            except (OSError, EOFError, ValueError) as error:  # a damaged gzip stream (BadGzipFile, CRC, truncated)
                raise DatasetError(f"{path} is corrupted ({type(error).__name__}: {error}). Delete it and copy or "
                                   "download it again.") from None
            if verify:
                _check_digest(path, raw, content, entry)
            arrays[role] = _parse_idx(content, entry["name"])
        result = ((arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"]))
        _check_shapes(dataset, result, folder)
        return result
    return _load_npz(dataset, folder / dataset["files"]["npz"]["name"], verify=verify)


def _load_npz(dataset: dict, path: Path, *, verify: bool):
    raw = path.read_bytes()
    if verify:
        _check_digest(path, raw, None, dataset["files"]["npz"])
    with np.load(path, allow_pickle=False) as archive:
        result = ((archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"]))
    _check_shapes(dataset, result, path)
    return result


def _load_with_keras(dataset: dict):
    title, variable, name = dataset["title"], dataset["env"], dataset.get("keras")
    npz = dataset["files"].get("npz")
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    if npz and (keras_home / "datasets" / npz["name"]).is_file():
        return _load_npz(dataset, keras_home / "datasets" / npz["name"], verify=True)
    try:
        if not name:
            raise RuntimeError("no Keras dataset to download")
        import importlib
        keras = importlib.import_module("keras")  # the download path only; importing Keras costs seconds
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as error:  # no network, DNS failure, proxy ...
        raise DatasetError(
            f"{title} is not on this machine and could not be downloaded ({type(error).__name__}: {error}).\n"
            f"Fix: set {variable} to a folder with the four files "
            f"({', '.join(_idx_names(dataset))}){' from ' + dataset['source'] if dataset.get('source') else ''}, "
            f"e.g.\n    export {variable}=/path/to/{dataset['name']}\n"
            "or run once with internet access so Keras can download it into ~/.keras/datasets/."
        ) from error
    result = ((x_train, y_train), (x_test, y_test))
    _check_shapes(dataset, result, f"keras.datasets.{name}")
    return result


def _check_digest(path: Path, raw: bytes, content: bytes | None, entry: dict) -> None:
    accepted = entry.get("sha256") or []
    accepted = [accepted] if isinstance(accepted, str) else list(accepted)
    actual = hashlib.sha256(raw).hexdigest()
    if actual in accepted:
        return
    expected_content = entry.get("content_sha256")
    if content is not None and expected_content and hashlib.sha256(content).hexdigest() == expected_content:
        return
    raise DatasetError(
        f"{path} is corrupted or not the official file: its SHA-256 is {actual}, expected "
        f"{' or '.join(accepted) or 'its content to hash to ' + str(expected_content)}. Delete it and copy or "
        "download it again.")


def _parse_idx(raw: bytes, name: str) -> np.ndarray:
    """Decode one IDX file: a big-endian magic (0x0000 0803 images, 0x0000 0801 labels), sizes, bytes."""
    if len(raw) < 8:
        raise DatasetError(f"{name} is too short to be an IDX file ({len(raw)} bytes).")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise DatasetError(f"{name} has an unexpected IDX header {raw[:4].hex()}; expected unsigned bytes.")
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape))
    if len(raw) - header != count:
        raise DatasetError(f"{name} holds {len(raw) - header} data bytes; its header promises {count}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _check_shapes(dataset: dict, result, source) -> None:
    (x_train, y_train), (x_test, y_test) = result
    title, classes = dataset["title"], len(dataset["classes"])
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        if images.ndim != 3 or images.dtype != np.uint8 or labels.shape != (len(images),) \
                or labels.dtype != np.uint8 or images.shape[1:] != x_train.shape[1:]:
            raise DatasetError(f"{title} from {source} has arrays of shapes {images.shape} {images.dtype} and "
                               f"{labels.shape} {labels.dtype}; expected (n, height, width) uint8 and (n,) uint8.")
        if len(labels) and labels.max() >= classes:
            raise DatasetError(f"{title} from {source} has labels outside 0-{classes - 1}.")


# -- this assignment's dataset (from solutions/v2/assignment.toml) --
DATASET = {'classes': ['T-shirt/top',
             'Trouser',
             'Pullover',
             'Dress',
             'Coat',
             'Sandal',
             'Shirt',
             'Sneaker',
             'Bag',
             'Ankle boot'],
 'env': 'FASHION_MNIST_DATA_DIR',
 'files': {'test_images': {'content_sha256': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
                           'name': 't10k-images-idx3-ubyte.gz',
                           'sha256': ['346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073',
                                      'cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa']},
           'test_labels': {'content_sha256': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
                           'name': 't10k-labels-idx1-ubyte.gz',
                           'sha256': ['67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',
                                      '8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05']},
           'train_images': {'content_sha256': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
                            'name': 'train-images-idx3-ubyte.gz',
                            'sha256': ['3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84',
                                       'b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7']},
           'train_labels': {'content_sha256': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
                            'name': 'train-labels-idx1-ubyte.gz',
                            'sha256': ['a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845',
                                       '0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056']}},
 'folders': ['/usr/share/datasets/fashion-mnist'],
 'keras': 'fashion_mnist',
 'load_function': 'load_fashion_mnist',
 'loader': 'fashion_data',
 'name': 'fashion_mnist',
 'source': 'https://github.com/zalandoresearch/fashion-mnist',
 'title': 'Fashion-MNIST',
 'what': 'clothing images'}


def load_fashion_mnist(data_dir=None, *, verify=True):
    """Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``, like keras.datasets.fashion_mnist; see ``load``."""
    return load(DATASET, data_dir, verify=verify)
