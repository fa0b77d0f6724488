"""model.keras is checked as an archive before any Keras code sees it."""

import json
import zipfile

import pytest

from autograder.model_file import check_model_file, check_config

DENSE = {"module": "keras.layers", "class_name": "Dense", "config": {"units": 10, "activation": "softmax"},
         "registered_name": None}
INPUT = {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 784]},
         "registered_name": None}


def archive(path, config, members=None):
    with zipfile.ZipFile(path, "w") as handle:
        handle.writestr("config.json", json.dumps(config))
        handle.writestr("metadata.json", "{}")
        handle.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        for name, data in (members or {}).items():
            handle.writestr(name, data)
    return path


def sequential(*layers):
    return {"module": "keras", "class_name": "Sequential", "config": {"layers": list(layers)}, "registered_name": None}


def test_a_plain_sequential_is_accepted(tmp_path):
    verdict = check_model_file(archive(tmp_path / "model.keras", sequential(INPUT, DENSE)))
    assert verdict.present and verdict.accepted, verdict


def test_the_real_example_model_is_accepted():
    from autograder import assignment
    example = assignment.load("v1").example_model
    assert example.exists(), "examples/v1/model.keras is committed"
    assert check_model_file(example).accepted


@pytest.mark.parametrize("layer, reason", [
    ({"module": "keras.layers", "class_name": "Lambda", "config": {"function": {"class_name": "__lambda__"}}},
     "Lambda"),
    ({"module": "my_package", "class_name": "Dense", "config": {"units": 10}}, "outside Keras"),
    ({"module": "keras.layers", "class_name": "Dense", "config": {"units": 10, "activation": {"class_name": "x"}},
      "registered_name": None}, "activation"),
    ({"module": "keras.layers", "class_name": "Conv2D", "config": {}}, "Conv2D"),
    ({"module": "keras.layers", "class_name": "Dense", "config": {"units": 10}, "registered_name": "evil>Dense"},
     "custom registered"),
])
def test_code_and_custom_objects_are_refused(tmp_path, layer, reason):
    verdict = check_model_file(archive(tmp_path / "model.keras", sequential(INPUT, layer)))
    assert not verdict.accepted and reason in verdict.reason and verdict.flag == "unsafe_model"


def test_hdf5_garbage_traversal_and_bombs_are_refused(tmp_path):
    (tmp_path / "h5.keras").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert check_model_file(tmp_path / "h5.keras").flag == "legacy_h5"
    (tmp_path / "junk.keras").write_bytes(b"not a zip at all")
    assert check_model_file(tmp_path / "junk.keras").flag == "corrupt_model"
    traversal = archive(tmp_path / "t.keras", sequential(INPUT, DENSE), {"../evil.py": "x"})
    assert "unsafe path" in check_model_file(traversal).reason
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("config.json", json.dumps(sequential(INPUT, DENSE)))
        handle.writestr("model.weights.h5", b"\0" * (50 * 2**20))
    assert "zip bomb" in check_model_file(path).reason
    assert not check_model_file(tmp_path / "absent.keras").present


def test_deeply_nested_configs_are_refused():
    node = {"a": None}
    for _ in range(60):
        node = {"child": node}
    assert "nested" in check_config(sequential(INPUT, {**DENSE, "config": {**DENSE["config"], "deep": node}}))
