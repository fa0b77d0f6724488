"""An assignment version as data: the one place the engine learns what it grades.

Each version is a folder ``solutions/<version>/`` with a manifest ``assignment.toml`` (names of the files
students hand in, the dataset and its checksums, the lecture's reference model, what students install),
the instructor's sources (solution module, notebook, public tests, student README) and ``grading/``
(the rubric with the graded functions, the hidden graders and what the sandbox calls, the probe inputs).
Its student release is ``assignments/<version>/``, its reference scores ``data/<version>/``, its example
submissions ``examples/<version>/``. Nothing in the engine names a function, a file or a dataset of any
version: everything comes from here.

Example:
    >>> v1 = load("v1")
    >>> v1.module, v1.function_names[:2], v1.dataset.title
    ('hello_mnist.py', ('preprocess', 'build_model'), 'MNIST')
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .settings import REPO_DIR

SOLUTIONS_DIR = REPO_DIR / "solutions"
ASSIGNMENTS_DIR = REPO_DIR / "assignments"
DATA_DIR = REPO_DIR / "data"
EXAMPLES_DIR = REPO_DIR / "examples"
MANIFEST = "assignment.toml"
VERSION_NAME = re.compile(r"^v\d+[a-z0-9._-]*$")


class AssignmentError(ValueError):
    """A version that does not exist or whose definition is inconsistent: the instructor's to fix (exit 2)."""


@dataclass(frozen=True)
class DatasetFile:
    role: str
    name: str
    sha256: tuple[str, ...]         # accepted digests of the file itself (as published, as a distribution ships it)
    content_sha256: str | None      # digest of the uncompressed content, whatever the gzip container


@dataclass(frozen=True)
class Dataset:
    name: str                       # "mnist"
    title: str                      # "MNIST", for messages
    what: str                       # "handwritten digits"
    env: str                        # the environment variable naming a folder with the files
    keras: str | None               # keras.datasets.<keras> for users online
    loader: str                     # the module released to students ("mnist_data")
    load_function: str              # its function ("load_mnist")
    classes: tuple[str, ...]
    files: dict[str, DatasetFile]
    source: str = ""
    folders: tuple[str, ...] = ()   # where an installed distribution package puts the files

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "what": self.what, "env": self.env, "keras": self.keras,
                "loader": self.loader, "load_function": self.load_function, "classes": list(self.classes),
                "source": self.source, "folders": list(self.folders),
                "files": {role: {"name": f.name, "sha256": list(f.sha256), "content_sha256": f.content_sha256}
                          for role, f in self.files.items()}}


@dataclass(frozen=True)
class Function:
    name: str
    label: str                      # the terminal table's column
    kind: str = "function"          # "function" (in the module), "model_file" (the submitted model), or
                                    # "answer" (a notebook's "your turn" cell: notebook submissions only)
    grade_id: str = ""              # an answer's nbgrader grade_id
    variables: tuple[str, ...] = ()  # the names an answer cell must set (the first one finds the cell)


@dataclass(frozen=True)
class Assignment:
    version: str
    name: str
    title: str
    due: str
    module: str
    notebook: str
    model: str
    public_tests: str
    student_requirements: tuple[str, ...]
    extras: tuple[str, ...]
    dataset: Dataset
    reference_model: dict
    functions: tuple[Function, ...]
    source_dir: Path
    manifest: dict = field(repr=False, compare=False, default_factory=dict)
    accepts: tuple[str, ...] = ("module",)  # how students may hand the functions in: "module", "notebook"

    # -- where things are -------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.source_dir / MANIFEST

    @property
    def grading_dir(self) -> Path:
        return self.source_dir / "grading"

    @property
    def rubric_path(self) -> Path:
        return self.grading_dir / "rubric.toml"

    @property
    def release_dir(self) -> Path:
        return ASSIGNMENTS_DIR / self.version

    @property
    def reference_path(self) -> Path:
        return DATA_DIR / self.version / "reference_scores.json"

    @property
    def examples_dir(self) -> Path:
        return EXAMPLES_DIR / self.version

    @property
    def example_model(self) -> Path:
        return self.examples_dir / self.model

    @property
    def solution_module(self) -> Path:
        return self.source_dir / self.module

    @property
    def grading_package(self) -> str:
        """The graders' package name, unique per version (two versions graded in one process never collide)."""
        return f"solutions.{self.version.replace('.', '_').replace('-', '_')}.grading"

    # -- what is graded ---------------------------------------------------------------------------
    @property
    def function_names(self) -> tuple[str, ...]:
        return tuple(function.name for function in self.functions)

    @property
    def module_functions(self) -> tuple[str, ...]:
        return tuple(function.name for function in self.functions if function.kind == "function")

    def graded_functions(self, *, notebook: bool = False) -> tuple[str, ...]:
        """The functions a submission is graded on, in order: a module's leave out the notebook's answers."""
        answers = {function.name for function in self.answers}
        return tuple(name for name in self.function_names if notebook or name not in answers)

    @property
    def answers(self) -> tuple[Function, ...]:
        """The notebook's graded "your turn" cells (rubric kind "answer"), graded in notebook submissions only."""
        return tuple(function for function in self.functions if function.kind == "answer")

    @property
    def labels(self) -> dict[str, str]:
        return {function.name: function.label for function in self.functions}

    @property
    def module_stem(self) -> str:
        return Path(self.module).stem

    def load_dataset(self, data_dir=None):
        """``((x_train, y_train), (x_test, y_test))`` of this version's dataset, verified (``datasets.load``)."""
        from .datasets import load
        return load(self.dataset.as_dict(), data_dir)

    def check_dataset_folder(self, data_dir=None) -> None:
        """Fail fast (``DatasetError``) when the configured folder does not hold this version's dataset."""
        from .datasets import check_configured_folder
        check_configured_folder(self.dataset.as_dict(), data_dir)

    def grading_module(self, name: str):
        """Import ``solutions/<version>/grading/<name>.py`` (instructor code: trusted) under its unique package."""
        if str(self.source_dir.parent.parent) not in sys.path:
            sys.path.insert(0, str(self.source_dir.parent.parent))
        return importlib.import_module(f"{self.grading_package}.{name}")

    def layout(self, *, rescue_syntax_errors: bool = True):
        """What staging looks for in a submission of this version (``submissions.Layout``)."""
        from .submissions import Layout
        return Layout(self.version, self.name, self.module, self.model, self.notebook, rescue_syntax_errors,
                      functions=self.module_functions, accepts_notebook="notebook" in self.accepts,
                      answers=tuple((a.name, a.grade_id, a.variables) for a in self.answers))

    def manifest_hash(self) -> str:
        """SHA-256 of the manifest and the rubric: recorded with every grade made against this version."""
        digest = hashlib.sha256()
        for path in (self.manifest_path, self.rubric_path):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()


def versions() -> tuple[str, ...]:
    """Every complete version (a manifest and a rubric), oldest first (v2 before v10). A version folder an
    instructor is still writing (no ``grading/rubric.toml`` yet) is not offered for grading; ``load`` names
    what it lacks."""
    found = [path.parent.name for path in SOLUTIONS_DIR.glob(f"*/{MANIFEST}") if VERSION_NAME.match(path.parent.name)
             and (path.parent / "grading" / "rubric.toml").is_file()]
    return tuple(sorted(found, key=lambda name: [int(part) if part.isdigit() else part
                                                 for part in re.split(r"(\d+)", name)]))


def latest() -> str:
    known = versions()
    if not known:
        raise AssignmentError(f"No assignment versions under {SOLUTIONS_DIR} (each needs <version>/{MANIFEST}).")
    return known[-1]


@functools.lru_cache(maxsize=None)
def load(version: str) -> Assignment:
    """The version's definition, checked.

    Raises:
        AssignmentError: no such version, or a manifest or rubric that is inconsistent (names what to fix).
    """
    source_dir = SOLUTIONS_DIR / version
    path = source_dir / MANIFEST
    if not VERSION_NAME.match(version) or not path.is_file():
        raise AssignmentError(f"There is no assignment version {version!r}: known versions are "
                              f"{', '.join(versions()) or 'none'} (folders solutions/<version>/ with {MANIFEST}).")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise AssignmentError(f"Cannot read {path}: {error}") from None
    info = data.get("assignment", {})
    if info.get("version") != version:
        raise AssignmentError(f"{path}: [assignment] version is {info.get('version')!r}, but the folder is {version!r}.")
    try:
        assignment = Assignment(
            version=version, name=info["name"], title=info["title"], due=info.get("due", "see the course page"),
            module=info["module"], notebook=info.get("notebook", ""), model=info.get("model", "model.keras"),
            public_tests=info.get("public_tests", ""),
            student_requirements=tuple(info.get("student_requirements", ())),
            extras=tuple(info.get("extras", ())),
            dataset=_dataset(data["dataset"]), reference_model=dict(data.get("reference", {})),
            functions=_functions(source_dir / "grading" / "rubric.toml"), source_dir=source_dir, manifest=data,
            accepts=tuple(info.get("accepts", ("module",))))
    except KeyError as error:
        raise AssignmentError(f"{path} lacks the key {error} (see solutions/v1/{MANIFEST} for every key).") from None
    unknown = set(assignment.accepts) - {"module", "notebook"}
    if unknown or "module" not in assignment.accepts:
        raise AssignmentError(f"{path}: accepts = {list(assignment.accepts)}; list \"module\" and optionally "
                              "\"notebook\" (the module is what the public tests and the demo import).")
    for name in (assignment.module, assignment.notebook, assignment.model):
        if name and ("/" in name or name.startswith(".")):
            raise AssignmentError(f"{path}: {name!r} must be a plain file name.")
    return assignment


def _dataset(table: dict) -> Dataset:
    files = {}
    for role, entry in table.get("files", {}).items():
        digests = entry.get("sha256", ())
        digests = (digests,) if isinstance(digests, str) else tuple(digests)
        files[role] = DatasetFile(role, entry["name"], digests, entry.get("content_sha256"))
    return Dataset(name=table["name"], title=table.get("title", table["name"]), what=table.get("what", "images"),
                   env=table["env"], keras=table.get("keras"), loader=table["loader"],
                   load_function=table["load_function"], classes=tuple(table["classes"]), files=files,
                   source=table.get("source", ""), folders=tuple(table.get("folders", ())))


def _functions(rubric_path: Path) -> tuple[Function, ...]:
    try:
        data = tomllib.loads(rubric_path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise AssignmentError(f"Cannot read the rubric {rubric_path}: {error}") from None
    functions = []
    for entry in data.get("function", []):
        if not isinstance(entry.get("name"), str) or not entry["name"].isidentifier():
            raise AssignmentError(f"{rubric_path}: every [[function]] needs a name that is a Python identifier.")
        kind = entry.get("kind", "function")
        if kind not in ("function", "model_file", "answer"):
            raise AssignmentError(f"{rubric_path}: function {entry['name']!r} has kind {kind!r}; use \"function\", "
                                  "\"model_file\" or \"answer\".")
        variables = tuple(entry.get("variables", ()))
        if kind == "answer" and (not isinstance(entry.get("grade_id"), str) or not variables
                                 or not all(isinstance(v, str) and v.isidentifier() for v in variables)):
            raise AssignmentError(f"{rubric_path}: answer {entry['name']!r} needs grade_id (the cell's nbgrader "
                                  "grade_id) and variables (the names the cell sets).")
        functions.append(Function(entry["name"], str(entry.get("label", entry["name"][:5])), kind,
                                  str(entry.get("grade_id", "")), variables))
    if not functions:
        raise AssignmentError(f"{rubric_path} lists no [[function]] (the graded functions, in order).")
    if len({f.name for f in functions}) != len(functions):
        raise AssignmentError(f"{rubric_path} lists a function twice.")
    return tuple(functions)
