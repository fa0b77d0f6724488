"""One syntax error costs one function: cut the broken top-level block out of a module that does not parse.

nbgrader grades cell by cell, so there a syntax error costs one cell; a module that does not import would
cost every function. ``rescue()`` (trusted side: it only parses and compiles, never runs anything) finds
the top-level block (a ``def``, a ``class``, an import or an assignment) each syntax error is in, and
replaces it by a stub with the same name that raises ``SyntaxError`` with the line and the message, padded
so every other line keeps its number (tracebacks and feedback still point at the student's own lines).
The functions that compile on their own are then graded as usual; the broken one scores 0 and its
feedback says why, once. Rubric setting ``[assignment] syntax_errors = "per_function"`` (the default) or
``"whole_module"`` (the strict rule: the module does not import, nothing is graded).

Example:
    >>> rescued = rescue("def f():\\n    return 1\\n\\ndef g(:\\n    pass\\n")
    >>> rescued.broken[0].names, rescued.broken[0].line
    (('g',), 4)
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

# Lines that start a new top-level block. Anything else at column 0 (a closing bracket, "else:", a
# continuation) belongs to the block above it.
BLOCK_START = re.compile(r"^(?:async\s+def\s|def\s|class\s|@|import\s|from\s|if\s+__name__|[A-Za-z_]\w*\s*(?::[^=]*)?=[^=])")
DEFINED = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)")
MAX_ROUNDS = 50


@dataclass(frozen=True)
class BrokenBlock:
    names: tuple[str, ...]   # what the block defined (functions, classes); empty for other statements
    line: int                # where the syntax error is (1-based, in the submitted file)
    first_line: int          # where the block starts
    message: str


@dataclass(frozen=True)
class Rescued:
    source: str
    broken: tuple[BrokenBlock, ...]


def _compiles(source: str) -> SyntaxError | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences are warnings, not the student's zero
            compile(source, "<submitted module>", "exec", dont_inherit=True)
    except SyntaxError as error:
        return error
    except (ValueError, RecursionError, MemoryError) as error:  # null bytes, absurd nesting
        return SyntaxError(f"{type(error).__name__}: {error}")
    return None


def _blocks(lines: list[str]) -> list[int]:
    """Indices of the lines that start top-level blocks (decorators keep their function)."""
    starts = []
    for index, line in enumerate(lines):
        if not BLOCK_START.match(line):
            continue
        if starts and lines[starts[-1]].startswith("@") and starts[-1] < index and \
                all(lines[i].startswith("@") or not lines[i].strip() for i in range(starts[-1], index)):
            continue  # a def right under its decorators
        starts.append(index)
    return starts


def _stub(names: tuple[str, ...], line: int, message: str, width: int) -> list[str]:
    text = f"line {line}: {message}"
    stubs = [f"def {name}(*args, **kwargs): raise SyntaxError({f'{name} was not graded: a syntax error at {text}'!r})"
             for name in names] or ["pass"]
    return (stubs + [""] * width)[:max(width, len(stubs))]


def rescue(source: str) -> Rescued | None:
    """``source`` with every top-level block that has a syntax error replaced by a raising stub.

    Each block is first compiled on its own (padded to its own line numbers), so an error that changes how
    the rest of the file tokenizes (an unterminated triple-quoted string) is blamed on its own block, not on
    every block after it; what still does not compile once assembled is cut one error at a time.

    Returns None when ``source`` compiles as it is, or when no block can be blamed: then the whole module
    fails, as without the rescue.
    """
    if _compiles(source) is None:
        return None
    lines = source.splitlines()
    broken: list[BrokenBlock] = []
    starts = _blocks(lines)
    bounds = list(zip([0] + starts, starts + [len(lines)]))
    for start, end in bounds:
        if end <= start:
            continue
        padded = "\n" * start + "\n".join(lines[start:end]) + "\n"
        error = _compiles(padded)
        if error is not None and _blame(error, lines, start, end) is not None:
            broken.append(_cut(lines, start, end, error))
    for _ in range(MAX_ROUNDS):
        error = _compiles("\n".join(lines) + "\n")
        if error is None:
            return Rescued("\n".join(lines) + "\n", tuple(sorted(broken, key=lambda b: b.line)))
        line = min(max(int(getattr(error, "lineno", None) or 1), 1), max(len(lines), 1))
        starts = _blocks(lines)
        start = max((s for s in starts if s <= line - 1), default=0)
        end = min((s for s in starts if s > line - 1), default=len(lines))
        if not lines[start:end] or all(not text.strip() for text in lines[start:end]):
            return None
        broken.append(_cut(lines, start, end, error))
    return None


def _blame(error: SyntaxError, lines: list[str], start: int, end: int) -> int | None:
    line = getattr(error, "lineno", None)
    return line if isinstance(line, int) and start < line <= end else (start + 1 if line is None else None)


def _cut(lines: list[str], start: int, end: int, error: SyntaxError) -> BrokenBlock:
    """Replace lines[start:end] by stubs (in place) and describe what was cut."""
    block = lines[start:end]
    line = getattr(error, "lineno", None) or start + 1
    line = min(max(int(line), start + 1), end)
    names = tuple(match.group(1) for text in block if (match := DEFINED.match(text)))
    message = f"{type(error).__name__}: {error.msg if getattr(error, 'msg', None) else error}"
    lines[start:end] = _stub(names, line, message, len(block))
    return BrokenBlock(names, line, start + 1, message)
