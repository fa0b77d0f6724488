"""The dataset loader: the official files, verified (by the file's or its content's SHA-256); a corrupted file
refused; clear messages when data is missing; the released copy of it behaves the same."""

import gzip
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from autograder import assignment
from autograder.datasets import DatasetError as MnistDataError
from autograder.datasets import check_configured_folder as _check
from autograder.datasets import load

DATASET = assignment.load("v1").dataset.as_dict()
ENV_VAR = DATASET["env"]
IDX_FILES = {role: (entry["name"], entry["sha256"]) for role, entry in DATASET["files"].items() if role != "npz"}


def load_mnist(data_dir=None, *, verify=True):
    return load(DATASET, data_dir, verify=verify)


def check_configured_folder(data_dir=None):
    return _check(DATASET, data_dir)


@pytest.fixture(scope="module")
def official_dir():
    folder = os.environ.get(ENV_VAR)
    if not folder:
        pytest.skip(f"{ENV_VAR} is not set (CI sets it to the official files)")
    return folder


def test_loads_the_official_files(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert int(x_train.max()) == 255 and y_train[:5].tolist() == [5, 0, 4, 1, 9]


def test_a_corrupted_file_is_refused(official_dir, tmp_path):
    for name, _ in IDX_FILES.values():
        shutil.copy(os.path.join(official_dir, name), tmp_path / name)
    target = tmp_path / IDX_FILES["test_labels"][0]
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(MnistDataError, match="corrupted"):
        load_mnist(tmp_path)


def test_a_keras_npz_is_accepted_and_verified(mnist, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    with pytest.raises(MnistDataError, match="SHA-256"):  # not byte-identical to Keras's file
        load_mnist(tmp_path)
    (x2, _), _ = load_mnist(tmp_path, verify=False)
    assert np.array_equal(x2, x_train)


def test_a_truncated_idx_file_is_refused(official_dir, tmp_path):
    for name, _ in IDX_FILES.values():
        shutil.copy(os.path.join(official_dir, name), tmp_path / name)
    name = IDX_FILES["test_labels"][0]
    raw = gzip.decompress((tmp_path / name).read_bytes())[:-10]
    (tmp_path / name).write_bytes(gzip.compress(raw))
    with pytest.raises(MnistDataError, match="header promises"):
        load_mnist(tmp_path, verify=False)


def test_a_recompressed_file_passes_by_its_content(official_dir, tmp_path):
    """A distribution may ship the same data in its own gzip container (Debian's Fashion-MNIST does): the file's
    hash differs, its content's does not."""
    for name, _ in IDX_FILES.values():
        shutil.copy(os.path.join(official_dir, name), tmp_path / name)
    name = IDX_FILES["test_labels"][0]
    (tmp_path / name).write_bytes(gzip.compress(gzip.decompress((tmp_path / name).read_bytes()), mtime=0))
    (_, _), (_, y_test) = load_mnist(tmp_path)
    assert len(y_test) == 10000


def test_missing_folder_and_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(MnistDataError, match="not a folder"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(MnistDataError, match="Expected the four files"):
        load_mnist(tmp_path)


def test_the_quick_check_gives_the_same_messages_and_passes_real_folders(official_dir, tmp_path, monkeypatch):
    with pytest.raises(MnistDataError, match="not a folder"):
        check_configured_folder(tmp_path / "nowhere")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(MnistDataError, match="Expected the four files"):
        check_configured_folder()
    check_configured_folder(official_dir)
    monkeypatch.delenv(ENV_VAR)
    check_configured_folder()  # nothing configured: Keras's cache or download decides later


@pytest.mark.slow
def test_offline_without_data_explains_the_fix(tmp_path):
    """No folder, no Keras cache, no network: the message names MNIST_DATA_DIR and the files."""
    code = "from autograder import assignment; assignment.load('v1').load_dataset()"
    env = {key: value for key, value in os.environ.items() if key != ENV_VAR}
    env.update(KERAS_HOME=str(tmp_path / "keras"), HOME=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3",
               https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")
    result = subprocess.run(["unshare", "--net", sys.executable, "-c", code] if os.geteuid() == 0
                            else [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0
    assert "MNIST_DATA_DIR" in result.stderr and "train-images-idx3-ubyte.gz" in result.stderr


def test_the_released_loader_is_the_same_loader(official_dir, tmp_path):
    """What students get (mnist_data.py, generated) loads and verifies exactly like the grader's loader."""
    from autograder import release
    for name, text in release.release_loader(assignment.load("v1")).items():
        (tmp_path / name).write_text(text)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from mnist_data import load_mnist; "
            "(x, y), (xt, yt) = load_mnist(); print(x.shape, yt[:5].tolist())")
    result = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ}, timeout=120)
    assert result.returncode == 0 and "(60000, 28, 28) [7, 2, 1, 0, 4]" in result.stdout, result.stderr
