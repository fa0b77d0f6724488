"""The loader: the official files, verified; a corrupted file refused; clear messages when data is missing."""

import gzip
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from autograder.mnist_data import ENV_VAR, IDX_FILES, MnistDataError, check_configured_folder, load_mnist


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
    with pytest.raises(MnistDataError, match="corrupted or not the official file"):
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


def test_missing_folder_and_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(MnistDataError, match="not a folder"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(MnistDataError, match="Expected the four official files"):
        load_mnist(tmp_path)


def test_the_quick_check_gives_the_same_messages_and_passes_real_folders(official_dir, tmp_path, monkeypatch):
    with pytest.raises(MnistDataError, match="not a folder"):
        check_configured_folder(tmp_path / "nowhere")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(MnistDataError, match="Expected the four official files"):
        check_configured_folder()
    check_configured_folder(official_dir)
    monkeypatch.delenv(ENV_VAR)
    check_configured_folder()  # nothing configured: Keras's cache or download decides later


@pytest.mark.slow
def test_offline_without_data_explains_the_fix(tmp_path):
    """No folder, no Keras cache, no network: the message names MNIST_DATA_DIR and the files."""
    code = "from autograder.mnist_data import load_mnist; load_mnist()"
    env = {key: value for key, value in os.environ.items() if key != ENV_VAR}
    env.update(KERAS_HOME=str(tmp_path / "keras"), HOME=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3",
               https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")
    result = subprocess.run(["unshare", "--net", sys.executable, "-c", code] if os.geteuid() == 0
                            else [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0
    assert "MNIST_DATA_DIR" in result.stderr and "train-images-idx3-ubyte.gz" in result.stderr
