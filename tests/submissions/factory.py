"""Test submissions: realistic mistakes built from the instructor's solution, raw broken inputs, attacks.

Layout (each folder's name says what it is):

    tests/submissions/mistakes/<name>/mutation.py   functions that replace the solution's (one mistake)
    tests/submissions/broken/<name>/...             a raw submission folder (syntax error, notebook, ...)
    tests/submissions/attacks/<name>/...            hostile code, as a mutation.py or a raw folder
    .../<name>/expected.toml                        the scores and flags the grader must give

``expected.toml``:

    description = "what the student did wrong"
    version = "v1"               # the assignment version it is built from (solutions/<version>/), default v1
    model = true                 # submit examples/<version>/model.keras with it (false: no model file)
    kind = "folder"              # or "zip" / "file": how the submission is handed in
    source = true                # write hello_mnist.py (false: only the folder's own files)
    stub = false                 # hand in the released stub instead of the solution
    mutation_of = "forge_records"  # use that case's mutation.py (same category) instead of one of its own
    encoding = "utf-8"           # how hello_mnist.py is saved
    rename = "hello_mnist.py"    # the module's file name
    build = "zip_bomb"           # a builder below makes the rest (archives, model files)
    [[edit]]                     # text edits of the solution: find -> replace
    find = "..."
    replace = "..."
    [scores]                     # points per graded function; functions not listed expect full marks
    build_model = 10
    [flags]
    required = ["import_error"]  # flags the TA must see

Run ``python tests/submissions/factory.py --examples`` to regenerate ``examples/<version>/submissions/``
(the README's demo) and, with ``--train-model``, the example ``model.keras`` they submit.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import struct
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))
from autograder import assignment as assignments  # noqa: E402
from autograder.release import release_module  # noqa: E402

V1 = assignments.load("v1")
EXAMPLE_MODEL = V1.example_model  # the v1 model most test submissions hand in
CATEGORIES = ("mistakes", "broken", "attacks", "v2")
# The demo grades the solution and a few common mistakes, per version.
DEMO = {"v1": ("solution", "missing_softmax", "no_shuffle", "last_batch_dropped", "predict_probabilities",
               "weights_only_save", "syntax_error"),
        "v2": ("solution", "v2_confusion_transposed", "v2_last_terms_defaults")}
MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


@dataclass
class TestSubmission:
    name: str
    category: str
    folder: Path
    description: str
    model: bool
    kind: str
    scores: dict[str, float] = field(default_factory=dict)
    required_flags: list[str] = field(default_factory=list)
    forbidden_flags: list[str] = field(default_factory=list)
    max_seconds: float | None = None
    spec: dict = field(default_factory=dict)
    version: str = "v1"

    @property
    def assignment(self):
        return assignments.load(self.version)


def released_header(version: str = "v1") -> str:
    """The first lines of the released module (they name the version); a student's hand-in keeps them."""
    text = next(iter(release_module(assignments.load(version)).values()))
    return "".join(text.splitlines(keepends=True)[:2])


def student_source(version: str = "v1") -> str:
    """The solution as a student who completed every stub of the release would hand it in: the release's header,
    the solution's text, the markers gone."""
    solution = assignments.load(version).solution_module.read_text()
    return released_header(version) + "".join(line for line in solution.splitlines(keepends=True)
                                              if not MARKER.match(line))


def apply_mutation(source: str, mutation: str) -> str:
    """Replace each function the mutation defines; append the rest (helpers, module-level code).

    ``DELETE = ["name", ...]`` in the mutation removes those functions instead.
    """
    mutated = ast.parse(mutation)
    lines = source.splitlines(keepends=True)
    targets = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
    replacements, extra, deleted = {}, [], []
    for node in mutated.body:
        segment = ast.get_source_segment(mutation, node, padded=False)
        if isinstance(node, ast.FunctionDef) and node.name in targets:
            replacements[node.name] = segment + "\n"
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DELETE" for t in node.targets):
            deleted = ast.literal_eval(node.value)
        elif isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant) \
                and isinstance(node.value.value, str) and node is mutated.body[0]:
            continue  # the mutation's own docstring
        else:
            extra.append(segment + "\n")
    for name, node in sorted(targets.items(), key=lambda item: -item[1].lineno):
        start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
        if name in deleted:
            lines[start:node.end_lineno] = []
        elif name in replacements:
            lines[start:node.end_lineno] = [replacements[name]]
    text = "".join(lines)
    return text + ("\n\n" + "\n".join(extra) if extra else "")


def load(folder: Path) -> TestSubmission:
    spec = tomllib.loads((folder / "expected.toml").read_text())
    flags = spec.get("flags", {})
    return TestSubmission(name=folder.name, category=folder.parent.name, folder=folder,
                          description=spec["description"], model=bool(spec.get("model", True)),
                          kind=spec.get("kind", "folder"), scores={k: float(v) for k, v in spec.get("scores", {}).items()},
                          required_flags=list(flags.get("required", [])),
                          forbidden_flags=list(flags.get("forbidden", [])),
                          max_seconds=spec.get("max_seconds"), spec=spec, version=spec.get("version", "v1"))


def catalogue(*categories: str) -> list[TestSubmission]:
    found = []
    for category in categories or CATEGORIES:
        for folder in sorted((HERE / category).iterdir()):
            if (folder / "expected.toml").is_file():
                found.append(load(folder))
    return found


def mutation_path(submission: TestSubmission) -> Path:
    """The case's mutation.py, or (``mutation_of``) the one of the case it shares its code with."""
    shared = submission.spec.get("mutation_of")
    return (submission.folder.parent / shared if shared else submission.folder) / "mutation.py"


def module_source(submission: TestSubmission) -> str:
    """The module text of a test submission (solution, stub, mutation and edits applied)."""
    assignment = submission.assignment
    mutation = mutation_path(submission)
    if submission.spec.get("stub"):  # the released stub, as a student downloads it; a mutation adds to it
        stub = next(iter(release_module(assignment).values()))
        return apply_mutation(stub, mutation.read_text()) if mutation.exists() else stub
    text = student_source(submission.version)
    if mutation.exists():
        text = apply_mutation(text, mutation.read_text())
    for edit in submission.spec.get("edit", []):
        if edit["find"] not in text:
            raise ValueError(f"{submission.name}: edit target {edit['find']!r} not in the solution")
        text = text.replace(edit["find"], edit["replace"], 1)
    note = (f"# Test submission {submission.category}/{submission.name}: {submission.description}\n"
            f"# GENERATED from {assignment.solution_module.relative_to(REPO)} by tests/submissions/factory.py\n")
    first, second, rest = text.split("\n", 2)  # the release's header: it names the version, so it stays on top
    if submission.spec.get("no_header"):
        first = "# (the released header line was deleted)"
    return f"{first}\n{second}\n{note}{rest}"


def materialize(submission: TestSubmission, destination: Path, *, model: Path | None | str = "default") -> Path:
    """Write the submission as a student would hand it in; returns the path to give the grader."""
    assignment = submission.assignment
    model = assignment.example_model if model == "default" else model
    folder = destination / submission.name
    folder.mkdir(parents=True, exist_ok=True)
    if submission.spec.get("source", True):
        name = submission.spec.get("rename", assignment.module)
        encoding = submission.spec.get("encoding", "utf-8")
        (folder / name).write_bytes(module_source(submission).encode(encoding))
    for item in submission.folder.iterdir():
        if item.name in ("expected.toml", "mutation.py", "__pycache__"):
            continue
        if item.is_dir():
            shutil.copytree(item, folder / item.name, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(item, folder / item.name, follow_symlinks=False)
    if submission.model and model is not None and not (folder / assignment.model).exists():
        shutil.copy(model, folder / assignment.model)
    builder = submission.spec.get("build")
    if builder:
        return BUILDERS[builder](folder, destination, submission)
    if submission.kind == "zip":
        return zip_folder(folder, destination / f"{submission.name}.zip", submission.name)
    if submission.kind == "file":
        return folder / assignment.module
    return folder


def as_notebook(source: str, *, title: str = "Hello world of deep learning") -> bytes:
    """``source`` (a module's text) as a notebook a Jupyter or Colab class would hand in: a Markdown title,
    then one code cell per top-level statement, each graded function in an nbgrader exercise cell named after
    it (``release.module_cells``, what the release check hands in too)."""
    import nbformat

    from autograder.release import module_cells
    cells = [nbformat.v4.new_markdown_cell(f"# {title}"), *module_cells(source)]
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode()


def zip_folder(folder: Path, archive: Path, prefix: str) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for item in sorted(folder.rglob("*")):
            if item.is_file():
                handle.write(item, f"{prefix}/{item.relative_to(folder)}")
    shutil.rmtree(folder)
    return archive


# -- builders: inputs that cannot live as plain files in the repository -------------------------

def _corrupt_zip(folder, destination, submission):
    archive = destination / f"{submission.name}.zip"
    archive.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    shutil.rmtree(folder)
    return archive


def _empty_zip(folder, destination, submission):
    archive = destination / f"{submission.name}.zip"
    zipfile.ZipFile(archive, "w").close()
    shutil.rmtree(folder)
    return archive


def _zip_with_traversal(folder, destination, submission):
    archive = destination / f"{submission.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.write(folder / "hello_mnist.py", "work/hello_mnist.py")
        handle.write(folder / "model.keras", "work/model.keras")
        handle.writestr("../../escaped.py", "print('written outside the submission')\n")
        handle.writestr("/tmp/absolute_escape.py", "print('absolute path')\n")
        link = zipfile.ZipInfo("work/passwd_link")
        link.external_attr = (0o120777 << 16)
        handle.writestr(link, "/etc/passwd")
    shutil.rmtree(folder)
    return archive


def _zip_bomb(folder, destination, submission):
    archive = destination / f"{submission.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.write(folder / "hello_mnist.py", "hello_mnist.py")
        info = zipfile.ZipInfo("model.keras")
        info.compress_type = zipfile.ZIP_DEFLATED
        with handle.open(info, "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(512):  # 512 MiB of zeros, about 0.5 MB compressed
                member.write(block)
    shutil.rmtree(folder)
    return archive


def _damage_member(archive: Path, member_name: str) -> None:
    """Flip bytes inside one member's compressed data (its headers and CRC left as they were): bit rot."""
    with zipfile.ZipFile(archive) as handle:
        info = handle.getinfo(member_name)
    raw = bytearray(archive.read_bytes())
    name_length, extra_length = struct.unpack_from("<HH", raw, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    for index in range(start + 2, start + min(40, info.compress_size - 2)):
        raw[index] ^= 0xFF
    archive.write_bytes(bytes(raw))


def _model_archive(path: Path, config, *, compress=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compress) as handle:
        handle.writestr("config.json", json.dumps(config))
        handle.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        handle.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))


def _model_config_list(folder, destination, submission):
    _model_archive(folder / "model.keras", [{"class_name": "Sequential"}, {"layers": []}])
    return folder


def _model_layer_config_string(folder, destination, submission):
    _model_archive(folder / "model.keras", {"module": "keras", "class_name": "Sequential", "config": {"layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 784]}},
        {"module": "keras.layers", "class_name": "Dense", "config": "units=10, activation=softmax"}]}})
    return folder


def _model_corrupt_deflate(folder, destination, submission):
    path = folder / "model.keras"
    shutil.copy(EXAMPLE_MODEL, path)
    with zipfile.ZipFile(path) as handle:
        members = {info.filename: handle.read(info) for info in handle.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    _damage_member(path, "config.json")
    return folder


def _model_bad_utf8_name(folder, destination, submission):
    path = folder / "model.keras"
    shutil.copy(EXAMPLE_MODEL, path)
    raw = bytearray(path.read_bytes())
    for signature, flag_offset, name_offset in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        offset = raw.find(signature)
        while offset >= 0 and bytes(raw[offset + name_offset:offset + name_offset + 11]) != b"config.json":
            offset = raw.find(signature, offset + 4)
        flags = struct.unpack_from("<H", raw, offset + flag_offset)[0]
        struct.pack_into("<H", raw, offset + flag_offset, flags | 0x800)  # "this name is UTF-8" ...
        raw[offset + name_offset] = 0xFF                                   # ... but it is not
    path.write_bytes(bytes(raw))
    return folder


def _zip_corrupt_member(folder, destination, submission):
    archive = destination / f"{submission.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.write(folder / "hello_mnist.py", "hello_mnist.py")
        handle.write(folder / "model.keras", "model.keras")
    _damage_member(archive, "hello_mnist.py")
    shutil.rmtree(folder)
    return archive


def _corrupt_model(folder, destination, submission):
    data = EXAMPLE_MODEL.read_bytes()
    (folder / "model.keras").write_bytes(data[: len(data) // 3])
    return folder


def _huge_module(folder, destination, submission):
    path = folder / "hello_mnist.py"
    path.write_text(path.read_text() + ("# " + "padding " * 16 + "\n") * 9000)
    return folder


def _keras_model(kind: str, path: Path) -> None:
    """Models made with Keras, in a subprocess so this process stays free of Keras."""
    code = f"""
import keras, sys
sys.path.insert(0, {str(REPO)!r})
kind, path = {kind!r}, {str(path)!r}
units = 5 if kind == "wrong_shape" else 10
model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(units, activation="softmax")])
if kind == "legacy_h5":
    model.save(path + ".h5")
    import os; os.replace(path + ".h5", path)
else:
    model.save(path)
"""
    import subprocess
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _model_builder(kind):
    def build(folder, destination, submission):
        _keras_model(kind, folder / "model.keras")
        return folder
    return build


def _smuggled_metadata(folder, destination, submission):
    """model.keras with a metadata.json that carries 20,000 real MNIST training images and their labels
    (uint8, base64) beside Keras's own fields: members the grader allows and never reads."""
    import base64

    import numpy as np
    (x_train, y_train), _ = submission.assignment.load_dataset()
    keep = np.random.default_rng(3).permutation(len(x_train))[:20000]
    path = folder / "model.keras"
    shutil.copy(EXAMPLE_MODEL, path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(members.get("metadata.json", b"{}"))
    metadata["carried"] = {"images": base64.b64encode(x_train[keep].reshape(-1, 784).tobytes()).decode(),
                           "labels": base64.b64encode(y_train[keep].astype(np.uint8).tobytes()).decode()}
    members["metadata.json"] = json.dumps(metadata).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return folder


BUILDERS = {
    "smuggled_metadata": _smuggled_metadata,
    "corrupt_zip": _corrupt_zip,
    "empty_zip": _empty_zip,
    "zip_with_traversal": _zip_with_traversal,
    "zip_bomb": _zip_bomb,
    "corrupt_model": _corrupt_model,
    "model_config_list": _model_config_list,
    "model_layer_config_string": _model_layer_config_string,
    "model_corrupt_deflate": _model_corrupt_deflate,
    "model_bad_utf8_name": _model_bad_utf8_name,
    "zip_corrupt_member": _zip_corrupt_member,
    "huge_module": _huge_module,
    "legacy_h5_model": _model_builder("legacy_h5"),
    "wrong_shape_model": _model_builder("wrong_shape"),
    "untrained_model": _model_builder("untrained"),
}


def build_examples(version: str, *, train_model: bool) -> None:
    """Regenerate examples/<version>/submissions (committed) from the solution and the demo's mistakes."""
    assignment = assignments.load(version)
    if train_model or not assignment.example_model.exists():
        train_example_model(version)
    target = assignment.examples_dir / "submissions"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    solution = target / "solution"
    solution.mkdir()
    body = student_source(version).split("\n", 2)
    (solution / assignment.module).write_text(
        f"{body[0]}\n{body[1]}\n# Example submission: the instructor's solution as a student would hand it in.\n"
        f"# GENERATED from {assignment.solution_module.relative_to(REPO)} by tests/submissions/factory.py "
        f"--examples\n{body[2]}")
    shutil.copy(assignment.example_model, solution / assignment.model)
    by_name = {s.name: s for s in catalogue() if s.version == version}
    for name in DEMO.get(version, ())[1:]:
        materialize(by_name[name], target)


def train_example_model(version: str) -> None:
    """The notebook's last step with the lecture's settings (the manifest's [reference]), saved."""
    import keras
    from autograder.training import load_solution
    assignment = assignments.load(version)
    reference = assignment.reference_model
    solution = load_solution(assignment)
    (x_train, y_train), (x_test, y_test) = assignment.load_dataset()
    x, y = solution.preprocess(x_train, y_train)
    keras.utils.set_random_seed(1)
    hidden, activation = tuple(reference["hidden_units"]), reference["activation"]
    model = solution.compile_model(solution.build_model(hidden, activation), reference["optimizer"])
    solution.train_model(model, x, y, batch_size=int(reference["batch_size"]), epochs=int(reference["epochs"]))
    print("test loss and accuracy:", solution.evaluate_model(model, *solution.preprocess(x_test, y_test)))
    assignment.example_model.parent.mkdir(parents=True, exist_ok=True)
    # Without the optimizer's state the file is a third of the size; the grader only needs the weights.
    bare = solution.build_model(hidden, activation)  # uncompiled: no optimizer variables in the file
    bare.set_weights(model.get_weights())
    solution.save_model(bare, str(assignment.example_model))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default="v1", help="the version whose examples to regenerate (default v1)")
    parser.add_argument("--examples", action="store_true", help="regenerate examples/<version>/submissions")
    parser.add_argument("--train-model", action="store_true", help="also retrain examples/<version>/model.keras")
    parser.add_argument("--materialize", type=Path, help="write every test submission into this folder")
    args = parser.parse_args(argv)
    if args.examples:
        build_examples(args.version, train_model=args.train_model)
    if args.materialize:
        for submission in catalogue():
            print(materialize(submission, args.materialize))
    return 0


if __name__ == "__main__":
    sys.exit(main())
