"""Generate a version's student release ``assignments/<version>/`` from ``solutions/<version>/``, then check it.

The release is a declared list of steps, each a pure function from the instructor's sources to one
released file, so the whole release is reproducible byte for byte (a test regenerates every committed
version and compares). Before it is published, the solution must score 100/100 and the stubs 0 through
the real grading path, and no solution code, hidden grader or reference value may be left in any
released file. Publishing also writes the version's pins (``pins.py``).
"""

from __future__ import annotations

import json
import pprint
import re
import shutil
import tempfile
from pathlib import Path

from . import assignment as assignments
from .assignment import Assignment
from .settings import PACKAGE_DIR, REPO_DIR, Settings

BLOCK = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*\n.*?^[ \t]*### END SOLUTION[ \t]*\n", re.S | re.M)
MARKER_LINE = re.compile(r"^[ \t]*#+ (BEGIN|END) SOLUTION", re.M)
STUB_LINE = 'raise NotImplementedError("Replace this line with your code.")'


class ReleaseError(RuntimeError):
    """The release would be wrong (leaked solution, bad solution, crashing stubs); nothing was published."""


def _relative(path: Path) -> str:
    return str(Path(path).relative_to(REPO_DIR))


def generated_note(source: str, assignment: Assignment) -> str:
    """The first line of every released file; it names the version, which is how a submission's version is found
    (``submissions.VERSION_HEADER``)."""
    return (f"Generated from {source} by `python -m autograder release` ({assignment.name} {assignment.version}); "
            "instructors: edit the source and release again.")


# -- steps: each returns {released file name: content} ------------------------------------------

def strip_solutions(text: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block by a NotImplementedError line."""
    return BLOCK.sub(lambda match: f"{match['indent']}{STUB_LINE}\n", text)


def release_module(assignment: Assignment) -> dict[str, str]:
    note = generated_note(_relative(assignment.solution_module), assignment)
    header = (f"# {note}\n# Students: replace each `raise NotImplementedError(...)` line with your code; keep the "
              "function names and parameters.\n")
    return {assignment.module: header + strip_solutions(assignment.solution_module.read_text())}


def release_notebook(assignment: Assignment) -> dict[str, str]:
    """The notebook with solutions cleared by nbgrader's ClearSolutions, outputs cleared, a note first."""
    if not assignment.notebook:
        return {}
    import nbformat
    from nbgrader.preprocessors import ClearOutput, ClearSolutions
    source = assignment.source_dir / assignment.notebook
    notebook = nbformat.read(source, as_version=4)
    notebook, _ = ClearSolutions(enforce_metadata=False).preprocess(notebook, {})
    notebook, _ = ClearOutput().preprocess(notebook, {})
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(f"*{generated_note(_relative(source), assignment)}*"))
    notebook.cells[0].pop("id", None)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"  # stable ids: the release is byte-for-byte reproducible
    notebook.metadata[assignment.name] = {"version": assignment.version, "generated": True}
    return {assignment.notebook: nbformat.writes(notebook) + "\n"}


def release_public_tests(assignment: Assignment) -> dict[str, str]:
    if not assignment.public_tests:
        return {}
    source = assignment.source_dir / assignment.public_tests
    return {assignment.public_tests: f"# {generated_note(_relative(source), assignment)}\n" + source.read_text()}


def release_loader(assignment: Assignment) -> dict[str, str]:
    """The dataset loader (``autograder/datasets.py``) with this version's dataset written in, under the name the
    notebook and the public tests import (``mnist_data.load_mnist`` in v1)."""
    dataset = assignment.dataset
    body = (PACKAGE_DIR / "datasets.py").read_text()
    footer = (f"\n\n# -- this assignment's dataset (from {_relative(assignment.manifest_path)}) --\n"
              f"DATASET = {pprint.pformat(dataset.as_dict(), width=110, sort_dicts=True)}\n\n\n"
              f"def {dataset.load_function}(data_dir=None, *, verify=True):\n"
              f"    \"\"\"{dataset.title} as ``((x_train, y_train), (x_test, y_test))``, like keras.datasets."
              f"{dataset.keras or dataset.name}; see ``load``.\"\"\"\n"
              f"    return load(DATASET, data_dir, verify=verify)\n")
    note = generated_note(_relative(PACKAGE_DIR / "datasets.py"), assignment)
    return {f"{dataset.loader}.py": f"# {note}\n" + body + footer}


def release_extras(assignment: Assignment) -> dict[str, str]:
    """Files released as they are (the manifest's ``extras``: v1's draw-a-digit demo), a note first."""
    files = {}
    for name in assignment.extras:
        source = assignment.source_dir / name
        text = source.read_text()
        files[name] = f"# {generated_note(_relative(source), assignment)}\n{text}"
    return files


def release_requirements(assignment: Assignment) -> dict[str, str]:
    note = generated_note(_relative(assignment.manifest_path), assignment)
    lines = [f"# {note}"] + list(assignment.student_requirements)
    return {"requirements.txt": "\n".join(lines) + "\n"}


def release_readme(assignment: Assignment) -> dict[str, str]:
    source = assignment.source_dir / "README.student.md"
    text = source.read_text()
    for key, value in readme_values(assignment).items():
        text = text.replace("{" + key + "}", value)
    return {"README.md": f"<!-- {generated_note(_relative(source), assignment)} -->\n{text}"}


def notebook_route(assignment: Assignment) -> str:
    """The student README's paragraph on handing in a notebook, from the manifest's ``accepts``."""
    stem = assignment.module_stem
    if "notebook" not in assignment.accepts:
        return (f"Hand in {assignment.module}, not a notebook: a notebook is not graded in this assignment, even one "
                "that defines the functions.")
    return (f"**Or a notebook.** If you wrote your functions in a notebook of your own (Colab, JupyterLab), hand in "
            f"that one notebook (named `{stem}.ipynb` if you hand in more than one `.ipynb` file) in place of "
            f"`{assignment.module}`, with `{assignment.model}` beside it. "
            "The grader reads its code cells and takes the definitions of the graded functions, with the imports "
            "and constants they use; it runs nothing else of the notebook, so experiments, training and plots in "
            "it are ignored and cost nothing. Define each function at the top level of a code cell (`def name(...):` "
            "at the start of a line), keeping the names and parameters of the stubs; a cell that does not parse "
            "costs only the functions in it. (The guided notebook is not such a notebook: it calls the functions "
            f"in `{assignment.module}`.)" + _answers_sentence(assignment))


def _answers_sentence(assignment: Assignment) -> str:
    if not assignment.answers:
        return ""
    names = ", ".join(f"`{answer.variables[0]}`" for answer in assignment.answers)
    return (f" In a notebook submission the guided notebook's \"your turn\" cells ({names}) are graded too, on top of "
            "the module's points: copy them into your notebook with their variables. Each runs with inputs the grader "
            "chooses (other loss curves, sizes, accuracies), so compute the answer from the variables it reads; a "
            "number written down from your own run will not match.")


def readme_values(assignment: Assignment) -> dict[str, str]:
    """What the student README's placeholders become: names, and the exact thresholds the graders apply."""
    values = {"version": assignment.version, "title": assignment.title, "due": assignment.due,
              "module": assignment.module, "notebook": assignment.notebook, "model": assignment.model,
              "notebook_route": notebook_route(assignment)}
    try:
        from .reference_scores import load_reference, thresholds
        from .rubric import load_rubric
        limits = thresholds(load_rubric(assignment), load_reference(assignment.reference_path))
        values.update(required_accuracy=f"{limits.trained_model_required:.2%}",
                      zero_accuracy=f"{limits.trained_model_zero:.2%}",
                      retrain_accuracy=f"{limits.retrain_required:.2%}")
    except Exception:  # no reference yet: the placeholders stay, and the leak check says so
        pass
    return values


# In order; none depends on another's output.
STEPS = (release_module, release_notebook, release_public_tests, release_loader, release_extras, release_requirements,
         release_readme)


def render(assignment: Assignment) -> dict[str, str]:
    """Every released file, in memory."""
    files: dict[str, str] = {}
    for step in STEPS:
        files.update(step(assignment))
    check_no_leaks(files, assignment)
    return files


def check_no_leaks(files: dict[str, str], assignment: Assignment) -> None:
    """Fail if any released file contains solution code, markers, hidden graders, the reference or a placeholder."""
    solution = assignment.solution_module.read_text()
    blocks = [match.group(0) for match in BLOCK.finditer(solution)]
    if assignment.notebook:
        notebook = json.loads((assignment.source_dir / assignment.notebook).read_text())
        for cell in notebook["cells"]:
            blocks += [m.group(0) for m in BLOCK.finditer("".join(cell["source"]) + "\n")]
    for name, text in files.items():
        released_lines = {line.strip().strip('",').replace('\\n', '') for line in text.splitlines()}
        if MARKER_LINE.search(text):
            raise ReleaseError(f"{name} still contains a solution marker")
        for block in blocks:
            body = [line.strip() for line in block.splitlines()[1:-1] if len(line.strip()) > 25]
            leaked = [line for line in body if line in released_lines]  # whole lines: hints may quote calls
            if leaked:
                raise ReleaseError(f"{name} contains solution code: {leaked[0]!r}")
        for secret in ("reference_scores", "autograder.graders", "rubric.toml", ".grading", "/grading/"):
            if secret in text:
                raise ReleaseError(f"{name} mentions {secret!r}, which is not for students")
        left = re.findall(r"\{(required_accuracy|zero_accuracy|retrain_accuracy|module|notebook|model|version)\}", text)
        if left and name == "README.md":
            raise ReleaseError(f"{name} still has the placeholder {{{left[0]}}} (no reference scores yet?)")


def write(files: dict[str, str], target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, text in sorted(files.items()):
        (target / name).write_text(text)


def verify(target: Path, assignment: Assignment, *, settings: Settings) -> dict:
    """Grade the solution (with the example model) and the released stubs through the real path."""
    from .grade import grade
    if not assignment.example_model.exists():
        raise ReleaseError(f"{assignment.example_model} is missing; create it with `python tests/submissions/factory.py "
                           f"--version {assignment.version} --examples --train-model`.")
    with tempfile.TemporaryDirectory(prefix="release-check-") as temporary:
        root = Path(temporary)
        solution, stub = root / "submissions" / "solution", root / "submissions" / "stub"
        solution.mkdir(parents=True)
        stub.mkdir()
        shutil.copy(assignment.solution_module, solution / assignment.module)
        shutil.copy(assignment.example_model, solution / assignment.model)
        shutil.copy(target / assignment.module, stub / assignment.module)
        notebooks = "notebook" in assignment.accepts and bool(assignment.notebook)
        if notebooks:  # the notebook route: the same functions pasted into a notebook, with the answer cells
            for name, module, guided in (("solution_notebook", assignment.solution_module,
                                          assignment.source_dir / assignment.notebook),
                                         ("stub_notebook", target / assignment.module, target / assignment.notebook)):
                (root / "submissions" / name).mkdir()
                (root / "submissions" / name / assignment.notebook).write_text(
                    notebook_of(module.read_text(), guided))
            shutil.copy(assignment.example_model, root / "submissions" / "solution_notebook" / assignment.model)
        outcomes = {o.report.name: o.report for o in grade([root / "submissions"], out_dir=root / "out",
                                                            settings=settings, progress=False,
                                                            version=assignment.version, command="release check")}
    graded_solution, graded_stub = outcomes["solution"], outcomes["stub"]
    if notebooks:
        for name, wanted in (("solution_notebook", "full"), ("stub_notebook", "zero")):
            report = outcomes[name]
            if not report.graded or report.total != (report.max_total if wanted == "full" else 0):
                wrong = [f"{t['name']}: {t['output']}" for t in report.tests
                         if (t["status"] != "passed") == (wanted == "full") and (wanted == "full" or t["score"] > 0)]
                raise ReleaseError(f"Handed in as a notebook, the {name.split('_')[0]} scores {report.total:g}/"
                                   f"{report.max_total:g} (expected {wanted} marks), so the release was not "
                                   f"published. {'; '.join(wrong[:5]) or report.failure}")
    if not graded_solution.graded or graded_solution.total != graded_solution.max_total:
        failed = "; ".join(f"{t['name']}: {t['output']}" for t in graded_solution.tests if t["status"] != "passed")
        raise ReleaseError(f"The solution scores {graded_solution.total:g}/{graded_solution.max_total:g}, not full "
                           f"marks, so the release was not published. {failed or graded_solution.failure}")
    if not graded_stub.graded or graded_stub.total != 0:
        passed = [t["name"] for t in graded_stub.tests if t["score"] > 0]
        raise ReleaseError(f"The released stubs score {graded_stub.total:g}, not 0; these checks give points to "
                           f"unwritten code: {passed or graded_stub.failure}")
    checked = {"solution": graded_solution.total, "stub": graded_stub.total}
    if notebooks:
        checked.update(solution_notebook=outcomes["solution_notebook"].total, stub_notebook=outcomes["stub_notebook"].total)
    return checked


def notebook_of(module_source: str, guided_notebook: Path) -> str:
    """A notebook as a class that works in Jupyter hands it in: the module's top-level statements in code
    cells (each graded function in an nbgrader exercise cell named after it), then the guided notebook's
    answer cells as they are (the solution's filled in, the release's not)."""
    import nbformat
    cells = [nbformat.v4.new_markdown_cell("Release check: the notebook route"), *module_cells(module_source)]
    guided = nbformat.read(guided_notebook, as_version=4)
    cells += [cell for cell in guided.cells if cell.cell_type == "code" and "nbgrader" in cell.metadata]
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells))


def module_cells(module_source: str) -> list:
    """A module's top-level statements as notebook code cells (its docstring left out), each function in an
    nbgrader exercise cell named after it; a module that does not parse is one cell."""
    import ast

    import nbformat
    try:
        tree = ast.parse(module_source)
    except SyntaxError:
        return [nbformat.v4.new_code_cell(module_source)]
    cells = []
    lines = module_source.split("\n")
    body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    starts = [node.lineno - len(getattr(node, "decorator_list", []) or []) for node in body] + [len(lines) + 1]
    for node, start, following in zip(body, starts, starts[1:]):
        cell = nbformat.v4.new_code_cell("\n".join(lines[start - 1:following - 1]).rstrip("\n"))
        if isinstance(node, ast.FunctionDef):
            cell.metadata["nbgrader"] = {"grade": False, "grade_id": node.name, "locked": False, "schema_version": 3,
                                         "solution": True}
        cells.append(cell)
    return cells


def release(*, version: str | None = None, check: bool = True, settings: Settings | None = None) -> Path:
    """Render, verify in a temporary folder, then publish ``assignments/<version>/`` and its pins."""
    from .pins import write_pins
    assignment = assignments.load(version or assignments.latest())
    files = render(assignment)
    with tempfile.TemporaryDirectory(prefix="release-") as temporary:
        staging = Path(temporary) / assignment.version
        write(files, staging)
        if check:
            verify(staging, assignment, settings=settings or Settings())
        write(files, assignment.release_dir)
    write_pins(assignment)
    assignments.load.cache_clear()  # the manifest's pins changed
    return assignment.release_dir
