"""A version's pins: the hashes of what defines it and the library versions its reference scores were computed with.

``python -m autograder release`` writes them at the end of ``solutions/<version>/assignment.toml`` (below a
marker line, so the hand-written part above is never touched): the SHA-256 of the released stubs, of every
released file, of the hidden graders, the rubric, the reference scores and the dataset files, and the
Python, Keras, TensorFlow and numpy versions recorded in the reference scores. ``check_pins`` tells what
no longer matches (``tests/test_release.py`` runs it on every committed version); ``version_warnings``
tells the TA when the running libraries differ from the reference's, whose thresholds may then be off.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

from .assignment import Assignment

MARKER = "# -- pins: written by `python -m autograder release`; do not edit below this line --"
LIBRARIES = {"keras": ("keras",), "tensorflow": ("tensorflow", "tensorflow-cpu"), "numpy": ("numpy",)}


def _digest(paths: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def compute_pins(assignment: Assignment) -> dict:
    """What the version's pins are now, from the files on disk."""
    release = [p for p in assignment.release_dir.glob("*") if p.is_file()]
    graders = [p for p in assignment.grading_dir.rglob("*") if p.is_file() and p.suffix in (".py", ".toml")
               and "__pycache__" not in p.parts]
    pins = {
        "stubs": _digest([assignment.release_dir / assignment.module], assignment.release_dir)
        if (assignment.release_dir / assignment.module).is_file() else "",
        "release": _digest(release, assignment.release_dir) if release else "",
        "graders": _digest(graders, assignment.grading_dir),
        "rubric": _digest([assignment.rubric_path], assignment.grading_dir),
        "reference_scores": _digest([assignment.reference_path], assignment.reference_path.parent)
        if assignment.reference_path.is_file() else "",
        "data": {role: file.content_sha256 or (file.sha256[0] if file.sha256 else "")
                 for role, file in sorted(assignment.dataset.files.items())},
    }
    pins["reference_versions"] = reference_versions(assignment)
    return pins


def reference_versions(assignment: Assignment) -> dict:
    """The library versions the reference scores were computed with (empty without reference scores)."""
    if not assignment.reference_path.is_file():
        return {}
    recorded = json.loads(assignment.reference_path.read_text()).get("versions", {})
    found = {"python": recorded.get("python"), "keras": recorded.get("keras"), "numpy": recorded.get("numpy"),
             "tensorflow": recorded.get("backend_version") if recorded.get("backend") == "tensorflow" else None}
    return {key: value for key, value in found.items() if value}


def _toml(pins: dict) -> str:
    lines = [MARKER, "[pins]"]
    for key in ("stubs", "release", "graders", "rubric", "reference_scores"):
        lines.append(f'{key} = "{pins[key]}"')
    lines.append("[pins.data]")
    lines += [f'{role} = "{value}"' for role, value in pins["data"].items()]
    lines.append("[pins.reference_versions]")
    lines += [f'{name} = "{value}"' for name, value in sorted(pins["reference_versions"].items())]
    return "\n".join(lines) + "\n"


def write_pins(assignment: Assignment) -> None:
    """Rewrite the pins section of the manifest (everything below ``MARKER``)."""
    text = assignment.manifest_path.read_text()
    head = text.split(MARKER)[0].rstrip("\n") + "\n\n"
    assignment.manifest_path.write_text(head + _toml(compute_pins(assignment)))


def check_pins(assignment: Assignment) -> list[str]:
    """What differs between the manifest's pins and the files (empty: the version is as released)."""
    recorded = assignment.manifest.get("pins")
    if not recorded:
        return [f"{assignment.manifest_path} has no pins: run `python -m autograder release --version "
                f"{assignment.version}`"]
    current = compute_pins(assignment)
    return [f"{key}: pinned {recorded.get(key)!r}, now {value!r}" for key, value in current.items()
            if recorded.get(key) != value]


def running_versions() -> dict:
    """This machine's Python and library versions (package metadata: nothing is imported)."""
    found = {"python": platform.python_version()}
    for name, packages in LIBRARIES.items():
        for package in packages:
            try:
                found[name] = metadata.version(package)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def version_warnings(assignment: Assignment) -> list[str]:
    """Where the running libraries differ from those the version's reference scores were computed with."""
    pinned = (assignment.manifest.get("pins") or {}).get("reference_versions") or reference_versions(assignment)
    running = running_versions()
    differ = {name: (pinned[name], running.get(name)) for name in pinned if running.get(name) != pinned[name]}
    if not differ:
        return []
    listed = ", ".join(f"{name} {now or 'missing'} (reference {then})" for name, (then, now) in sorted(differ.items()))
    return [f"warning: assignment {assignment.version}'s reference scores were computed with other versions: "
            f"{listed}. Accuracies (and so the thresholds) may differ slightly; recompute them with "
            f"`python -m autograder reference all --version {assignment.version}` if grades look off."]
