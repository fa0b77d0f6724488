"""Generate the student release ``assignments/<version>/`` from ``solutions/``, then check it.

The release is a declared list of steps, each a pure function from the instructor's sources to one
released file, so the whole release is reproducible byte for byte (a test regenerates it and compares
with the committed copy). Before it is published, the solution must score 100/100 and the stubs 0
through the real grading path, and no solution code may be left in any released file.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import tomllib
from pathlib import Path

from .settings import PACKAGE_DIR, REPO_DIR, Settings

SOLUTIONS = REPO_DIR / "solutions"
ASSIGNMENTS = REPO_DIR / "assignments"
EXAMPLE_MODEL = REPO_DIR / "examples" / "model.keras"
BLOCK = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*\n.*?^[ \t]*### END SOLUTION[ \t]*\n", re.S | re.M)
MARKER_LINE = re.compile(r"^[ \t]*#+ (BEGIN|END) SOLUTION", re.M)
STUB_LINE = 'raise NotImplementedError("Replace this line with your code.")'


class ReleaseError(RuntimeError):
    """The release would be wrong (leaked solution, bad solution, crashing stubs); nothing was published."""


def assignment_info() -> dict:
    return tomllib.loads((SOLUTIONS / "assignment.toml").read_text())["assignment"]


def generated_note(source: str, version: str) -> str:
    return (f"Generated from {source} by `python -m autograder release` (hello_mnist {version}); "
            "instructors: edit the source and release again.")


# -- steps: each returns {released file name: content} ------------------------------------------

def strip_solutions(text: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block by a NotImplementedError line."""
    return BLOCK.sub(lambda match: f"{match['indent']}{STUB_LINE}\n", text)


def release_module(version: str) -> dict[str, str]:
    note = generated_note("solutions/hello_mnist.py", version)
    header = (f"# {note}\n# Students: replace each `raise NotImplementedError(...)` line with your code; keep the "
              "function names and parameters.\n")
    return {"hello_mnist.py": header + strip_solutions((SOLUTIONS / "hello_mnist.py").read_text())}


def release_notebook(version: str) -> dict[str, str]:
    """The notebook with solutions cleared by nbgrader's ClearSolutions, outputs cleared, a note first."""
    import nbformat
    from nbgrader.preprocessors import ClearOutput, ClearSolutions
    notebook = nbformat.read(SOLUTIONS / "hello_mnist.ipynb", as_version=4)
    notebook, _ = ClearSolutions(enforce_metadata=False).preprocess(notebook, {})
    notebook, _ = ClearOutput().preprocess(notebook, {})
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(f"*{generated_note('solutions/hello_mnist.ipynb', version)}*"))
    notebook.cells[0].pop("id", None)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"  # stable ids: the release is byte-for-byte reproducible
    notebook.metadata["hello_mnist"] = {"version": version, "generated": True}
    return {"hello_mnist.ipynb": nbformat.writes(notebook) + "\n"}


def release_public_tests(version: str) -> dict[str, str]:
    note = generated_note("solutions/test_hello_mnist.py", version)
    return {"test_hello_mnist.py": f"# {note}\n" + (SOLUTIONS / "test_hello_mnist.py").read_text()}


def release_loader(version: str) -> dict[str, str]:
    note = generated_note("autograder/mnist_data.py", version)
    return {"mnist_data.py": f"# {note}\n" + (PACKAGE_DIR / "mnist_data.py").read_text()}


def release_requirements(version: str) -> dict[str, str]:
    note = generated_note("solutions/assignment.toml", version)
    lines = [f"# {note}"] + list(assignment_info()["student_requirements"])
    return {"requirements.txt": "\n".join(lines) + "\n"}


def release_readme(version: str) -> dict[str, str]:
    info = assignment_info()
    template = (SOLUTIONS / "README.student.md").read_text()
    text = template.replace("{version}", version).replace("{title}", info["title"]).replace(
        "{due}", info.get("due", "see the course page"))
    note = generated_note("solutions/README.student.md", version)
    return {"README.md": f"<!-- {note} -->\n{text}"}


# In order; none depends on another's output.
STEPS = (release_module, release_notebook, release_public_tests, release_loader, release_requirements, release_readme)


def render(version: str) -> dict[str, str]:
    """Every released file, in memory."""
    files: dict[str, str] = {}
    for step in STEPS:
        files.update(step(version))
    check_no_leaks(files)
    return files


def check_no_leaks(files: dict[str, str]) -> None:
    """Fail if any released file contains solution code, markers, hidden graders or the reference."""
    solution = (SOLUTIONS / "hello_mnist.py").read_text()
    blocks = [match.group(0) for match in BLOCK.finditer(solution)]
    notebook = json.loads((SOLUTIONS / "hello_mnist.ipynb").read_text())
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
        for secret in ("reference_scores", "autograder.graders", "rubric.toml"):
            if secret in text:
                raise ReleaseError(f"{name} mentions {secret!r}, which is not for students")


def write(files: dict[str, str], target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, text in sorted(files.items()):
        (target / name).write_text(text)


def verify(target: Path, *, settings: Settings) -> dict:
    """Grade the solution (with the example model) and the released stubs through the real path."""
    from .grade import grade
    if not EXAMPLE_MODEL.exists():
        raise ReleaseError(f"{EXAMPLE_MODEL} is missing; create it with `python tests/submissions/factory.py "
                           "--examples --train-model`.")
    with tempfile.TemporaryDirectory(prefix="release-check-") as temporary:
        root = Path(temporary)
        solution, stub = root / "submissions" / "solution", root / "submissions" / "stub"
        solution.mkdir(parents=True)
        stub.mkdir()
        shutil.copy(SOLUTIONS / "hello_mnist.py", solution / "hello_mnist.py")
        shutil.copy(EXAMPLE_MODEL, solution / "model.keras")
        shutil.copy(target / "hello_mnist.py", stub / "hello_mnist.py")
        outcomes = {o.report.name: o.report for o in grade([root / "submissions"], out_dir=root / "out",
                                                            settings=settings, progress=False, command="release check")}
    graded_solution, graded_stub = outcomes["solution"], outcomes["stub"]
    if graded_solution.total != graded_solution.max_total:
        failed = "; ".join(f"{t['name']}: {t['output']}" for t in graded_solution.tests if t["status"] != "passed")
        raise ReleaseError(f"The solution scores {graded_solution.total:g}/{graded_solution.max_total:g}, not full "
                           f"marks, so the release was not published. {failed}")
    if graded_stub.total != 0:
        passed = [t["name"] for t in graded_stub.tests if t["score"] > 0]
        raise ReleaseError(f"The released stubs score {graded_stub.total:g}, not 0; these checks give points to "
                           f"unwritten code: {passed}")
    return {"solution": graded_solution.total, "stub": graded_stub.total}


def release(*, version: str | None = None, check: bool = True, settings: Settings | None = None) -> Path:
    """Render, verify in a temporary folder, then publish ``assignments/<version>/``."""
    version = version or assignment_info()["version"]
    files = render(version)
    with tempfile.TemporaryDirectory(prefix="release-") as temporary:
        staging = Path(temporary) / version
        write(files, staging)
        if check:
            verify(staging, settings=settings or Settings())
        target = ASSIGNMENTS / version
        write(files, target)
    return target
