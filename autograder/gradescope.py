"""Past one machine: a Gradescope autograder bundle, and the entry point that runs inside it.

``build_bundle()`` writes a zip with Gradescope's layout: ``setup.sh`` (installs bubblewrap and the
grader's Python packages when Gradescope builds the image), ``run_autograder`` (grades
``/autograder/submission`` into ``/autograder/results/results.json``), this package with its hidden
graders and rubric, the reference scores, and the four MNIST files the probes and the test set come
from. ``run()`` is what ``run_autograder`` calls: the same ``grade()`` as on a TA's machine, one
submission, one job, then the results copied where Gradescope reads them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from . import assignment as assignments
from .settings import PACKAGE_DIR, REPO_DIR

# What grading one submission imports (the distributions, in pyproject.toml's names). The bundle pins each to an
# exact version: keras, TensorFlow and numpy to those the version's reference scores were computed with, the
# rest to this machine's (where the tests pass). Not here: what only the instructor's and TA's tools use (the
# notebook runner, the demo's Gradio and browser, matplotlib, copydetect for a class's similarity report).
GRADING_DISTRIBUTIONS = ("numpy", "keras", "tensorflow-cpu", "pytest", "sqlalchemy", "filelock", "pyyaml",
                         "anyascii", "nbformat")
REFERENCE_PINNED = {"numpy": "numpy", "keras": "keras", "tensorflow-cpu": "tensorflow"}


def grader_lock(assignment) -> list[str]:
    """``name==version`` for every distribution grading needs (``GRADING_DISTRIBUTIONS``).

    Raises:
        BundleError: no reference scores to pin keras, TensorFlow and numpy to, or a distribution not installed.
    """
    from importlib import metadata

    from .pins import reference_versions
    reference = reference_versions(assignment)
    lines = []
    for name in GRADING_DISTRIBUTIONS:
        if name in REFERENCE_PINNED:
            version = reference.get(REFERENCE_PINNED[name])
            if not version:
                raise BundleError(f"{assignment.reference_path} records no {REFERENCE_PINNED[name]} version; run "
                                  f"`python -m autograder reference all --version {assignment.version}`.")
        else:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                raise BundleError(f"{name} is not installed here, so its version cannot be pinned: `./run test` "
                                  "installs the grader's environment.") from None
        lines.append(f"{name}=={version}")
    return lines

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (Ubuntu 24.04 base image: Python 3.12).
# The reference scores were computed with Python {python}: uv installs that Python (a standalone build) and
# requirements.txt's exact versions into /autograder/venv. If uv cannot, the image's own python3 is used (the
# lock resolves for Python 3.12 as well) and every result's extra_data.version_warnings names the difference.
set -euo pipefail
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap python3 python3-venv python3-pip util-linux
if python3 -m pip install --break-system-packages --quiet uv \\
        && python3 -m uv python install {python} \\
        && python3 -m uv venv --python {python} /autograder/venv; then
    python3 -m uv pip install --python /autograder/venv/bin/python -r /autograder/source/requirements.txt
else
    echo "setup.sh: could not install Python {python} with uv; grading with the image's python3" >&2
    rm -rf /autograder/venv
    python3 -m venv /autograder/venv
    /autograder/venv/bin/pip install --upgrade pip
    /autograder/venv/bin/pip install -r /autograder/source/requirements.txt
fi
# Warm the bytecode caches so each submission starts faster.
/autograder/venv/bin/python -c "import keras, numpy, pytest, sqlalchemy" >/dev/null 2>&1 || true
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission: /autograder/submission in, /autograder/results/results.json out.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
cd "$ROOT/source"
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONPATH="$ROOT/source"
exec "$PYTHON" -m autograder.gradescope "$ROOT" "$(cat "$ROOT/source/VERSION")"
"""


class BundleError(RuntimeError):
    """The bundle cannot be built (missing reference scores or MNIST files)."""


def build_bundle(output: Path, *, version: str | None = None) -> Path:
    """Write the Gradescope autograder zip for one assignment version to ``output`` and return its path."""
    assignment = assignments.load(version or assignments.latest())
    dataset = assignment.dataset
    if not assignment.reference_path.exists():
        raise BundleError(f"{assignment.reference_path} is missing: run `python -m autograder reference all --version "
                          f"{assignment.version}` first.")
    from .datasets import IDX_ROLES, configured_folder
    folder = configured_folder(dataset.as_dict())
    names = [dataset.files[role].name for role in IDX_ROLES]
    if folder is None or not all((folder / name).is_file() for name in names):
        raise BundleError(f"Set {dataset.env} to the folder with the four {dataset.title} files; the bundle carries "
                          "them so Gradescope never downloads anything while grading.")
    from .pins import reference_versions
    output = Path(output)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as bundle:
        reference_python = reference_versions(assignment).get("python")
        if not reference_python:
            raise BundleError(f"{assignment.reference_path} records no Python version; run `python -m autograder "
                              f"reference all --version {assignment.version}`.")
        _add_text(bundle, "setup.sh", SETUP_SH.format(python=reference_python), executable=True)
        _add_text(bundle, "run_autograder", RUN_AUTOGRADER, executable=True)
        _add_text(bundle, "requirements.txt", f"# Exact versions: keras, TensorFlow and numpy as {assignment.version}'s "
                  f"reference scores were computed with (Python {reference_python}); the rest as tested.\n"
                  + "\n".join(grader_lock(assignment)) + "\n")
        _add_text(bundle, "VERSION", assignment.version + "\n")
        for path in sorted(PACKAGE_DIR.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                bundle.write(path, f"autograder/{path.relative_to(PACKAGE_DIR)}")
        # The version's definition and hidden graders (never the solution module or the notebook).
        for path in [REPO_DIR / "solutions" / "__init__.py", assignment.source_dir / "__init__.py",
                     assignment.manifest_path, *sorted(assignment.grading_dir.rglob("*"))]:
            if path.is_file() and "__pycache__" not in path.parts:
                bundle.write(path, str(path.relative_to(REPO_DIR)))
        bundle.write(REPO_DIR / "pyproject.toml", "pyproject.toml")
        bundle.write(assignment.reference_path, str(assignment.reference_path.relative_to(REPO_DIR)))
        for name in names:
            bundle.write(folder / name, f"data/{assignment.version}/{dataset.name}/{name}")
    return output


def _add_text(bundle: zipfile.ZipFile, name: str, text: str, *, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, text)


GRADER_FAILED_EXIT = 1  # run_autograder's status when no grade was computed: Gradescope marks the run as failed
NOT_GRADED_MESSAGE = ("No grade was computed for this submission: the autograder could not run here ({reason}). "
                      "This is not a judgement of your work, and the points shown, if any, are not a grade. Tell your "
                      "course staff; once they fix the autograder they can regrade every submission at once.")


def run(root: Path, version: str) -> int:
    """Grade ``root/submission`` and write ``root/results/results.json`` (Gradescope's contract).

    When the grader cannot grade (no isolation tier at least as strong as the configured minimum, a grader
    failure twice over), no score is written: the results carry the reason in the visible ``output`` and
    ``extra_data.not_graded`` / ``extra_data.grader_error`` for the staff, and the exit code is 1, so Gradescope
    shows the run as failed rather than as a grade. A submission's own faults never do this.
    """
    from .grade import SUBMISSIONS_DIR, GraderError, grade
    from .settings import load_settings
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings({"jobs": 1})
    assignment = assignments.load(version)
    # The bundle carries the dataset (data/<version>/<name>/): point the loader at it.
    os.environ.setdefault(assignment.dataset.env, str(root / "source" / "data" / version / assignment.dataset.name))
    from .pins import version_warnings
    warnings = version_warnings(assignment)
    with tempfile.TemporaryDirectory(prefix="gradescope-") as temporary:
        out = Path(temporary) / "out"
        try:
            outcome = grade([root / "submission"], out_dir=out, settings=settings, progress=False, version=version,
                            command="gradescope run_autograder")[0]
        except (GraderError, OSError) as error:
            return _not_graded(results_dir, str(error), warnings)
        if not outcome.graded:
            return _not_graded(results_dir, outcome.report.failure or "the grader failed twice", warnings)
        folder = out / SUBMISSIONS_DIR / outcome.report.name
        results = json.loads((folder / "results.json").read_text())
        if warnings:  # for the instructor (Gradescope shows extra_data to staff only), not the student
            results.setdefault("extra_data", {})["version_warnings"] = warnings
        (results_dir / "results.json").write_text(json.dumps(results, indent=1))
        shutil.copy(folder / "feedback.html", results_dir / "feedback.html")
    return 0


def _not_graded(results_dir: Path, reason: str, warnings: list[str]) -> int:
    """results.json without a score: the reason, visibly, and the markers the staff can search the results for."""
    from .text import plain
    short = plain(reason.strip().splitlines()[0] if reason.strip() else "unknown error", limit=300)
    failure = {"output": NOT_GRADED_MESSAGE.format(reason=short), "output_format": "text", "visibility": "visible",
               "stdout_visibility": "visible", "tests": [],
               "extra_data": {"not_graded": True, "grader_error": plain(reason, limit=4000),
                              "version_warnings": warnings}}
    (results_dir / "results.json").write_text(json.dumps(failure, indent=1))
    print(f"error: not graded: {reason}", file=sys.stderr)
    return GRADER_FAILED_EXIT


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/autograder"),
                 sys.argv[2] if len(sys.argv) > 2 else assignments.latest()))
