"""Notebook intake: a submitted .ipynb becomes module text by reading it, never running it.

The fixture notebooks are built here with nbformat from the instructor's solution module (its functions
pasted into code cells) and from the guided notebook, so they follow the solution when it changes. No test
imports Keras or runs a line of a notebook.
"""

from __future__ import annotations

import ast
import base64
import copy
import json
import os
import random
import sys
import time
import tracemalloc
import warnings

import nbformat
import pytest

from autograder import notebook_intake

from autograder.notebook_intake import (CellLine, NotebookSources, extract_answer_cells, extract_module,
                                        read_notebook)
from autograder import assignment

V1 = assignment.load("v1")
GRADED_FUNCTIONS = V1.module_functions

SOLUTION_TEXT = V1.solution_module.read_text()
GUIDED_NOTEBOOK = nbformat.read(V1.source_dir / V1.notebook, as_version=4)
ANSWER_VARIABLES = {"choose_best_optimizer": "best_optimizer", "count_updates_per_epoch": "updates_per_epoch",
                    "test_error_rate": "test_error_rate"}


# -- building notebooks from the solution --------------------------------------------------------------

def solution_parts() -> tuple[str, dict[str, str]]:
    """(imports and constants, {function name: its full text}), cut from the solution module by lines so that
    comments such as ``### END SOLUTION`` stay with their function."""
    lines = SOLUTION_TEXT.split("\n")
    body = [node for node in ast.parse(SOLUTION_TEXT).body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]  # not the docstring
    starts = [node.lineno for node in body] + [len(lines) + 1]
    header, functions = [], {}
    for node, start, following in zip(body, starts, starts[1:]):
        text = "\n".join(lines[start - 1:following - 1]).rstrip("\n")
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = text
        else:
            header.append(text)
    return "\n".join(header), functions


HEADER, FUNCTIONS = solution_parts()


def solution_definitions() -> dict[str, str]:
    return {node.name: ast.dump(node) for node in ast.parse(SOLUTION_TEXT).body if isinstance(node, ast.FunctionDef)}


def code_cell(source: str, grade_id: str | None = None):
    cell = nbformat.v4.new_code_cell(source)
    if grade_id is not None:
        cell.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                                     "solution": True}
    return cell


def answer_cells() -> list:
    """The guided notebook's three "your turn" cells, with their nbgrader metadata."""
    return [copy.deepcopy(cell) for cell in GUIDED_NOTEBOOK.cells if "nbgrader" in cell.metadata]


def solution_notebook_cells() -> list:
    """The solution notebook as an nbgrader class would have it: every graded function in its own exercise
    cell (grade_id = the function's name), the imports and constants first, the answer cells after."""
    cells = [nbformat.v4.new_markdown_cell("# Hello world of deep learning"), code_cell(HEADER)]
    cells += [code_cell(text, grade_id=name) for name, text in FUNCTIONS.items()]
    return cells + answer_cells()


def to_bytes(cells, metadata=None) -> bytes:
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=metadata or dict(GUIDED_NOTEBOOK.metadata))
    return nbformat.writes(notebook).encode()


def strip_metadata(cells) -> list:
    stripped = copy.deepcopy(cells)
    for cell in stripped:
        cell.metadata = {}
    return stripped


def top_level_functions(source: str) -> dict[str, str]:
    """{name: ast.dump} of the module's top-level functions; a name defined twice fails the test."""
    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.name not in found, f"{node.name} is defined twice in the extracted module"
            found[node.name] = ast.dump(node)
    return found


def compiles(source: str) -> None:
    """compile() as the sandbox's import would, without turning the student's invalid escapes into errors
    when pytest runs with -W error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compile(source, "hello_mnist.py", "exec", dont_inherit=True)


def cell_number_of(cells, text: str) -> int:
    return next(index + 1 for index, cell in enumerate(cells) if cell.source == text)


def assert_lines_map_back(result, cells) -> None:
    """Every mapped module line is the notebook line it claims to be."""
    module_lines = result.source.split("\n")
    for module_line, where in result.line_to_cell.items():
        cell_lines = cells[where.cell - 1].source.split("\n")
        assert module_lines[module_line - 1] == cell_lines[where.line - 1], (module_line, where)


# -- the assignment's definition ----------------------------------------------------------------------

def test_the_fixtures_cover_every_graded_function():
    """The functions pasted into the fixture notebooks are exactly the version's graded functions."""
    assert tuple(FUNCTIONS) == GRADED_FUNCTIONS
    assert "NUM_CLASSES = 10" in HEADER and "import keras" in HEADER


# -- the solution notebook --------------------------------------------------------------------------

def test_solution_notebook_gives_the_solution_module():
    cells = solution_notebook_cells()
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    compiles(result.source)
    assert top_level_functions(result.source) == solution_definitions()
    assert (result.problems, result.flags, result.missing) == ((), ("notebook",), ())
    tree = ast.parse(result.source)
    imported = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    constants = {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets}
    assert imported == {"numpy", "keras"}
    assert constants == {"NUM_CLASSES", "IMAGE_PIXELS", "OPTIMIZER_NAMES"}
    for name, text in FUNCTIONS.items():
        number = cell_number_of(cells, text)
        assert result.definitions[name] == CellLine(number, 1)
        assert f"# notebook cell {number}\n{text}\n" in result.source  # the whole cell, END SOLUTION included
    assert_lines_map_back(result, cells)
    assert not any(where.cell in (cell_number_of(cells, c.source) for c in answer_cells())
                   for where in result.line_to_cell.values()), "answer cells are experiments, not module code"


def test_a_traceback_line_points_at_the_notebook_cell():
    cells = solution_notebook_cells()
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    module_line = result.source.split("\n").index("    return X @ W + b") + 1
    where = result.cell_of(module_line)
    assert where == CellLine(cell_number_of(cells, FUNCTIONS["forward_matrix"]),
                             FUNCTIONS["forward_matrix"].split("\n").index("    return X @ W + b") + 1)
    assert result.cell_of(1) is None  # the generated header
    json.dumps(result.as_dict())


def test_stripped_metadata_gives_the_same_module_and_a_flag():
    with_metadata = extract_module(to_bytes(solution_notebook_cells()), graded_functions=GRADED_FUNCTIONS)
    stripped = extract_module(to_bytes(strip_metadata(solution_notebook_cells())), graded_functions=GRADED_FUNCTIONS)
    assert stripped.source == with_metadata.source
    assert stripped.flags == ("notebook", "notebook_metadata_stripped") and not stripped.problems


# -- the messy student notebook ---------------------------------------------------------------------

RELU_BUILD_MODEL = '''def build_model(hidden_units=(500, 500), activation="relu"):
    """Trying relu after the lecture."""
    layers = [keras.Input(shape=(IMAGE_PIXELS,))]
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation=activation))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    return keras.Sequential(layers)'''


def messy_notebook_cells() -> list:
    """The guided notebook as a student leaves it: the solution's functions pasted in among the experiments,
    prints after definitions, magics and shell lines, a `%%time` cell, a helper the experiments use, and a later
    experiment cell that redefines build_model."""
    guided = [copy.deepcopy(cell) for cell in GUIDED_NOTEBOOK.cells]
    pasted = {name: code_cell(text) for name, text in FUNCTIONS.items()}
    pasted["preprocess"] = code_cell(FUNCTIONS["preprocess"] + "\n\nx, y = preprocess(train_images[:2], "
                                     "train_labels[:2])\nprint(x.shape, y.shape)")
    pasted["forward_loop"] = code_cell("%%time\n" + FUNCTIONS["forward_loop"] + "\nforward_loop(W, b, X).shape")
    cells = [guided[0], code_cell("%matplotlib inline\n!pip install -q keras\nimport os\n"
                                  "os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'"), guided[1], guided[2],
             code_cell(HEADER + "\nprint(NUM_CLASSES, IMAGE_PIXELS)")]
    placement = {9: ["preprocess"], 11: ["build_model", "compile_model"], 13: ["train_model"],
                 20: ["minibatches", "train_one_epoch"], 33: ["forward_loop", "forward_matrix"],
                 37: ["save_model", "load_model"], 39: ["evaluate_model"], 43: ["predict_digits"]}
    for index, cell in enumerate(guided[3:], start=3):
        cells += [pasted[name] for name in placement.get(index, [])]
        cells.append(cell)
        if index == 30:
            cells.append(code_cell(RELU_BUILD_MODEL + "\n\nrelu_model = compile_model(build_model())\n"
                                   "train_model(relu_model, x_train[:1000], y_train[:1000], epochs=1)\n"
                                   "model.fit?"))
    return cells


def test_messy_notebook_keeps_the_functions_and_drops_the_experiments():
    cells = messy_notebook_cells()
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    compiles(result.source)
    expected = solution_definitions()
    expected["build_model"] = ast.dump(ast.parse(RELU_BUILD_MODEL).body[0])  # the last definition wins
    assert top_level_functions(result.source) == expected
    assert result.missing == ()
    tree = ast.parse(result.source)
    assert {type(node).__name__ for node in tree.body} == {"Import", "Assign", "FunctionDef"}
    assert {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names} == \
        {"numpy", "keras"}  # not matplotlib, os, hello_mnist or mnist_data: no graded function uses them
    assert "%" not in "".join(line[:1] for line in result.source.split("\n"))
    assert_lines_map_back(result, cells)


def test_messy_notebook_says_which_build_model_is_graded():
    cells = messy_notebook_cells()
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    first = cell_number_of(cells, FUNCTIONS["build_model"])
    last = next(index + 1 for index, cell in enumerate(cells) if cell.source.startswith(RELU_BUILD_MODEL))
    assert "notebook_redefined:build_model" in result.flags
    assert result.definitions["build_model"] == CellLine(last, 1)
    [message] = [p for p in result.problems if "defined 2 times" in p]
    assert f"in cell {first} (line 1) and cell {last} (line 1)" in message and f"last one, in cell {last}" in message
    assert {d.reason for d in result.dropped if d.where == CellLine(first, 1)} == \
        {f"is set again later, in cell {last}, line 1, which is kept"}


def test_messy_notebook_lists_what_it_dropped():
    result = extract_module(to_bytes(messy_notebook_cells()), graded_functions=GRADED_FUNCTIONS)
    reasons = {d.text: d.reason for d in result.dropped}
    assert reasons["%matplotlib inline"] == "is an IPython magic or shell command"
    assert reasons["!pip install -q keras"] == "is an IPython magic or shell command"
    assert reasons["model.fit?"] == "is an IPython magic or shell command"
    assert reasons["os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'"].startswith("changes part of an object")
    assert reasons["import matplotlib.pyplot as plt"] == "is an import no graded function needs"
    assert reasons["def training_losses(optimizer):"] == "is a definition no graded function needs"
    assert reasons["relu_model = compile_model(build_model())"] == "runs code to compute the value"
    assert reasons["for optimizer in hm.OPTIMIZER_NAMES:"] == "is a `for` loop"


# -- what a mistake costs -----------------------------------------------------------------------------

def test_a_missing_function_is_named():
    cells = [cell for cell in solution_notebook_cells() if cell.source != FUNCTIONS["forward_matrix"]]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    assert result.missing == ("forward_matrix",)
    assert "notebook_missing_function:forward_matrix" in result.flags
    [message] = result.problems
    assert "`forward_matrix`" in message and "was not graded" in message and "def forward_matrix(...):" in message
    assert set(top_level_functions(result.source)) == set(GRADED_FUNCTIONS) - {"forward_matrix"}


def test_a_misspelled_function_gets_a_hint_and_an_emptied_exercise_cell_is_named():
    cells = solution_notebook_cells()
    number = cell_number_of(cells, FUNCTIONS["predict_digits"])
    cells[number - 1].source = FUNCTIONS["predict_digits"].replace("def predict_digits", "def predict_digit")
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    assert result.missing == ("predict_digits",)
    [message] = result.problems
    assert f"Cell {number} defines `predict_digit`" in message and "rename it" in message
    assert f"Cell {number} is the exercise cell for `predict_digits`" in message


def test_a_syntax_error_costs_only_the_broken_function():
    """One cell defines forward_loop (broken) and forward_matrix; evaluate_model's cell is broken too."""
    broken_loop = FUNCTIONS["forward_loop"].replace("z[i] = X[i] @ W + b", "z[i] = (X[i] @ W + b")
    both = broken_loop + "\n\n\n" + FUNCTIONS["forward_matrix"] + "\nprint(forward_matrix(1, 2, 3))"
    broken_evaluate = FUNCTIONS["evaluate_model"].replace("return float(loss), float(accuracy)",
                                                          "return float(loss) float(accuracy)")
    cells = [cell for cell in solution_notebook_cells() if cell.source not in
             (FUNCTIONS["forward_loop"], FUNCTIONS["forward_matrix"], FUNCTIONS["evaluate_model"])]
    cells += [code_cell(both), code_cell(broken_evaluate)]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    compiles(result.source)
    assert result.missing == ("forward_loop", "evaluate_model")
    assert top_level_functions(result.source)["forward_matrix"] == solution_definitions()["forward_matrix"]
    assert set(top_level_functions(result.source)) == set(GRADED_FUNCTIONS) - {"forward_loop", "evaluate_model"}
    assert "notebook_cell_syntax_error" in result.flags
    assert "notebook_missing_function:forward_loop" in result.flags
    loop_line = broken_loop.split("\n").index("        z[i] = (X[i] @ W + b") + 1
    evaluate_line = broken_evaluate.split("\n").index("    return float(loss) float(accuracy)") + 1
    loop_message, evaluate_message = result.problems  # one message per broken piece, nothing else
    assert loop_message.startswith(f"Cell {len(cells) - 1} ") and f"at line {loop_line} " in loop_message
    assert "was never closed" in loop_message and "`forward_loop` could not be graded" in loop_message
    assert evaluate_message.startswith(f"Cell {len(cells)} ") and f"at line {evaluate_line} " in evaluate_message
    assert "`evaluate_model` could not be graded" in evaluate_message


def test_a_broken_redefinition_leaves_the_earlier_one_graded():
    cells = solution_notebook_cells() + [code_cell(RELU_BUILD_MODEL.replace("return keras", "return = keras"))]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    earlier = cell_number_of(cells, FUNCTIONS["build_model"])
    assert result.missing == () and result.definitions["build_model"] == CellLine(earlier, 1)
    [message] = result.problems
    assert f"the grader used `build_model` from cell {earlier}, line 1 instead" in message


def test_a_function_using_an_experiments_variable_is_kept_with_a_warning():
    train = ("def train_model(model, x, y, batch_size=100, epochs=20):\n"
             "    model = compile_model(model)  # a local named like the experiment's global: no warning\n"
             "    return model.fit(x_train, y, batch_size=batch_size, epochs=epochs)")
    cells = [cell for cell in solution_notebook_cells() if cell.source != FUNCTIONS["train_model"]]
    cells += [code_cell("x_train, y_train = preprocess(images, labels)\nmodel = build_model()"), code_cell(train)]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    assert result.missing == () and "notebook_uses_experiment_name:train_model" in result.flags
    [message] = result.problems
    assert "`train_model`" in message and "`x_train`" in message and "`model`" not in message
    assert f"cell {len(cells) - 1}, line 1" in message and "NameError" in message


def test_a_default_value_from_an_experiment_cannot_be_kept():
    train = FUNCTIONS["train_model"].replace("epochs=20", 'epochs=SIZES["final_epochs"]')
    cells = [cell for cell in solution_notebook_cells() if cell.source != FUNCTIONS["train_model"]]
    cells += [code_cell('SIZES = load_sizes()\nFINAL = SIZES["final_epochs"]'), code_cell(train)]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    compiles(result.source)
    assert result.missing == ("train_model",) and "notebook_unkept_definition:train_model" in result.flags
    [message] = result.problems
    assert f"`SIZES`, which is set only by code the grader does not run (cell {len(cells) - 1}, line 1" in message
    assert "literal default value" in message and "`train_model` was not graded" in message


def test_a_default_value_set_below_the_function_is_explained():
    """In Jupyter the cells ran out of order; top to bottom, the constant comes too late."""
    train = FUNCTIONS["train_model"].replace("epochs=20", "epochs=EPOCHS")
    cells = [cell for cell in solution_notebook_cells() if cell.source != FUNCTIONS["train_model"]]
    cells += [code_cell(train), code_cell("EPOCHS = 20")]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    [message] = result.problems
    assert f"`EPOCHS`, which is set only below it, in cell {len(cells)}, line 1" in message


def test_definitions_inside_blocks_and_cell_magics_are_explained():
    cells = [cell for cell in solution_notebook_cells()
             if cell.source not in (FUNCTIONS["save_model"], FUNCTIONS["load_model"])]
    cells += [code_cell("try:\n" + "\n".join("    " + line for line in FUNCTIONS["save_model"].split("\n"))
                        + "\nexcept ImportError:\n    pass"),
              code_cell("%%writefile helpers.py\n" + FUNCTIONS["load_model"])]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    assert result.missing == ("save_model", "load_model")
    save_message, load_message = result.problems
    assert "inside a `try` block" in save_message and f"cell {len(cells) - 1}, line 2" in save_message
    assert "``%%writefile``" not in load_message and "`%%writefile`" in load_message


def test_magics_in_strings_are_text_and_in_functions_become_pass():
    cells = solution_notebook_cells()
    number = cell_number_of(cells, FUNCTIONS["minibatches"])
    # A docstring line that starts with % or ! is text, not a magic; a shell line inside a function is not Python.
    cells[number - 1].source = FUNCTIONS["minibatches"].replace('    """Yield one epoch',
                                                                '    """Yield one epoch\n%timeit is text here\n'
                                                                '!so is this\n   ').replace(
        "    order = rng.permutation(len(x))", "    order = rng.permutation(len(x))\n    !echo shuffled")
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    minibatches = next(node for node in ast.parse(result.source).body if getattr(node, "name", "") == "minibatches")
    assert ast.get_docstring(minibatches, clean=False).startswith("Yield one epoch\n%timeit is text here\n!so is this")
    assert "    pass  # !echo shuffled" in result.source
    assert "notebook_magic_in_function:minibatches" in result.flags
    [message] = result.problems
    assert "`!echo shuffled`" in message and "replaced it with `pass`" in message


def test_statements_sharing_a_line_are_cut_apart():
    cells = [cell for cell in solution_notebook_cells() if cell.source != HEADER]
    cells.insert(1, code_cell("import numpy as np; import keras\nNUM_CLASSES = 10; print(NUM_CLASSES)\n"
                              "IMAGE_PIXELS = 28 * 28; OPTIMIZER_NAMES = ('sgd', 'adam')"))
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    assert ("import numpy as np\nimport keras\nNUM_CLASSES = 10\nIMAGE_PIXELS = 28 * 28\n"
            "OPTIMIZER_NAMES = ('sgd', 'adam')") in result.source
    assert result.missing == () and not result.problems


def test_a_future_import_moves_to_the_top():
    cells = solution_notebook_cells() + [code_cell("from __future__ import annotations\nprint('late')")]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    first = ast.parse(result.source).body[0]
    assert isinstance(first, ast.ImportFrom) and first.module == "__future__"
    compiles(result.source)


def test_code_too_deep_for_the_parser_is_a_syntax_error_not_a_crash():
    """CPython's parser raises MemoryError (not a real shortage) or RecursionError on such text."""
    cells = solution_notebook_cells()
    cells.insert(2, code_cell("X = " + "not " * 50_000 + "1\nY = " + "1 + " * 100_000 + "1\n\ndef helper():\n    pass"))
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    assert result.missing == () and "notebook_cell_syntax_error" in result.flags
    assert all("nested too deeply" in problem for problem in result.problems) and len(result.problems) == 2


def test_lone_surrogates_from_the_json_are_replaced():
    notebook = json.loads(to_bytes(solution_notebook_cells()))
    evaluate = next(cell for cell in notebook["cells"] if "".join(cell["source"]) == FUNCTIONS["evaluate_model"])
    evaluate["source"] = "".join(evaluate["source"]).replace("verbose=0)[:2]", "verbose=0)[:2]  # \ud800")
    data = json.dumps(notebook).encode()  # written as the escape \ud800, which JSON allows and UTF-8 cannot hold
    result = extract_module(data, graded_functions=GRADED_FUNCTIONS)
    assert result.missing == () and "notebook_invalid_text" in result.flags
    result.source.encode("utf-8")


def test_randomly_damaged_notebooks_never_break_the_intake():
    """Seeded mutations (brackets, quotes, escapes, magics, deletions): every result compiles, there is no
    internal error, and every graded function is either defined or missing."""
    generator = random.Random(2024)
    alphabet = list("()[]{}'\"#\\\n :=%!?@\t") + ["def ", "class ", '"""', "'''"]
    for _ in range(25):
        cells = solution_notebook_cells()
        cells[2].source += '\nPATTERN = "\\d+"  # an invalid escape: Python warns while parsing it'

        for _ in range(generator.randint(1, 8)):
            cell = generator.choice([cell for cell in cells if cell.cell_type == "code"])
            position = generator.randrange(max(1, len(cell.source)))
            insert = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 12)))
            cell.source = cell.source[:position] + insert + cell.source[position + generator.randint(0, 4):]
        result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
        answers = extract_answer_cells(to_bytes(cells), answer_variables=ANSWER_VARIABLES)
        assert result.internal_error is None and answers.internal_error is None
        compiles(result.source)
        assert set(result.missing) | set(result.definitions) == set(GRADED_FUNCTIONS)


# -- sizes ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def notebook_with_50_mib_of_outputs() -> bytes:
    cells = solution_notebook_cells()
    image = base64.b64encode(os.urandom(786432)).decode()  # 1 MiB of base64, as a PNG output holds
    code = [cell for cell in cells if cell.cell_type == "code"]
    for index in range(50):
        code[index % len(code)].outputs.append(
            nbformat.v4.new_output("display_data", data={"image/png": image, "text/plain": "<Figure>"}))
    return json.dumps(nbformat.v4.new_notebook(cells=cells, metadata=dict(GUIDED_NOTEBOOK.metadata))).encode()


def test_50_mib_of_outputs_are_dropped_within_bounded_memory(notebook_with_50_mib_of_outputs):
    data = notebook_with_50_mib_of_outputs
    assert len(data) > 50 * 2**20
    tracemalloc.start()
    try:
        result = extract_module(data, graded_functions=GRADED_FUNCTIONS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The decoded JSON text and one output at a time (about 1.02 x the file measured); holding every output,
    # as nbformat.reads does, would be 2 x.
    assert peak < 1.5 * len(data), f"peak {peak / 2**20:.0f} MiB for a {len(data) / 2**20:.0f} MiB notebook"
    clean = extract_module(to_bytes(solution_notebook_cells()), graded_functions=GRADED_FUNCTIONS)
    assert result.source == clean.source and result.missing == ()
    assert result.flags == ("notebook", "notebook_outputs_dropped") and result.output_bytes >= 50 * 2**20


def test_50_mib_of_outputs_take_well_under_seconds(notebook_with_50_mib_of_outputs):
    # A guard against a pathological slowdown (measured: about 0.1 s), not a benchmark: the bound is 50 times that.
    extract_module(to_bytes(solution_notebook_cells()), graded_functions=GRADED_FUNCTIONS)  # nbformat's schema
    started = time.perf_counter()
    extract_module(notebook_with_50_mib_of_outputs, graded_functions=GRADED_FUNCTIONS)
    assert time.perf_counter() - started < 5


def test_an_oversized_notebook_is_refused_before_parsing():
    data = to_bytes(solution_notebook_cells())
    padded = data + b" " * (notebook_intake.MAX_NOTEBOOK_BYTES + 1 - len(data))  # still valid JSON
    result = extract_module(padded, graded_functions=GRADED_FUNCTIONS)
    assert result.source == "" and result.missing == GRADED_FUNCTIONS
    assert result.flags == ("notebook", "oversized_notebook")
    [message] = result.problems
    assert "64 MB" in message and "Clear Outputs" in message
    small = extract_module(data, graded_functions=GRADED_FUNCTIONS, max_bytes=1000)
    assert "oversized_notebook" in small.flags and small.source == ""


def test_an_oversized_cell_is_skipped_and_named():
    cells = solution_notebook_cells()
    cells.insert(2, code_cell("DATA = '" + "x" * notebook_intake.MAX_CELL_BYTES + "'\ndef helper():\n    pass"))
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    assert result.missing == () and "notebook_oversized_cell" in result.flags
    [message] = result.problems
    assert message.startswith("Cell 3 holds 1.0 MB of code") and "`helper`" in message


# -- files that are not notebooks -------------------------------------------------------------------

@pytest.mark.parametrize("data, flag, words", [
    (b"import numpy as np\n", "notebook_not_json", "starts with `import numpy as np`"),
    (b"", "notebook_not_json", "not valid JSON"),
    (b'{"cells": [], "nbformat": 4,', "notebook_not_json", "not valid JSON"),
    (b'{"cells": [], "nbformat": 4, "x": "caf\xe9"}', "notebook_not_json", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "notebook_not_json", "cannot be read"),
    (b'{"x": ' + b"9" * 5000 + b"}", "notebook_not_json", "cannot be read"),
    (b"[1, 2, 3]", "notebook_invalid", "a JSON list"),
    (b'{"cells": []}', "notebook_invalid", "without an `nbformat` field"),
    (b'{"cells": "nope", "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "notebook_invalid", "no list of cells"),
    (b'{"cells": [], "metadata": {}, "nbformat": 5, "nbformat_minor": 0}', "notebook_unsupported_version",
     "format version 5"),
    (b'{"cells": [], "metadata": {"kernelspec": {"language": "R", "name": "ir"}}, "nbformat": 4, '
     b'"nbformat_minor": 5}', "notebook_not_python", "`R`"),
])
def test_what_is_not_a_notebook_gets_a_message_not_an_exception(data, flag, words):
    result = extract_module(data, graded_functions=GRADED_FUNCTIONS)
    assert result.source == "" and result.missing == GRADED_FUNCTIONS and result.line_to_cell == {}
    assert result.flags == ("notebook", flag)
    [message] = result.problems
    assert words in message and "Traceback" not in message
    answers = extract_answer_cells(data, answer_variables=ANSWER_VARIABLES)
    assert answers.cells == {} and answers.missing == tuple(ANSWER_VARIABLES) and answers.problems == (message,)


def test_damaged_cells_are_skipped_and_the_rest_is_read():
    notebook = json.loads(to_bytes(solution_notebook_cells()))
    notebook["cells"][0] = "not a cell"
    notebook["cells"][1]["source"] = 42  # the header cell: every function still parses, the module lacks numpy
    result = extract_module(json.dumps(notebook).encode(), graded_functions=GRADED_FUNCTIONS)
    assert result.missing == () and "notebook_schema_invalid" in result.flags
    assert "import numpy" not in result.source


def test_an_old_format_3_notebook_is_converted():
    worksheet = nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell(input=HEADER)] + [
        nbformat.v3.new_code_cell(input=text, outputs=[nbformat.v3.new_output("pyout", output_text="1")])
        for text in FUNCTIONS.values()])
    data = nbformat.writes(nbformat.v3.new_notebook(worksheets=[worksheet]), version=3).encode()
    result = extract_module(data, graded_functions=GRADED_FUNCTIONS)
    assert top_level_functions(result.source) == solution_definitions()
    assert "notebook_converted_from_v3" in result.flags and not result.problems


def test_crlf_line_endings_are_read():
    cells = [code_cell(cell.source.replace("\n", "\r\n")) if cell.cell_type == "code" else cell
             for cell in solution_notebook_cells()]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    assert top_level_functions(result.source) == solution_definitions() and not result.problems


# -- answer cells -----------------------------------------------------------------------------------

def test_answer_cells_are_found_by_their_nbgrader_metadata():
    data = nbformat.writes(GUIDED_NOTEBOOK).encode()
    answers = extract_answer_cells(data, answer_variables=ANSWER_VARIABLES)
    assert answers.missing == () and answers.problems == () and answers.flags == ("notebook",)
    expected_cells = {cell.metadata.nbgrader.grade_id: index + 1 for index, cell in enumerate(GUIDED_NOTEBOOK.cells)
                      if "nbgrader" in cell.metadata}
    for grade_id, variable in ANSWER_VARIABLES.items():
        answer = answers.cells[grade_id]
        assert (answer.found_by, answer.cell, answer.parses, answer.variable) == \
            ("metadata", expected_cells[grade_id], True, variable)
        assert answer.assigned_names[0] == variable and "### BEGIN SOLUTION" in answer.source
        assert answer.source == GUIDED_NOTEBOOK.cells[answer.cell - 1].source
    assert answers.cells["test_error_rate"].assigned_names == ("test_error_rate", "wrong_digits")


def test_answer_cells_are_found_by_their_variable_when_metadata_is_stripped():
    data = to_bytes(strip_metadata(GUIDED_NOTEBOOK.cells))
    by_metadata = extract_answer_cells(nbformat.writes(GUIDED_NOTEBOOK).encode(), answer_variables=ANSWER_VARIABLES)
    answers = extract_answer_cells(data, answer_variables=ANSWER_VARIABLES)
    assert answers.missing == () and answers.problems == ()
    assert answers.flags == ("notebook", "notebook_metadata_stripped")
    for grade_id in ANSWER_VARIABLES:
        assert answers.cells[grade_id].found_by == "variable"
        assert answers.cells[grade_id].cell == by_metadata.cells[grade_id].cell


def test_answer_cells_with_magics_errors_and_gaps():
    cells = [code_cell("%time best_optimizer = 'adam'\n!nvidia-smi\nbest_optimizer = min(loss_curves)",
                       grade_id="choose_best_optimizer"),
             code_cell("updates_per_epoch = math.ceil(len(x_hand) / BATCH_SIZE\n", grade_id="count_updates_per_epoch"),
             code_cell("best_optimizer = 'sgd'  # a later experiment")]
    answers = extract_answer_cells(to_bytes(cells), answer_variables=ANSWER_VARIABLES)
    best = answers.cells["choose_best_optimizer"]
    assert best.source == "# %time best_optimizer = 'adam'\n# !nvidia-smi\nbest_optimizer = min(loss_curves)"
    assert (best.found_by, best.cell, best.candidates, best.parses) == ("metadata", 1, (1, 3), True)
    updates = answers.cells["count_updates_per_epoch"]
    assert not updates.parses and "was never closed" in updates.syntax_error
    assert updates.assigned_names == ("updates_per_epoch",)
    assert answers.missing == ("test_error_rate",)
    assert "notebook_answer_missing:test_error_rate" in answers.flags
    assert any("`test_error_rate`" in problem and "cannot be checked" in problem for problem in answers.problems)


def test_a_moved_answer_is_found_by_its_variable_with_a_message():
    cells = [code_cell("print('I moved my answer')", grade_id="test_error_rate"),
             code_cell("test_error_rate = 1 - test_accuracy")]
    answers = extract_answer_cells(to_bytes(cells), answer_variables={"test_error_rate": "test_error_rate"})
    assert answers.cells["test_error_rate"].cell == 2 and answers.cells["test_error_rate"].found_by == "variable"
    assert "notebook_answer_moved:test_error_rate" in answers.flags and len(answers.problems) == 1


def test_one_read_serves_both_extractors():
    data = to_bytes(solution_notebook_cells())
    sources = read_notebook(data)
    assert isinstance(sources, NotebookSources) and sources.readable and sources.has_nbgrader_metadata
    assert extract_module(sources, graded_functions=GRADED_FUNCTIONS) == \
        extract_module(data, graded_functions=GRADED_FUNCTIONS)
    assert extract_answer_cells(sources, answer_variables=ANSWER_VARIABLES) == \
        extract_answer_cells(data, answer_variables=ANSWER_VARIABLES)


# -- the trust boundary -----------------------------------------------------------------------------

def test_nothing_in_the_notebook_runs(tmp_path):
    sentinel = tmp_path / "ran"
    hostile = (f"open({str(sentinel)!r}, 'w').write('top level')\n"
               f"class Probe:\n    marker = open({str(sentinel)!r}, 'w')\n"
               f"def preprocess(images, labels, where=open({str(sentinel)!r}, 'w')):\n    return images, labels\n"
               "raise SystemExit(3)")
    cells = solution_notebook_cells() + [code_cell(hostile, grade_id="test_error_rate")]
    result = extract_module(to_bytes(cells), graded_functions=GRADED_FUNCTIONS)
    extract_answer_cells(to_bytes(cells), answer_variables=ANSWER_VARIABLES)
    assert not sentinel.exists()
    # The module is text for the sandbox: the experiment lines and the unused class are not in it; the last
    # preprocess is, default included, and runs there at import like a submitted module's would.
    assert "write('top level')" not in result.source and "SystemExit" not in result.source
    assert "class Probe" not in result.source
    assert result.definitions["preprocess"].cell == len(cells)


def test_the_intake_module_never_executes_or_imports_text():
    tree = ast.parse((notebook_intake.__file__ and open(notebook_intake.__file__).read()))
    called = {node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
              for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert not called & {"exec", "eval", "__import__", "import_module", "exec_module", "run_path", "system"}


def test_the_intake_loads_no_keras():
    before = set(sys.modules)
    extract_module(to_bytes(messy_notebook_cells()), graded_functions=GRADED_FUNCTIONS)
    extract_answer_cells(to_bytes(messy_notebook_cells()), answer_variables=ANSWER_VARIABLES)
    loaded = {name.split(".")[0] for name in set(sys.modules) - before}
    assert not loaded & {"keras", "tensorflow", "jax", "torch", "matplotlib", "hello_mnist", "mnist_data"}


def test_our_own_bug_becomes_a_problem_with_its_traceback(monkeypatch):
    def broken(self):
        raise RuntimeError("a bug in the intake")
    monkeypatch.setattr(notebook_intake._Extraction, "run", broken)
    result = extract_module(to_bytes(solution_notebook_cells()), graded_functions=GRADED_FUNCTIONS)
    assert result.source == "" and result.missing == GRADED_FUNCTIONS
    assert "notebook_intake_error" in result.flags and "RuntimeError: a bug in the intake" in result.internal_error
    assert "error in the grader itself" in result.problems[0]


def test_running_out_of_memory_is_not_swallowed(monkeypatch):
    def exhausted(self):
        raise MemoryError
    monkeypatch.setattr(notebook_intake._Extraction, "run", exhausted)
    with pytest.raises(MemoryError):
        extract_module(to_bytes(solution_notebook_cells()), graded_functions=GRADED_FUNCTIONS)


@pytest.mark.parametrize("graded, error", [("preprocess", TypeError), (["pre process"], ValueError), ([], ValueError),
                                           (["preprocess", "preprocess"], ValueError)])
def test_an_instructors_mistake_raises(graded, error):
    with pytest.raises(error, match="graded_functions"):
        extract_module(to_bytes(solution_notebook_cells()), graded_functions=graded)


def test_a_callers_mistake_raises():
    with pytest.raises(TypeError, match="bytes"):
        extract_module("a path, not bytes", graded_functions=GRADED_FUNCTIONS)
    with pytest.raises(TypeError, match="answer_variables"):
        extract_answer_cells(b"{}", answer_variables=["test_error_rate"])
