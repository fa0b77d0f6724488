"""Notebook submissions in: turn a student's ``.ipynb`` into module text, reading it and never running it.

A class that works in Jupyter, Colab or nbgrader hands in ``hello_mnist.ipynb`` with the graded functions
defined in its code cells. This module builds from it the text of a module with the same functions, which
then goes through the sandbox and the graders exactly like a submitted ``hello_mnist.py``. The trusted
process only *reads* the notebook: ``json`` and ``nbformat`` for the file, ``ast``, ``symtable`` and
``compile`` for the Python; nothing here executes, evaluates or imports a student's text.

What is kept, cell by cell in notebook order (each kept cell is preceded by ``# notebook cell N``, and
``ExtractedModule.line_to_cell`` maps every module line back to its cell and line):

* the top-level ``def`` of every graded function, and whatever it needs, found by following the names it
  reads (``symtable`` gives the compiler's exact scopes, so a parameter or a local never counts) to the
  statements that set them: helper functions and classes, imports, and **constants**, assignments to plain
  names whose value runs no code (literals, names, attribute and subscript look-ups, arithmetic,
  comparisons, f-strings, containers and lambdas of those: ``NUM_CLASSES = 10``, ``IMAGE_PIXELS = 28 * 28``,
  ``OPTIMIZER_NAMES = ("sgd", ...)``), provided every name they read is set by something kept above them.
  ``from __future__`` imports are kept and moved to the top.
* nothing the graded functions do not need: an unused import (``matplotlib``, ``google.colab``, the
  notebook's own ``import hello_mnist as hm``) serves the experiments, and one the sandbox lacks would fail
  the whole import; an unused constant could only fail at import (``trained = results[BATCH_SIZE]``, of a
  dict an experiment loop filled).

What is dropped: every other top-level statement (calls, ``print``, training, plots, ``for``/``while``
loops, ``if``/``try``/``with`` blocks, assignments whose value is a call such as ``model = build_model()``,
and assignments to a subscript or attribute, ``os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"`` included: the
sandbox sets the environment and has imported Keras before the student's module, so such a setting could
only make grading differ from run to run); IPython magics and shell lines (``%matplotlib inline``,
``!pip install``, ``x = !ls``, ``model.fit?``; in a function body they become ``pass``), and cells run by a
non-Python cell magic (``%%bash``, ``%%writefile``; the body of ``%%time`` and ``%%capture`` is Python and is
read). A definition whose default values, decorators or base classes read a name only an experiment sets
is dropped too, since defining it would fail. Everything dropped is listed in ``ExtractedModule.dropped``.

Mistakes lose only what they must: a cell that does not parse is cut into top-level pieces (a new piece
starts at each ``def``, ``class``, decorator or import at the start of a line) and each piece is parsed on
its own, so one broken function costs that function. When a name is defined twice, the last definition in
notebook order wins, as when the notebook runs from top to bottom.

nbgrader metadata: the module's cells are chosen by what they define whether or not the metadata survived,
because a student may define a graded function (or the helper it calls) in a cell of their own, and a
metadata rule would cost them that function for no gain; every cell is read, and what no graded function
needs is left out anyway. The metadata finds the answer cells (``extract_answer_cells``) and sharpens a
message (the exercise cell ``build_model`` that no longer defines it). Where it was stripped (Colab,
JupyterLab "clear", ``nbformat`` without metadata) the answer cells are found by the variable they assign,
and the TA sees ``notebook_metadata_stripped``.
A graded function that uses a name only an experiment sets (``x_train``, ``model``) is kept, and the student
is told why it will fail when graded.

Sizes: the file is refused above ``MAX_NOTEBOOK_BYTES``; outputs and attachments are dropped while the JSON
is parsed (an ``object_hook``), so images are never all in memory at once; cells above
``MAX_CELL_BYTES``, code beyond ``MAX_CODE_BYTES`` in all and a module above ``MAX_MODULE_BYTES`` are refused
with a message. Measured on the CI-class machine (2 cores, 23.5 GB, Python 3.11.7, nbformat 5.11.1), in a
fresh process, for a 50 MiB notebook (the guided notebook, the solution's functions in 12 cells, 50 image
outputs of 1 MiB each): ``extract_module`` takes 0.08-0.13 s (5 runs) and raises the peak resident size by
50 MiB beyond the 50 MiB of file bytes the caller holds (tracemalloc peak 51 MiB: the decoded JSON text plus
one output at a time); ``nbformat.reads`` of the same file takes 0.16 s and +98 MiB. The bound is about
twice the file's size beyond its bytes (a single huge output), so 128 MiB at the 64 MiB cap. An ordinary
notebook takes about 0.04 s; the first call of a process adds about 0.2 s, nbformat loading its schema.

Nothing in a notebook makes these functions raise: what goes wrong becomes ``problems`` (for the student,
with the cell and line) and ``flags`` (for the TA); a bug of ours becomes a problem, the flag
``notebook_intake_error`` and its traceback in ``internal_error``. Only a real ``MemoryError`` escapes: the
one CPython's parser raises for code nested a few thousand levels deep (``not not ... x``) is the text's
fault, bounded by ``MAX_CELL_BYTES``, and is reported like a syntax error.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import difflib
import json
import re
import symtable
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .text import inert, one_line

MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024  # the .ipynb as submitted, outputs included; refused above this
MAX_CELL_BYTES = 1024 * 1024           # one code cell's source; a larger cell is skipped with a message
MAX_CODE_BYTES = 8 * 1024 * 1024       # all code cells' sources; cells beyond it are not read
MAX_MODULE_BYTES = 1024 * 1024         # the extracted module; the same cap as a submitted hello_mnist.py
LARGE_OUTPUTS_BYTES = 1024 * 1024      # outputs above this earn the TA flag notebook_outputs_dropped
MAX_MERGED_PIECES = 8                  # a broken cell: pieces glued back together when looking for one that parses

CELL_COUNTING = "counting every cell from the top, Markdown cells included"
HEADER = ("# Generated by autograder.notebook_intake from the submitted notebook: its imports, constants and",
          "# definitions, without its experiments. Do not edit; the notebook is the student's work.")
# Names a module has without defining them.
MODULE_NAMES = frozenset(dir(builtins)) | {"__name__", "__doc__", "__file__", "__spec__", "__loader__",
                                            "__package__", "__builtins__", "__annotations__", "__cached__"}
# Names IPython gives a notebook that a plain module does not have.
IPYTHON_NAMES = frozenset({"display", "get_ipython", "In", "Out"})
# Cell magics whose body is Python run in the notebook's namespace; any other cell magic's body is not Python.
PYTHON_CELL_MAGICS = frozenset({"time", "capture"})
COMPREHENSION_SCOPES = frozenset({"listcomp", "setcomp", "dictcomp", "genexpr"})

DEFINITION_LINE = re.compile(r"(?:async[ \t]+)?(?:def|class)[ \t]+([A-Za-z_]\w*)")
STRONG_START = re.compile(r"(?:(?:async[ \t]+)?def|class|import|from)\b|@")
CONTINUATION_START = re.compile(r"(?:else|elif|except|finally)\b")
MAGIC_ASSIGNMENT = re.compile(r"[ \t]*[A-Za-z_][\w \t.,\[\]()*]*=[ \t]*[!%]")
HELP_LINE = re.compile(r"[ \t]*\??[\w.\[\]()]+\?\??[ \t]*$")
PACKAGE_COMMAND = re.compile(r"[ \t]*(?:pip|conda|mamba)[ \t]+(?:install|uninstall|list|show)\b")
ASSIGNMENT_LINE = re.compile(r"([A-Za-z_][\w \t,*()\[\]]*?)[ \t]*(?::[^=]*)?=(?!=)")

# Expression nodes a constant's value may contain: no call, comprehension, await, yield or walrus.
CONSTANT_NODES = (ast.Constant, ast.Name, ast.Attribute, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.UnaryOp,
                  ast.BinOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Subscript, ast.Slice, ast.Starred,
                  ast.JoinedStr, ast.FormattedValue, ast.expr_context, ast.operator, ast.unaryop, ast.boolop,
                  ast.cmpop)
BLOCK_NAMES = {ast.For: "a `for` loop", ast.AsyncFor: "a `for` loop", ast.While: "a `while` loop",
               ast.If: "an `if` block", ast.Try: "a `try` block", ast.With: "a `with` block",
               ast.AsyncWith: "a `with` block", ast.Match: "a `match` block", ast.TryStar: "a `try` block"}


# -- what the functions return ---------------------------------------------------------------------

@dataclass(frozen=True)
class CellLine:
    """A place in the notebook.

    ``cell`` counts every cell from the top, Markdown cells included, from 1 (so it is
    ``notebook.cells[cell - 1]``); ``line`` counts that cell's lines from 1.
    """
    cell: int
    line: int

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}"


@dataclass(frozen=True)
class DroppedStatement:
    """A top-level statement, magic line or cell left out of the module, for the TA."""
    where: CellLine
    reason: str   # completes "it ...": "runs code", "is a `for` loop", "is an import no kept code uses"
    text: str     # its first line, shortened, as plain text


@dataclass(frozen=True)
class SourceCell:
    """One code cell of a notebook, as read (outputs dropped)."""
    number: int            # counting every cell from 1, Markdown included (``notebook.cells[number - 1]``)
    source: str            # the cell's text, newlines normalised to "\n"
    grade_id: str | None   # nbgrader's ``grade_id``, when the cell carries nbgrader metadata
    solution: bool         # nbgrader's ``solution`` flag


@dataclass(frozen=True)
class NotebookSources:
    """A notebook reduced to its code cells, ready for ``extract_module`` and ``extract_answer_cells``."""
    readable: bool                  # False when the file could not be read as a notebook (see problems)
    cells: tuple[SourceCell, ...]   # code cells in notebook order
    has_nbgrader_metadata: bool     # some cell still carries nbgrader metadata with a grade_id
    notebook_bytes: int             # size of the file as submitted
    output_bytes: int               # characters of outputs and attachments dropped while reading
    problems: tuple[str, ...]       # for the student: what went wrong reading the file and how to fix it
    flags: tuple[str, ...]          # for the TA: short tags


@dataclass(frozen=True)
class ExtractedModule:
    """The module built from a notebook, and what the student and the TA need to know about it."""
    source: str                            # module text to stage as the graded module ("" when nothing was read)
    problems: tuple[str, ...]              # student-facing: what happened, where (cell and line), how to fix it
    flags: tuple[str, ...]                 # TA-facing tags: notebook, notebook_missing_function:<name>, ...
    missing: tuple[str, ...]               # graded functions the module does not define
    definitions: dict[str, CellLine]       # graded function -> where its kept definition starts
    line_to_cell: dict[int, CellLine]      # module line (from 1) -> the notebook cell and line it came from
    dropped: tuple[DroppedStatement, ...]  # what was left out and why
    notebook_bytes: int = 0                # size of the file as submitted
    output_bytes: int = 0                  # characters of outputs and attachments dropped
    internal_error: str | None = None      # our traceback, when the grader itself failed (flag notebook_intake_error)

    def cell_of(self, module_line: int) -> CellLine | None:
        """Where a line of ``source`` (a traceback's line number) came from in the notebook, if anywhere."""
        return self.line_to_cell.get(module_line)

    def as_dict(self) -> dict:
        """Plain JSON for ``intake.json`` (the module text itself is staged as a file, not repeated here)."""
        return {"problems": list(self.problems), "flags": list(self.flags), "missing": list(self.missing),
                "definitions": {name: [where.cell, where.line] for name, where in self.definitions.items()},
                "line_to_cell": {str(line): [where.cell, where.line] for line, where in self.line_to_cell.items()},
                "dropped": [{"cell": d.where.cell, "line": d.where.line, "reason": d.reason, "text": d.text}
                            for d in self.dropped],
                "notebook_bytes": self.notebook_bytes, "output_bytes": self.output_bytes,
                "internal_error": self.internal_error}


@dataclass(frozen=True)
class AnswerCell:
    """A "your turn" cell, to be run in the sandbox with grader-chosen inputs."""
    grade_id: str
    variable: str                     # the name the cell must assign
    cell: int                         # its number, counting every cell from 1, Markdown included
    source: str                       # the cell's text with IPython magics and shell lines commented out
    parses: bool                      # whether ``source`` is valid Python
    syntax_error: str | None          # Python's message and line when it does not parse
    assigned_names: tuple[str, ...]   # names the cell assigns at its top level (inside if/for blocks too)
    found_by: str                     # "metadata" (nbgrader grade_id) or "variable" (a cell assigning it)
    candidates: tuple[int, ...]       # every cell that assigns the variable, in order (more than one: ambiguous)


@dataclass(frozen=True)
class AnswerCells:
    """The answer cells found in a notebook, keyed by grade_id, and what could not be found."""
    cells: dict[str, AnswerCell]
    missing: tuple[str, ...]
    problems: tuple[str, ...]
    flags: tuple[str, ...]
    internal_error: str | None = None


# -- public functions ------------------------------------------------------------------------------

def read_notebook(data: bytes | bytearray, *, max_bytes: int = MAX_NOTEBOOK_BYTES) -> NotebookSources:
    """Read a submitted notebook's code cells, dropping outputs and attachments as the JSON is parsed.

    Both extractors accept the result, so a notebook read once serves both (the parse is what costs time
    on a large file).

    Args:
        data: the ``.ipynb`` file's bytes; read at most ``max_bytes + 1`` of it, and a larger file is refused.
        max_bytes: the largest file accepted (default ``MAX_NOTEBOOK_BYTES``, 64 MiB).

    Returns:
        ``NotebookSources``; ``readable`` is False (with ``problems`` and ``flags`` saying why) when the
        file is too large, not UTF-8 JSON, not a notebook, or in a format version nbformat cannot read.

    Raises:
        TypeError: ``data`` is not bytes (a caller's mistake).
        MemoryError: only if the process runs out of memory; nothing in the file makes it raise.

    Example:
        >>> notebook = read_notebook(b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
        >>> notebook.readable, notebook.cells
        (True, ())
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"read_notebook needs the notebook file's bytes; received {type(data).__name__}. "
                        "Pass path.read_bytes() (or the first max_bytes + 1 bytes of the file).")
    report = _Report()
    report.flag("notebook")
    try:
        return _read(data, max_bytes, report)
    except MemoryError:
        raise
    except Exception:
        report.problem(INTERNAL_ERROR_MESSAGE)
        report.flag("notebook_intake_error")
        return NotebookSources(False, (), False, len(data), 0, report.problems_tuple(), report.flags_tuple())


def extract_module(notebook: bytes | bytearray | NotebookSources, *, graded_functions: Sequence[str],
                   max_bytes: int = MAX_NOTEBOOK_BYTES) -> ExtractedModule:
    """Build the module text a notebook defines: its graded functions, what they need, and no experiments.

    Args:
        notebook: the ``.ipynb`` file's bytes, or what ``read_notebook`` returned for them.
        graded_functions: the assignment version's graded function names, e.g. ``("preprocess", ...)``.
        max_bytes: the largest notebook file accepted when ``notebook`` is bytes.

    Returns:
        ``ExtractedModule``: ``source`` to stage as the graded module, ``problems`` for the student,
        ``flags`` for the TA, ``missing`` graded functions, ``definitions`` and ``line_to_cell`` to point
        feedback at notebook cells, and ``dropped``, what was left out and why.

    Raises:
        TypeError, ValueError: ``graded_functions`` is not a list of Python identifiers, or ``notebook`` is
            neither bytes nor ``NotebookSources`` (the instructor's or caller's mistake, not the student's).
        MemoryError: only if the process runs out of memory.

    Example:
        >>> import nbformat
        >>> cells = [nbformat.v4.new_code_cell("import numpy as np\\nimport matplotlib.pyplot as plt"),
        ...          nbformat.v4.new_code_cell("%matplotlib inline\\nSCALE = 1 / 255"),
        ...          nbformat.v4.new_code_cell("def forward_matrix(W, b, X):\\n    return np.add(X @ W, b) * SCALE\\n"
        ...                                    "print(forward_matrix(1, 2, 3))")]
        >>> notebook = nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode()
        >>> result = extract_module(notebook, graded_functions=["forward_matrix", "preprocess"])
        >>> print(result.source)
        # Generated by autograder.notebook_intake from the submitted notebook: its imports, constants and
        # definitions, without its experiments. Do not edit; the notebook is the student's work.
        <BLANKLINE>
        <BLANKLINE>
        # notebook cell 1
        import numpy as np
        <BLANKLINE>
        <BLANKLINE>
        # notebook cell 2
        SCALE = 1 / 255
        <BLANKLINE>
        <BLANKLINE>
        # notebook cell 3
        def forward_matrix(W, b, X):
            return np.add(X @ W, b) * SCALE
        <BLANKLINE>
        >>> result.missing, result.definitions["forward_matrix"]
        (('preprocess',), CellLine(cell=3, line=1))
    """
    names = _check_names(graded_functions, "graded_functions")
    sources = _sources(notebook, max_bytes)
    report = _Report(sources.problems, sources.flags)
    empty = ExtractedModule("", (), (), names, {}, {}, (), sources.notebook_bytes, sources.output_bytes)
    if not sources.readable:
        return _replace(empty, problems=report.problems_tuple(), flags=report.flags_tuple())
    try:
        with warnings.catch_warnings():
            # The student's text may hold "\d" in a string: Python warns while parsing, and a process that runs
            # with warnings as errors would turn that into a SyntaxError and cost the function.
            warnings.simplefilter("ignore")
            return _Extraction(sources, names, report).run()
    except MemoryError:
        raise
    except Exception:
        report.problem(INTERNAL_ERROR_MESSAGE)
        report.flag("notebook_intake_error")
        return _replace(empty, problems=report.problems_tuple(), flags=report.flags_tuple(),
                        internal_error=traceback.format_exc())


def extract_answer_cells(notebook: bytes | bytearray | NotebookSources, *, answer_variables: Mapping[str, str],
                         max_bytes: int = MAX_NOTEBOOK_BYTES) -> AnswerCells:
    """Find the notebook's "your turn" cells, by nbgrader ``grade_id`` or else by the variable they assign.

    The cells are only read here; the caller runs each one in the sandbox with inputs it chooses. When
    several cells could be the answer (metadata stripped and the variable assigned twice), the last one in
    notebook order is returned, as running the notebook would leave its value, with every candidate listed
    and the flag ``notebook_answer_ambiguous:<grade_id>``.

    Args:
        notebook: the ``.ipynb`` file's bytes, or what ``read_notebook`` returned for them.
        answer_variables: grade_id -> the variable its cell must assign, e.g.
            ``{"choose_best_optimizer": "best_optimizer", "count_updates_per_epoch": "updates_per_epoch"}``.
        max_bytes: the largest notebook file accepted when ``notebook`` is bytes.

    Returns:
        ``AnswerCells``: ``cells`` by grade_id (source with magics commented out, whether it parses, the
        names it assigns, how it was found), ``missing`` grade_ids, ``problems`` and ``flags``.

    Raises:
        TypeError, ValueError: ``answer_variables`` is not a mapping of identifiers, or ``notebook`` is
            neither bytes nor ``NotebookSources`` (the caller's mistake).
        MemoryError: only if the process runs out of memory.

    Example:
        >>> import nbformat
        >>> cell = nbformat.v4.new_code_cell("%time x = 1\\ntest_error_rate = 1 - test_accuracy")
        >>> notebook = nbformat.writes(nbformat.v4.new_notebook(cells=[cell])).encode()
        >>> answer = extract_answer_cells(notebook, answer_variables={"test_error_rate": "test_error_rate"})
        >>> found = answer.cells["test_error_rate"]
        >>> found.found_by, found.assigned_names, found.source.split("\\n")[0]
        ('variable', ('test_error_rate',), '# %time x = 1')
    """
    if not isinstance(answer_variables, Mapping):
        raise TypeError(f"answer_variables must map each grade_id to the variable its cell assigns; received "
                        f"{type(answer_variables).__name__}. Pass e.g. {{'test_error_rate': 'test_error_rate'}}.")
    _check_names(list(answer_variables.values()), "answer_variables values")
    for grade_id in answer_variables:
        if not isinstance(grade_id, str) or not grade_id:
            raise ValueError(f"answer_variables keys must be nbgrader grade_ids (non-empty strings); received "
                             f"{grade_id!r}.")
    sources = _sources(notebook, max_bytes)
    report = _Report(sources.problems, sources.flags)
    if not sources.readable:
        return AnswerCells({}, tuple(answer_variables), report.problems_tuple(), report.flags_tuple())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as in extract_module
            return _find_answers(sources, dict(answer_variables), report)
    except MemoryError:
        raise
    except Exception:
        report.problem(INTERNAL_ERROR_MESSAGE)
        report.flag("notebook_intake_error")
        return AnswerCells({}, tuple(answer_variables), report.problems_tuple(), report.flags_tuple(),
                           traceback.format_exc())


INTERNAL_ERROR_MESSAGE = ("The grader could not read your notebook because of an error in the grader itself, "
                          "not in your work. Your TA has been told and will grade it once it is fixed; "
                          "there is nothing for you to change.")


# -- reading the file ------------------------------------------------------------------------------

class _Report:
    """Problems and flags in the order they arose, each once."""

    def __init__(self, problems: Sequence[str] = (), flags: Sequence[str] = ()):
        self.problems: dict[str, None] = dict.fromkeys(problems)
        self.flags: dict[str, None] = dict.fromkeys(flags)

    def problem(self, message: str) -> None:
        self.problems.setdefault(message)

    def flag(self, tag: str) -> None:
        self.flags.setdefault(tag)

    def problems_tuple(self) -> tuple[str, ...]:
        return tuple(self.problems)

    def flags_tuple(self) -> tuple[str, ...]:
        return tuple(self.flags)


def _sources(notebook, max_bytes: int) -> NotebookSources:
    if isinstance(notebook, NotebookSources):
        return notebook
    if isinstance(notebook, (bytes, bytearray)):
        return read_notebook(notebook, max_bytes=max_bytes)
    raise TypeError(f"Expected the notebook file's bytes or read_notebook()'s result; received "
                    f"{type(notebook).__name__}.")


def _check_names(names, what: str) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"{what} must be a list of names such as ['preprocess', 'build_model']; received "
                        f"{names!r}.")
    checked = tuple(names)
    wrong = [name for name in checked if not isinstance(name, str) or not name.isidentifier()]
    if wrong or not checked or len(set(checked)) != len(checked):
        raise ValueError(f"{what} must be distinct Python identifiers, at least one; received {list(checked)!r} "
                         f"(not identifiers: {wrong!r}). Fix the assignment version's definition.")
    return checked


def _read(data: bytes | bytearray, max_bytes: int, report: _Report) -> NotebookSources:
    size = len(data)

    def refused(message: str, tag: str) -> NotebookSources:
        report.problem(message)
        report.flag(tag)
        return NotebookSources(False, (), False, size, 0, report.problems_tuple(), report.flags_tuple())

    if size > max_bytes:
        return refused(f"The notebook is {size / 2**20:.1f} MB; the grader reads notebooks up to "
                       f"{max_bytes / 2**20:.0f} MB, and almost all of that size is cell outputs (images, long "
                       "training logs), which grading does not need. Clear them (Jupyter: Edit > Clear Outputs of "
                       "All Cells; Colab: Edit > Clear all outputs), save, and submit the notebook again.",
                       "oversized_notebook")
    stripper = _OutputStripper()
    try:
        raw = json.loads(data, object_hook=stripper)
    except UnicodeDecodeError as error:
        return refused(f"The notebook is not a Jupyter notebook: byte {error.start} is not UTF-8 text, and notebooks "
                       "are UTF-8 JSON. Download it again from Jupyter or Colab (File > Download > .ipynb) and "
                       "submit that file.", "notebook_not_json")
    except json.JSONDecodeError as error:
        start = data[:40].decode("utf-8", "replace").strip()
        looks = f" The file starts with {inert(start)}." if start and not start.startswith("{") else ""
        return refused(f"The notebook is not a Jupyter notebook: it is not valid JSON ({error.msg} at line "
                       f"{error.lineno}, column {error.colno}).{looks} A notebook edited in a text editor or renamed "
                       "from another file does this. Download it again from Jupyter or Colab (File > Download > "
                       ".ipynb) and submit that file.", "notebook_not_json")
    except (RecursionError, ValueError) as error:  # nesting beyond the parser's depth, a 5000-digit number
        return refused(f"The notebook is not a Jupyter notebook: its JSON cannot be read ({type(error).__name__}). "
                       "Download it again from Jupyter or Colab (File > Download > .ipynb) and submit that file.",
                       "notebook_not_json")
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        received = "an object without an `nbformat` field" if isinstance(raw, dict) else f"a JSON {type(raw).__name__}"
        return refused(f"The file is JSON but not a Jupyter notebook: a notebook is an object with `nbformat` and "
                       f"`cells` fields, and this is {received}. Submit the .ipynb file Jupyter or Colab saves.",
                       "notebook_invalid")
    version = raw["nbformat"]
    if version > 4 or version < 1:
        return refused(f"The notebook is in format version {version}; the grader reads version 4 (what Jupyter and "
                       "Colab save) and converts versions 1 to 3. Open it in a current Jupyter, save it, and submit "
                       "it again.", "notebook_unsupported_version")
    _clear_outputs(raw)
    # Imported here, not at the top: nbformat loads jsonschema, about 1 s, which a grading run without
    # notebooks should not pay.
    import nbformat

    node = raw
    if version < 4:
        try:
            node = nbformat.convert(nbformat.from_dict(raw), 4)
            report.flag(f"notebook_converted_from_v{version}")
        except Exception as error:  # nbformat's converters assume a well-formed old notebook
            return refused(f"The notebook is in the old format version {version} and could not be converted "
                           f"({type(error).__name__}). Open it in a current Jupyter, save it (which writes version "
                           "4), and submit it again.", "notebook_unsupported_version")
    language = _language(node)
    if language is not None and not language.lower().startswith(("python", "ipython")):
        return refused(f"The notebook's kernel language is {inert(language)}, not Python, so its cells cannot be "
                       "graded. Write the assignment in a Python 3 notebook (Kernel > Change kernel > Python 3).",
                       "notebook_not_python")
    cells = node.get("cells")
    if not isinstance(cells, list):
        return refused("The notebook has no list of cells (its `cells` field is missing or damaged). Download it "
                       "again from Jupyter or Colab (File > Download > .ipynb) and submit that file.",
                       "notebook_invalid")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(node)
    except Exception:  # still read what can be read: a hand-edited field should not cost the functions
        report.flag("notebook_schema_invalid")
    return _code_cells(cells, size, stripper.dropped_characters, report)


class _OutputStripper:
    """``json.loads`` object hook: an output or a cell's attachments is replaced as soon as it is parsed, so
    a notebook's images never sit in memory together; it counts what it dropped."""

    def __init__(self):
        self.dropped_characters = 0

    def __call__(self, value: dict):
        if "output_type" in value:
            self.dropped_characters += _characters(value)
            return {"output_type": value["output_type"] if isinstance(value["output_type"], str) else "unknown"}
        if "cell_type" in value and "attachments" in value:
            self.dropped_characters += _characters(value.pop("attachments"))
        return value


def _characters(value, limit: int = 10_000) -> int:
    """Characters of text in a parsed output (strings nested in a few dicts and lists), looking at a bounded
    number of items."""
    total, stack, seen = 0, [value], 0
    while stack and seen < limit:
        item = stack.pop()
        seen += 1
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def _clear_outputs(raw: dict) -> None:
    """Empty every code cell's outputs (already placeholders), in format 4 and in the older worksheets."""
    groups = [raw.get("cells")]
    worksheets = raw.get("worksheets")
    if isinstance(worksheets, list):  # formats 1 to 3
        groups += [sheet.get("cells") for sheet in worksheets if isinstance(sheet, dict)]
    for cells in groups:
        if isinstance(cells, list):
            for cell in cells:
                if isinstance(cell, dict) and "outputs" in cell:
                    cell["outputs"] = []


def _language(node) -> str | None:
    metadata = node.get("metadata") if isinstance(node.get("metadata"), dict) else {}
    for key, field_name in (("language_info", "name"), ("kernelspec", "language")):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get(field_name), str) and section[field_name]:
            return _repaired(section[field_name][:80])
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _repaired(text: str) -> str:
    """Text that UTF-8 can hold: JSON allows lone surrogates ("\\ud800"), files and reports do not."""
    return text if _encodable(text) else text.encode("utf-8", "replace").decode("utf-8")


def _code_cells(cells: list, size: int, output_characters: int, report: _Report) -> NotebookSources:
    found: list[SourceCell] = []
    has_metadata = False
    code_bytes = 0
    for index, cell in enumerate(cells):
        number = index + 1
        if not isinstance(cell, dict):
            report.flag("notebook_schema_invalid")
            continue
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbgrader = metadata.get("nbgrader") if isinstance(metadata.get("nbgrader"), dict) else {}
        grade_id = nbgrader.get("grade_id")
        grade_id = _repaired(grade_id) if isinstance(grade_id, str) and grade_id else None
        has_metadata = has_metadata or grade_id is not None
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(part, str) for part in source):
            source = "".join(source)
        if not isinstance(source, str):
            report.flag("notebook_schema_invalid")
            continue
        source = source.replace("\r\n", "\n").replace("\r", "\n")
        if not _encodable(source):  # a lone surrogate ("\ud800" in the JSON): no Python file can hold it
            source = _repaired(source)
            report.problem(f"Cell {number} ({CELL_COUNTING}) contains characters that are not valid text (lone "
                           "surrogates, from a damaged copy and paste); the grader replaced them with `?`. Retype "
                           "any string that shows `?` where you meant a character.")
            report.flag("notebook_invalid_text")
        encoded = len(source.encode("utf-8"))
        if encoded > MAX_CELL_BYTES:
            defined = _definition_names(source.split("\n"))
            lost = f" It defines {_name_list(defined)}, which could not be graded." if defined else ""
            report.problem(f"Cell {number} holds {encoded / 2**20:.1f} MB of code ({CELL_COUNTING}); the grader reads "
                           f"cells up to {MAX_CELL_BYTES // 2**20} MB and skipped it.{lost} Move large data into a "
                           "file and keep only code in the notebook.")
            report.flag("notebook_oversized_cell")
            continue
        code_bytes += encoded
        if code_bytes > MAX_CODE_BYTES:
            report.problem(f"The notebook holds more than {MAX_CODE_BYTES // 2**20} MB of code; the grader stopped "
                           f"reading before cell {number} ({CELL_COUNTING}) and skipped the rest. Remove pasted data "
                           "or generated code from the notebook's code cells.")
            report.flag("notebook_oversized_cell")
            break
        if "\x00" in source:
            report.problem(f"Cell {number} contains a NUL character ({CELL_COUNTING}), which Python cannot read, "
                           "so the grader skipped it. Retype the line that holds it.")
            report.flag("notebook_cell_syntax_error")
            continue
        found.append(SourceCell(number, source, grade_id, nbgrader.get("solution") is True))
    if not has_metadata:
        report.flag("notebook_metadata_stripped")
    if output_characters >= LARGE_OUTPUTS_BYTES:
        report.flag("notebook_outputs_dropped")
    return NotebookSources(True, tuple(found), has_metadata, size, output_characters, report.problems_tuple(),
                           report.flags_tuple())


# -- IPython syntax --------------------------------------------------------------------------------

@dataclass
class _CellText:
    """A cell's text as Python: same lines, IPython-only lines commented out."""
    lines: list[str]
    magic_lines: dict[int, str]        # line (from 1) -> the original IPython line
    cell_magic: str | None = None      # a non-Python cell magic (%%bash, %%writefile): the cell is not Python


def _python_text(source: str) -> _CellText:
    """Comment out what IPython would transform (magics, shell escapes, help), keeping every line in place so
    line numbers still match the cell. A string that spans lines is never touched."""
    lines = source.split("\n")
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return _CellText(lines, {})
    indent = lines[first][:len(lines[first]) - len(lines[first].lstrip())]
    if indent:  # IPython removes the first line's indentation from every line (pasted, indented code)
        lines = [line[len(indent):] if line.startswith(indent) else line for line in lines]
    magic_lines: dict[int, str] = {}  # line (from 1) -> original text
    if lines[first].startswith("%%"):
        magic = re.match(r"%%(\w*)", lines[first]).group(1)
        magic_lines[first + 1] = lines[first]
        lines[first] = "# " + lines[first]
        if magic not in PYTHON_CELL_MAGICS:
            for index in range(first + 1, len(lines)):
                lines[index] = "# " + lines[index]
            return _CellText(lines, magic_lines, magic or "%")
    quote: str | None = None
    depth = 0
    continued = False
    magic_continues = False
    for index, line in enumerate(lines):
        at_start = quote is None and depth == 0 and not continued
        if index + 1 in magic_lines:  # the %%time line, already a comment
            continue
        if magic_continues or (at_start and _is_magic(line)):
            magic_lines[index + 1] = line
            stripped = line.lstrip()
            indentation = line[:len(line) - len(stripped)]
            lines[index] = f"{indentation}pass  # {stripped}" if indentation and not magic_continues else "# " + line
            magic_continues = line.endswith("\\")
            continued = False
            continue
        quote, depth, continued = _scan_line(line, quote, depth)
    return _CellText(lines, magic_lines)


def _is_magic(line: str) -> bool:
    stripped = line.lstrip()
    return (stripped[:1] in ("%", "!", "?") or MAGIC_ASSIGNMENT.match(line) is not None
            or PACKAGE_COMMAND.match(line) is not None
            or HELP_LINE.match(line) is not None)


def _scan_line(line: str, quote: str | None, depth: int) -> tuple[str | None, int, bool]:
    """Python's lexical state after one line: the open string's quote (if any), bracket depth, and whether the
    line ends in a backslash continuation. Enough to know where logical lines start."""
    index, length = 0, len(line)
    comment = False
    while index < length:
        character = line[index]
        if quote is not None:
            if character == "\\":
                index += 2
                continue
            if line.startswith(quote, index):
                index += len(quote)
                quote = None
                continue
            index += 1
            continue
        if character == "#":
            comment = True
            break
        if character in "\"'":
            triple = line[index:index + 3]
            quote = triple if triple in ('"""', "'''") else character
            index += len(quote)
            continue
        if character in "([{":
            depth += 1
        elif character in ")]}":
            depth = max(0, depth - 1)
        index += 1
    continued = line.endswith("\\") and not comment and (quote is None or len(quote) == 1)
    if quote is not None and len(quote) == 1 and not line.endswith("\\"):
        quote = None  # an unterminated one-line string ends with its line (a syntax error Python reports)
    return quote, depth, continued


def _string_lines(lines: list[str]) -> list[bool]:
    """For each line: does it start inside a string that spans lines?"""
    inside, quote, depth = [], None, 0
    for line in lines:
        inside.append(quote is not None)
        quote, depth, _ = _scan_line(line, quote, depth)
    return inside


# -- parsing a cell, piece by piece ----------------------------------------------------------------

@dataclass(frozen=True)
class _BrokenPiece:
    """Lines of a cell that do not compile, with Python's error."""
    cell: SourceCell
    first_line: int
    last_line: int
    error_line: int
    message: str
    text: str
    defines: tuple[str, ...]


def _parse(lines: list[str], start: int, end: int, cell_number: int):
    """Parse lines[start:end] with line numbers as in the cell. Returns (statements, None) or (None, error)."""
    text = "\n" * start + "\n".join(lines[start:end]) + "\n"
    try:
        return ast.parse(text, filename=f"<notebook cell {cell_number}>").body, None
    except SyntaxError as error:
        return None, error
    except (ValueError, RecursionError, OverflowError, MemoryError) as error:
        # CPython's parser raises MemoryError ("stack overflow") for `not not ... not x` a few thousand deep and
        # RecursionError for long chains: the student's text, at most MAX_CELL_BYTES, not the process's memory.
        return None, _too_complex(error, start + 1)


def _too_complex(error: BaseException, line: int) -> SyntaxError:
    if isinstance(error, (RecursionError, MemoryError)):
        substitute = SyntaxError("this code is nested too deeply for Python to read (split the expression up)")
    else:
        substitute = SyntaxError(f"Python cannot read this line ({one_line(error, limit=120)})")
    substitute.lineno = line
    return substitute


def _parse_cell(cell: SourceCell, lines: list[str]) -> tuple[list[ast.stmt], list[_BrokenPiece]]:
    """The cell's top-level statements; a cell that does not parse is parsed in pieces, and what still fails
    is returned as broken pieces."""
    statements, error = _parse(lines, 0, len(lines), cell.number)
    if statements is not None:
        return statements, []
    kept: list[ast.stmt] = []
    broken: list[_BrokenPiece] = []
    strong, weak = _boundaries(lines)
    segments = [0] + [line for line in strong if line > 0] + [len(lines)]
    for start, end in zip(segments, segments[1:]):
        if start == end:
            continue
        parsed, error = _parse(lines, start, end, cell.number)
        if parsed is not None:
            kept.extend(parsed)
            continue
        points = [start] + [line for line in weak if start < line < end] + [end]
        if len(points) == 2:  # nothing to split at: the segment's own error says it all
            broken.append(_broken(cell, lines, start, end, error))
            continue
        position = 0
        while position < len(points) - 1:
            first_error = None
            for stop in range(position + 1, min(position + 1 + MAX_MERGED_PIECES, len(points))):
                parsed, error = _parse(lines, points[position], points[stop], cell.number)
                if parsed is not None:
                    kept.extend(parsed)
                    position = stop
                    break
                first_error = first_error or error
            else:
                broken.append(_broken(cell, lines, points[position], points[position + 1], first_error))
                position += 1
    return kept, broken


def _boundaries(lines: list[str]) -> tuple[list[int], list[int]]:
    """Where a top-level piece of a broken cell may start (indexes from 0): ``strong`` at a def, class,
    decorator or import at the start of a line (never merged with what comes before), ``weak`` at any other
    statement that starts a line (merged back when a piece alone does not parse)."""
    strong, weak = [], []
    in_string = _string_lines(lines)
    previous_strong_is_decorator = False
    for index, line in enumerate(lines):
        if not line or line[0] in " \t#)]}" or CONTINUATION_START.match(line):
            continue
        if index and lines[index - 1].endswith("\\"):
            continue
        if in_string[index]:
            if DEFINITION_LINE.match(line):
                weak.append(index)  # perhaps an unterminated string swallowed the next function
            continue
        if STRONG_START.match(line):
            if previous_strong_is_decorator and (line.startswith("@") or DEFINITION_LINE.match(line)):
                previous_strong_is_decorator = line.startswith("@")
                continue  # a decorator belongs to the def that follows it
            strong.append(index)
            previous_strong_is_decorator = line.startswith("@")
        else:
            weak.append(index)
            previous_strong_is_decorator = False
    return strong, weak


def _broken(cell: SourceCell, lines: list[str], start: int, end: int, error: SyntaxError | None) -> _BrokenPiece:
    error_line = getattr(error, "lineno", None) or start + 1
    error_line = min(max(error_line, start + 1), max(end, start + 1))
    message = getattr(error, "msg", None) or str(error) or "invalid syntax"
    text = lines[error_line - 1] if 0 < error_line <= len(lines) else ""
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return _BrokenPiece(cell, start + 1, end, error_line, message, text, _definition_names(lines[start:end]))


def _definition_names(lines: list[str]) -> tuple[str, ...]:
    """Names of functions and classes defined at the start of a line: what a broken piece would have defined."""
    names = [match.group(1) for line in lines if (match := DEFINITION_LINE.match(line))]
    return tuple(dict.fromkeys(names))


# -- statements: what each one is, binds and needs -------------------------------------------------

@dataclass
class _Statement:
    """A top-level statement that may be kept: an import, a definition or a constant."""
    position: int                   # notebook order
    cell: SourceCell
    node: ast.stmt
    kind: str                       # "import", "future", "star_import", "definition", "constant"
    binds: frozenset[str]
    definition_refs: frozenset[str] = frozenset()  # names read when it runs at import (defaults, decorators, values)
    call_refs: frozenset[str] = frozenset()        # global names read only when its functions are called
    first_line: int = 0             # decorators included
    viable: bool = True
    needed: bool = False
    reason: str = ""                # why it was dropped
    unbound: tuple[str, ...] = ()   # names it reads when defined that nothing kept above it sets


def _classify(node: ast.stmt) -> tuple[str | None, frozenset[str], str]:
    """(kind, names bound, reason it is dropped when kind is None)."""
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return "future", frozenset(), ""
    if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
        return "star_import", frozenset(), ""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "import", frozenset((alias.asname or alias.name).split(".")[0] for alias in node.names), ""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return "definition", frozenset({node.name}), ""
    if isinstance(node, ast.Assign):
        names = [_target_names(target) for target in node.targets]
        if any(found is None for found in names):
            return None, frozenset(), "changes part of an object (`x[...] = ...` or `x.name = ...`)"
        if not _is_constant(node.value):
            return None, frozenset(), "runs code to compute the value"
        return "constant", frozenset().union(*names), ""
    if isinstance(node, ast.AnnAssign):
        if not isinstance(node.target, ast.Name):
            return None, frozenset(), "changes part of an object (`x[...] = ...` or `x.name = ...`)"
        if node.value is None:
            return None, frozenset(), "only annotates a name"
        if not (_is_constant(node.value) and _is_constant(node.annotation)):
            return None, frozenset(), "runs code to compute the value"
        return "constant", frozenset({node.target.id}), ""
    if isinstance(node, ast.AugAssign):
        if not isinstance(node.target, ast.Name):
            return None, frozenset(), "changes part of an object (`x[...] += ...` or `x.name += ...`)"
        if not _is_constant(node.value):
            return None, frozenset(), "runs code to compute the value"
        return "constant", frozenset({node.target.id}), ""
    if isinstance(node, ast.Expr):
        runs = not _is_constant(node.value)
        return None, frozenset(), "runs code" if runs else "is an expression with no effect on the module"
    for block, name in BLOCK_NAMES.items():
        if isinstance(node, block):
            return None, frozenset(), f"is {name}"
    keyword = type(node).__name__.lower()
    return None, frozenset(), f"is a `{keyword}` statement"


def _target_names(target: ast.expr) -> frozenset[str] | None:
    """Names an assignment target binds, or None when it changes part of an object."""
    if isinstance(target, ast.Name):
        return frozenset({target.id})
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        parts = [_target_names(element) for element in target.elts]
        return None if any(part is None for part in parts) else frozenset().union(*parts)
    return None


def _is_constant(value: ast.expr) -> bool:
    """Does evaluating this expression avoid running code (no call, comprehension, await, yield, walrus)?
    Iterative, so that a very long expression cannot exhaust the stack."""
    stack: list[ast.AST] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Lambda):  # its body runs only when called; its defaults run now
            stack.extend(default for default in node.args.defaults + node.args.kw_defaults if default is not None)
            continue
        if not isinstance(node, CONSTANT_NODES):
            return False
        stack.extend(ast.iter_child_nodes(node))
    return True


def _bound_anywhere(node: ast.stmt) -> set[str]:
    """Module-level names a dropped statement would have set (loop variables, names assigned in an if/try,
    functions defined in a block), for explaining a kept function that uses one."""
    names: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
            names.add(item.id)
        elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(item.name)
            continue  # its body's names are its own
        elif isinstance(item, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in item.names if alias.name != "*")
        elif isinstance(item, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        stack.extend(ast.iter_child_nodes(item))
    return names


def _nested_definitions(node: ast.stmt) -> list[tuple[str, int]]:
    """Functions and classes defined inside a top-level block (not inside another function): (name, line)."""
    found, stack = [], list(ast.iter_child_nodes(node))
    while stack:
        item = stack.pop()
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append((item.name, item.lineno))
        elif isinstance(item, ast.stmt) or isinstance(item, (ast.excepthandler, ast.match_case)):
            stack.extend(ast.iter_child_nodes(item))
    return found


def _references(node: ast.stmt) -> tuple[frozenset[str], frozenset[str]]:
    """(names read when the statement runs, global names read only when its functions run), from the
    compiler's own scope analysis (``symtable``), so a parameter or local never counts as a global."""
    table = symtable.symtable(ast.unparse(node), "<notebook>", "exec")
    definition = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_referenced()}
    call: set[str] = set()
    stack = [(child, child.get_type() == "class") for child in table.get_children()]
    while stack:
        scope, runs_now = stack.pop()
        names = {symbol.get_name() for symbol in scope.get_symbols() if symbol.is_referenced() and symbol.is_global()}
        (definition if runs_now else call).update(names)
        for child in scope.get_children():
            # A class body runs when the class is defined, and so do the comprehensions in it; methods wait.
            child_runs_now = runs_now and (child.get_type() == "class" or child.get_name() in COMPREHENSION_SCOPES)
            stack.append((child, child_runs_now))
    return frozenset(definition), frozenset(call)


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [decorator.lineno for decorator in decorators])


# -- building the module ---------------------------------------------------------------------------

class _Extraction:
    """One notebook's extraction: read cells, pick statements, follow what the graded functions need."""

    def __init__(self, sources: NotebookSources, graded: tuple[str, ...], report: _Report):
        self.sources, self.graded, self.report = sources, graded, report
        self.statements: list[_Statement] = []
        self.broken: list[_BrokenPiece] = []
        self.dropped: list[tuple[int, DroppedStatement]] = []        # (notebook order, what)
        self.dropped_bindings: dict[str, tuple[SourceCell, int, str, str]] = {}  # name -> (cell, line, reason, text)
        self.nested: dict[str, tuple[SourceCell, int, str]] = {}    # graded name defined inside a block
        self.magic_cells: dict[str, tuple[SourceCell, str]] = {}   # name defined in a non-Python cell magic
        self.texts: dict[int, _CellText] = {}
        self.occupied: dict[int, list[tuple[int, int, int]]] = {}   # cell -> (first, last line, id) per statement
        self.unresolved: list[tuple[_Statement, str]] = []          # (kept statement, a global nothing kept sets)
        self.bindings: dict[str, list[_Statement]] = {}            # name -> viable statements setting it, in order
        self.position = 0

    # reading every cell
    def run(self) -> ExtractedModule:
        for cell in self.sources.cells:
            self._read_cell(cell)
        self._decide_viable()
        self._follow_needs()
        return self._assemble()

    def _drop(self, cell: SourceCell, line: int, reason: str, text: str) -> None:
        self.dropped.append((self.position, DroppedStatement(CellLine(cell.number, line), reason,
                                                             one_line(text, limit=80))))
        self.position += 1

    def _read_cell(self, cell: SourceCell) -> None:
        text = _python_text(cell.source)
        self.texts[cell.number] = text
        if text.cell_magic is not None:
            body = cell.source.split("\n")
            first = min(text.magic_lines)
            self._drop(cell, first, f"is a `%%{text.cell_magic}` cell, whose body is not Python the notebook runs",
                       body[first - 1])
            for name in _definition_names([line.lstrip() for line in body]):
                self.magic_cells.setdefault(name, (cell, text.cell_magic))
            return
        for line, original in sorted(text.magic_lines.items()):
            self._drop(cell, line, "is an IPython magic or shell command", original)
        try:
            statements, broken = _parse_cell(cell, text.lines)
        except (RecursionError, MemoryError) as error:  # as in _parse: the text's depth, bounded by MAX_CELL_BYTES
            statements, broken = [], [_broken(cell, text.lines, 0, len(text.lines), _too_complex(error, 1))]
        self.broken.extend(broken)
        self.occupied[cell.number] = [(_first_line(node), node.end_lineno or node.lineno, id(node))
                                      for node in statements]
        for node in statements:
            self._read_statement(cell, node, text.lines)

    def _read_statement(self, cell: SourceCell, node: ast.stmt, lines: list[str]) -> None:
        first = _first_line(node)
        kind, binds, reason = _classify(node)
        if kind is None:
            for name in _bound_anywhere(node):
                self.dropped_bindings[name] = (cell, first, reason, lines[first - 1])
            if isinstance(node, tuple(BLOCK_NAMES)):
                for name, line in _nested_definitions(node):
                    if name in self.graded:
                        self.nested.setdefault(name, (cell, line, BLOCK_NAMES[type(node)]))
            self._drop(cell, first, reason, lines[first - 1])
            return
        try:
            compile(ast.Module(body=[node], type_ignores=[]), f"<notebook cell {cell.number}>", "exec",
                    dont_inherit=True)
            definition_refs, call_refs = _references(node) if kind in ("definition", "constant") \
                else (frozenset(), frozenset())
        except SyntaxError as error:  # what only the compiler checks: duplicate arguments, `continue` outside a loop
            end = node.end_lineno or first
            self.broken.append(_broken(cell, lines, first - 1, end, error))
            return
        except (RecursionError, ValueError, OverflowError, MemoryError) as error:  # as in _parse: the text's depth
            self.broken.append(_broken(cell, lines, first - 1, node.end_lineno or first, _too_complex(error, first)))
            return
        self.statements.append(_Statement(self.position, cell, node, kind, binds, definition_refs, call_refs, first))
        self.position += 1

    # deciding what can be defined, then what is needed
    def _decide_viable(self) -> None:
        """A statement can be kept only if every name it reads while running is set by a kept statement
        above it (or is a builtin): otherwise defining it would fail with a NameError."""
        bound: set[str] = set(MODULE_NAMES)
        star_seen = False
        for statement in self.statements:
            unbound = sorted(name for name in statement.definition_refs if name not in bound)
            if unbound and not star_seen:
                statement.viable, statement.unbound = False, tuple(unbound)
                statement.reason = (f"reads {_name_list(unbound)} when it is defined, and nothing the grader keeps "
                                    "sets " + ("it" if len(unbound) == 1 else "them") + " before it")
                line = self.texts[statement.cell.number].lines[statement.first_line - 1]
                for name in statement.binds:
                    self.dropped_bindings[name] = (statement.cell, statement.first_line, statement.reason, line)
                continue
            bound |= statement.binds
            star_seen = star_seen or statement.kind == "star_import"
            for name in statement.binds:
                self.bindings.setdefault(name, []).append(statement)

    def _binding(self, name: str, before: int | None = None) -> _Statement | None:
        """The viable statement that sets ``name`` last (before notebook position ``before``, when given)."""
        candidates = self.bindings.get(name, [])
        if before is None:
            return candidates[-1] if candidates else None
        index = bisect.bisect_left([statement.position for statement in candidates], before)
        return candidates[index - 1] if index else None

    def _follow_needs(self) -> None:
        """Keep the graded functions' final definitions, the future imports, and what they read, following
        names to the statements that set them. A constant nothing graded reads is left out as well: at import
        it could only fail (``trained = results[BATCH_SIZE]`` of a dict an experiment loop filled)."""
        work = [self._binding(name) for name in self.graded]
        work += [s for s in self.statements if s.viable and s.kind == "future"]
        while work:
            statement = work.pop()
            if statement is None or statement.needed:
                continue
            statement.needed = True
            for name in statement.definition_refs:
                if name not in MODULE_NAMES:
                    found = self._binding(name, before=statement.position)
                    work.extend([found] if found else self._star_imports(statement.position))
            for name in statement.call_refs:
                if name not in MODULE_NAMES:
                    found = self._binding(name)
                    if found is None:
                        self.unresolved.append((statement, name))
                        work.extend(self._star_imports(None))
                    else:
                        work.append(found)

    def _star_imports(self, before: int | None) -> list[_Statement]:
        return [s for s in self.statements if s.viable and s.kind == "star_import"
                and (before is None or s.position < before)]

    # writing the module and the messages
    def _assemble(self) -> ExtractedModule:
        kept = [s for s in self.statements if s.needed]
        for statement in self.statements:
            if statement.needed:
                continue
            line = self.texts[statement.cell.number].lines[statement.first_line - 1]
            if not statement.viable:
                reason = statement.reason
            elif statement.kind == "star_import":
                reason = "is a `from ... import *` that no kept code needs"
            else:
                later = next((s for s in kept if s.position > statement.position and s.binds & statement.binds), None)
                if later is not None:
                    reason = f"is set again later, in {CellLine(later.cell.number, later.first_line)}, which is kept"
                else:
                    reason = {"import": "is an import no graded function needs",
                              "constant": "is a constant no graded function needs"}.get(
                                  statement.kind, "is a definition no graded function needs")
            self.dropped.append((statement.position, DroppedStatement(CellLine(statement.cell.number,
                                                                               statement.first_line),
                                                                      reason, one_line(line, limit=80))))
        definitions = {}
        for name in self.graded:
            final = self._binding(name)
            if final is not None and final.needed:
                node_line = final.node.lineno if final.kind == "definition" else final.first_line
                definitions[name] = CellLine(final.cell.number, node_line)
        missing = tuple(name for name in self.graded if name not in definitions)
        self._report_broken(definitions)
        self._report_redefinitions()
        self._report_unviable(definitions)
        self._report_missing(missing)
        self._report_unresolved()
        self._report_magics_in_functions(kept)
        source, line_to_cell = self._write(kept)
        dropped = tuple(d for _, d in sorted(self.dropped, key=lambda item: (item[1].where.cell, item[1].where.line)))
        if len(source.encode("utf-8")) > MAX_MODULE_BYTES:
            self.report.problem(f"The code the grader kept from your notebook is {len(source) / 2**20:.1f} MB; a "
                                f"graded module may be at most {MAX_MODULE_BYTES // 2**20} MB, so nothing could be "
                                "graded. Remove large literals (pasted data) from the notebook's code cells.")
            self.report.flag("notebook_module_too_large")
            return ExtractedModule("", self.report.problems_tuple(), self.report.flags_tuple(), self.graded, {}, {},
                                   dropped, self.sources.notebook_bytes, self.sources.output_bytes)
        for name in missing:
            self.report.flag(f"notebook_missing_function:{name}")
        return ExtractedModule(source, self.report.problems_tuple(), self.report.flags_tuple(), missing,
                               definitions, line_to_cell, dropped, self.sources.notebook_bytes,
                               self.sources.output_bytes)

    def _write(self, kept: list[_Statement]) -> tuple[str, dict[int, CellLine]]:
        output: list[str] = list(HEADER)
        line_to_cell: dict[int, CellLine] = {}
        ordered = [s for s in kept if s.kind == "future"] + [s for s in kept if s.kind != "future"]
        previous: _Statement | None = None
        previous_end = 0
        for statement in ordered:
            lines = self.texts[statement.cell.number].lines
            segment = self._segment(statement, lines)
            if previous is None or previous.cell.number != statement.cell.number or statement.kind == "future":
                output += ["", "", f"# notebook cell {statement.cell.number}"]
            elif segment[0][0] > previous_end + 1:
                output.append("")
            for cell_line, text in segment:
                output.append(text)
                line_to_cell[len(output)] = CellLine(statement.cell.number, cell_line)
            previous, previous_end = statement, segment[-1][0]
            if statement.kind == "future":
                previous = None
        source = "\n".join(output) + "\n"
        compile(source, "<notebook module>", "exec", dont_inherit=True)  # our guarantee; failing is our bug
        return source, line_to_cell

    def _segment(self, statement: _Statement, lines: list[str]) -> list[tuple[int, str]]:
        """The statement's lines (line in cell, text), with the comment lines right above it; a line shared
        with another statement (``x = 1; plot(x)``) is cut at the statement's columns."""
        node = statement.node
        first, last = statement.first_line, node.end_lineno or node.lineno
        others = [(start, end) for start, end, identity in self.occupied.get(statement.cell.number, [])
                  if identity != id(node)]
        shares_first = any(start <= first <= end for start, end in others)
        shares_last = any(start <= last <= end for start, end in others)
        texts = {number: lines[number - 1] for number in range(first, last + 1)}
        if shares_last:
            texts[last] = _cut(texts[last], None, node.end_col_offset)
        if shares_first:
            texts[first] = _cut(texts[first], node.col_offset, None)
        segment = [(number, texts[number]) for number in range(first, last + 1)]
        magic = self.texts[statement.cell.number].magic_lines

        def free_comment(number: int) -> bool:
            return (number not in magic and lines[number - 1].lstrip().startswith("#")
                    and not any(start <= number <= end for start, end in others))

        above = first - 1
        while not shares_first and above >= 1 and lines[above - 1].startswith("#") and free_comment(above):
            segment.insert(0, (above, lines[above - 1]))
            above -= 1
        below = last + 1  # a body's closing comments (``### END SOLUTION``) end where the body does
        while (statement.kind == "definition" and not shares_last and below <= len(lines)
               and lines[below - 1][:1] in (" ", "\t") and free_comment(below)):
            segment.append((below, lines[below - 1]))
            below += 1
        return segment

    def _report_broken(self, definitions: dict[str, CellLine]) -> None:
        for piece in sorted(self.broken, key=lambda p: (p.cell.number, p.first_line)):
            self.report.flag("notebook_cell_syntax_error")
            self._drop(piece.cell, piece.first_line, f"has a syntax error at line {piece.error_line}",
                       piece.text if piece.error_line == piece.first_line else
                       self.texts[piece.cell.number].lines[piece.first_line - 1])
            lines = (f"line {piece.first_line}" if piece.first_line == piece.last_line
                     else f"lines {piece.first_line}-{piece.last_line}")
            quoted = f" ({inert(piece.text.strip()[:100])})" if piece.text.strip() else ""
            if piece.defines:
                graded = [name for name in piece.defines if name in self.graded]
                consequences = []
                for name in graded:
                    elsewhere = definitions.get(name)
                    consequences.append(f"the grader used {inert(name)} from {elsewhere} instead" if elsewhere
                                        else f"{inert(name)} could not be graded")
                effect = (f"; they define {_name_list(piece.defines)}, so " + " and ".join(consequences)
                          if consequences else f"; they define {_name_list(piece.defines)}, which is not graded")
            else:
                effect = "; they define no graded function"
            self.report.problem(
                f"Cell {piece.cell.number} ({CELL_COUNTING}) has a syntax error at line {piece.error_line}{quoted}: "
                f"{inert(one_line(piece.message, limit=200))}. The grader skipped {lines} of that cell{effect}. "
                "Fix the line, run the cell to check it, save the notebook and submit it again.")

    def _report_redefinitions(self) -> None:
        for name in self.graded:
            bindings = [s for s in self.statements if s.viable and name in s.binds]
            final = self._binding(name)
            if len(bindings) < 2 or final is None or not final.needed:
                continue
            cells = sorted({s.cell.number for s in bindings})
            places = _and([f"cell {s.cell.number} (line {s.node.lineno})" for s in bindings])
            self.report.problem(
                f"{inert(name)} is defined {len(bindings)} times, in {places}; the grader uses the last one, in cell "
                f"{final.cell.number}, as running the notebook from top to bottom would. If that is not the version "
                "you want graded, delete the other definitions" + (" (or move yours below them)." if len(cells) > 1
                                                                   else "."))
            self.report.flag(f"notebook_redefined:{name}")

    def _report_unviable(self, definitions: dict[str, CellLine]) -> None:
        """A graded function's definition the grader could not keep (its defaults or decorators need an
        experiment's result), whether or not an earlier definition took its place."""
        for name in self.graded:
            final = definitions.get(name)
            for statement in self.statements:
                if statement.viable or name not in statement.binds:
                    continue
                if final is not None and (final.cell, final.line) > (statement.cell.number, statement.first_line):
                    continue  # a later definition replaced it anyway
                instead = (f"the grader used the definition in {final} instead" if final is not None
                           else f"{inert(name)} was not graded")
                self.report.problem(
                    f"{inert(name)} ({CellLine(statement.cell.number, statement.node.lineno)}) could not be kept: its "
                    f"default values, decorators or base classes read {self._origins(statement)}, so {instead}. The "
                    "grader defines your functions without running the notebook's other code, so these may only use "
                    "imports and constants set above the function, such as `BATCH_SIZE = 100`. Use a literal default "
                    "value, or compute the value inside the function.")
                self.report.flag(f"notebook_unkept_definition:{name}")

    def _origins(self, statement: _Statement) -> str:
        """Where each name a definition needs (and cannot have) is set: later, by an experiment, or nowhere."""
        parts = []
        for name in statement.unbound:
            later = next((s for s in self.bindings.get(name, []) if s.position > statement.position), None)
            if later is not None:
                where = CellLine(later.cell.number, later.first_line)
                parts.append(f"{inert(name)}, which is set only below it, in {where} (it worked in Jupyter because "
                             "that cell had already run)")
            elif name in self.dropped_bindings:
                cell, line, _, text = self.dropped_bindings[name]
                parts.append(f"{inert(name)}, which is set only by code the grader does not run "
                             f"({CellLine(cell.number, line)}: {inert(text.strip()[:80])})")
            else:
                parts.append(f"{inert(name)}, which nothing in the notebook sets")
        return "; and ".join(parts)

    def _report_missing(self, missing: tuple[str, ...]) -> None:
        """One message per graded function the module lacks, saying where it went when we know."""
        explained = {name for piece in self.broken for name in piece.defines}  # the syntax error says so
        explained |= {name for s in self.statements if not s.viable for name in s.binds}  # _report_unviable
        defined = sorted({name for s in self.statements if s.kind == "definition" for name in s.binds})
        for name in missing:
            code = inert(name)
            if name in explained:
                continue
            if name in self.nested:
                cell, line, block = self.nested[name]
                self.report.problem(
                    f"{code} is defined inside {block} ({CellLine(cell.number, line)}); the grader takes only "
                    f"definitions at the top level of a cell, so {code} was not graded. Move `def {name}(...)` to the "
                    "start of a line, outside any block.")
                continue
            if name in self.magic_cells:
                cell, magic = self.magic_cells[name]
                self.report.problem(
                    f"{code} is defined in cell {cell.number}, which starts with the cell magic "
                    f"{inert('%%' + magic)}; that cell's body is not Python the notebook runs, so {code} was not "
                    "graded. Define the function in an ordinary code cell.")
                continue
            close = difflib.get_close_matches(name, [d for d in defined if d not in self.graded], n=1, cutoff=0.75)
            exercise = next((c for c in self.sources.cells if c.grade_id == name), None)
            hint = (f" Cell {exercise.number} is the exercise cell for {code} (nbgrader ID {inert(name)}) but no "
                    "longer defines it." if exercise is not None else "")
            if close:
                where = next(s for s in self.statements if s.kind == "definition" and close[0] in s.binds)
                hint += (f" Cell {where.cell.number} defines {inert(close[0])}; if that is meant to be {code}, "
                         "rename it (names must match exactly).")
            self.report.problem(
                f"No code cell defines {code} at its top level, so {code} was not graded.{hint} Define it with "
                f"`def {name}(...):` at the start of a line in a code cell, keeping the name and parameters given "
                "in the assignment.")

    def _report_unresolved(self) -> None:
        for statement, name in sorted(self.unresolved, key=lambda item: (item[0].position, item[1])):
            owner = ", ".join(inert(bound) for bound in sorted(statement.binds))
            where = CellLine(statement.cell.number, statement.first_line)
            if name in self.dropped_bindings:
                cell, line, reason, text = self.dropped_bindings[name]
                self.report.problem(
                    f"{owner} ({where}) uses {inert(name)}, which the notebook sets only in "
                    f"{CellLine(cell.number, line)} ({inert(text.strip()[:80])}), a statement the grader does not "
                    f"run because it {reason}. When {owner} is graded, {inert(name)} will not exist (NameError). "
                    "Pass it in as an argument, create it inside the function, or set it with a plain constant such "
                    "as `BATCH_SIZE = 100`.")
                self.report.flag(f"notebook_uses_experiment_name:{sorted(statement.binds)[0]}")
            elif name in IPYTHON_NAMES:
                self.report.problem(
                    f"{owner} ({where}) uses {inert(name)}, which Jupyter provides in a notebook but a Python module "
                    f"does not, so it will fail when graded (NameError). Use `print` instead, or import it "
                    "explicitly (`from IPython.display import display`).")
                self.report.flag(f"notebook_uses_experiment_name:{sorted(statement.binds)[0]}")

    def _report_magics_in_functions(self, kept: list[_Statement]) -> None:
        for statement in kept:
            magic = self.texts[statement.cell.number].magic_lines
            last = statement.node.end_lineno or statement.first_line
            inside = [line for line in magic if statement.first_line < line <= last]
            if inside and statement.kind == "definition":
                line = inside[0]
                self.report.problem(
                    f"{inert(statement.node.name)} ({CellLine(statement.cell.number, line)}) contains the IPython "
                    f"line {inert(magic[line].strip()[:80])}, which a Python module cannot run; the grader replaced "
                    "it with `pass`. Remove it from the function, or write it in Python.")
                self.report.flag(f"notebook_magic_in_function:{statement.node.name}")


def _cut(line: str, start: int | None, end: int | None) -> str:
    """A line cut at ast's columns, which count UTF-8 bytes."""
    encoded = line.encode("utf-8")
    return encoded[start or 0:end].decode("utf-8")


def _name_list(names: Sequence[str]) -> str:
    return _and([inert(name) for name in names])


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _replace(result: ExtractedModule, **changes) -> ExtractedModule:
    values = {name: getattr(result, name) for name in result.__dataclass_fields__}
    values.update(changes)
    return ExtractedModule(**values)


# -- answer cells ----------------------------------------------------------------------------------

def _find_answers(sources: NotebookSources, answer_variables: dict[str, str], report: _Report) -> AnswerCells:
    parsed = {cell.number: _answer_view(cell) for cell in sources.cells}
    found: dict[str, AnswerCell] = {}
    missing: list[str] = []
    for grade_id, variable in answer_variables.items():
        by_metadata = [cell for cell in sources.cells if cell.grade_id == grade_id]
        assigning = [cell.number for cell in sources.cells if variable in parsed[cell.number][3]]
        chosen, how = None, ""
        if len(by_metadata) > 1:
            report.flag(f"notebook_duplicate_grade_id:{grade_id}")
        if by_metadata and variable in parsed[by_metadata[-1].number][3]:
            chosen, how = by_metadata[-1], "metadata"
        elif assigning:
            chosen, how = next(c for c in sources.cells if c.number == assigning[-1]), "variable"
            if len(assigning) > 1:
                report.flag(f"notebook_answer_ambiguous:{grade_id}")
            if by_metadata:
                report.problem(
                    f"Cell {by_metadata[-1].number} ({CELL_COUNTING}) is the answer cell {inert(grade_id)} but no "
                    f"longer assigns {inert(variable)}; the grader used cell {chosen.number}, which does. Keep the "
                    "answer in its own cell.")
                report.flag(f"notebook_answer_moved:{grade_id}")
            elif sources.has_nbgrader_metadata:
                report.flag(f"notebook_answer_found_by_variable:{grade_id}")
        elif by_metadata:
            chosen, how = by_metadata[-1], "metadata"
            report.problem(
                f"Cell {chosen.number} ({CELL_COUNTING}) is the answer cell {inert(grade_id)} but does not assign "
                f"{inert(variable)}, and no other cell does, so this answer cannot be checked. Write "
                f"`{variable} = ...` in that cell.")
            report.flag(f"notebook_answer_missing_variable:{grade_id}")
        if chosen is None:
            missing.append(grade_id)
            report.problem(f"No code cell assigns {inert(variable)} (the answer {inert(grade_id)}), so this answer "
                           f"cannot be checked. Write `{variable} = ...` at the start of a line in that exercise's "
                           "cell.")
            report.flag(f"notebook_answer_missing:{grade_id}")
            continue
        source, parses, error, names = parsed[chosen.number]
        if not parses:
            report.problem(f"The answer cell for {inert(variable)} (cell {chosen.number}, {CELL_COUNTING}) has a "
                           f"syntax error: {error}. Fix it, run the cell to check, save and submit again.")
            report.flag("notebook_cell_syntax_error")
        found[grade_id] = AnswerCell(grade_id, variable, chosen.number, source, parses, error, names, how,
                                     tuple(assigning))
    return AnswerCells(found, tuple(missing), report.problems_tuple(), report.flags_tuple())


def _answer_view(cell: SourceCell) -> tuple[str, bool, str | None, tuple[str, ...]]:
    """(source with magics commented out, parses, syntax error, names assigned at the top level)."""
    text = _python_text(cell.source)
    source = "\n".join(text.lines)
    if text.cell_magic is not None:
        return source, False, f"the cell runs the cell magic {inert('%%' + text.cell_magic)}, not Python", ()
    statements, error = _parse(text.lines, 0, len(text.lines), cell.number)
    if statements is not None:
        try:  # what only the compiler checks, such as `return` outside a function
            compile(source, f"<notebook cell {cell.number}>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, OverflowError) as compile_error:
            statements, error = None, compile_error
    if statements is None:
        line = getattr(error, "lineno", None) or 1
        message = f"{inert(one_line(getattr(error, 'msg', None) or error, limit=200))} at line {line}"
        names = []
        for text_line in text.lines:  # best effort, so that a broken answer cell is still found by its variable
            match = ASSIGNMENT_LINE.match(text_line)
            if match:
                names += [part.strip(" \t*()[]") for part in match.group(1).split(",")]
        return source, False, message, tuple(dict.fromkeys(name for name in names if name.isidentifier()))
    names: list[str] = []
    for node in statements:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
            names += _assigned_names(node)
    return source, True, None, tuple(dict.fromkeys(names))


def _assigned_names(node: ast.stmt) -> list[str]:
    """Names a top-level statement assigns, in the order they appear (in its if/for/with blocks too, not inside
    functions, classes or comprehensions)."""
    found: list[tuple[int, int, str]] = []
    stack: list[ast.AST] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
            found.append((item.lineno, item.col_offset, item.id))
        elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp,
                               ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        stack.extend(ast.iter_child_nodes(item))
    return [name for _, _, name in sorted(found)]
