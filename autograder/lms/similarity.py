"""Similarity flags for source code across a class: near-identical modules, for a person to look at.

Flags, never penalties. Each module is tokenized and normalized by copydetect (Pygments tokens; every
variable name becomes ``V``, function names ``F``, strings ``S``; comments and whitespace dropped), so a copy
with renamed variables and rewritten comments normalizes to the same text. Fingerprints are winnowed
k-grams of that text, as in MOSS ("Winnowing: Local Algorithms for Document Fingerprinting", Schleimer,
Wilkerson and Aiken, 2003), with copydetect's winnowing and overlap code. Two changes from copydetect's
``CopyDetector``: k-grams are hashed with BLAKE2b instead of Python's ``hash()`` (salted per process), so the
same class gives the same scores on every run; and the released stub's own text (boilerplate) is removed
wherever it occurs, not only once.

A pair's similarity, for each side, is the share of that module's fingerprinted text found in the other;
a pair is flagged when the larger share reaches ``flag_threshold`` and at least ``min_overlap`` characters
of normalized text are shared (so two near-empty stubs are not "identical"). ``render_report`` writes the
class report: one row per pair above ``report_threshold``, and for each flagged pair a side-by-side diff.
Every student-controlled string in it (names, file text) is HTML-escaped; the page loads nothing.

Example:
    >>> result = compare_sources({"canvas:1": text_a, "canvas:2": text_b}, boilerplate=[stub_text])
    >>> [(pair.first, pair.second, pair.flagged) for pair in result.pairs]
    [('canvas:1', 'canvas:2', True)]
    >>> Path("similarity.html").write_text(render_report(result, {"canvas:1": text_a, "canvas:2": text_b}))
"""

from __future__ import annotations

import difflib
import hashlib
import html
import itertools
import logging
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..text import CONTROL as INVISIBLE

MAX_SOURCE_CHARACTERS = 200_000  # a graded module is a few hundred lines; longer text is not compared
MAX_DIFF_LINES = 2_000
NOISE_THRESHOLD = 25  # k: shortest shared normalized text that counts (copydetect's default)
GUARANTEE_THRESHOLD = 30  # shared text at least this long is always found (window = guarantee - k + 1)


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions compared.

    Attributes:
        first, second: the submissions' ids (``first < second``).
        similarity_first: share of ``first``'s fingerprinted text found in ``second`` (0 to 1).
        similarity_second: share of ``second``'s found in ``first``.
        overlap: characters of normalized text the two share.
        flagged: whether the pair reaches the thresholds.
    """

    first: str
    second: str
    similarity_first: float
    similarity_second: float
    overlap: int
    flagged: bool

    @property
    def similarity(self) -> float:
        """The larger of the two shares (a copy that added code of its own still shows)."""
        return max(self.similarity_first, self.similarity_second)


@dataclass
class SimilarityResult:
    """Every pair above ``report_threshold``, most similar first, and what could not be compared.

    Attributes:
        pairs: the pairs, sorted by similarity (descending) then ids.
        skipped: ``"<id>: <reason>"`` for submissions left out (too long, not text).
        settings: the thresholds used, for the report.
    """

    pairs: list[SimilarPair]
    skipped: list[str] = field(default_factory=list)
    settings: dict[str, float] = field(default_factory=dict)

    @property
    def flagged(self) -> list[SimilarPair]:
        return [pair for pair in self.pairs if pair.flagged]


@dataclass
class _Fingerprint:
    """What copydetect's ``compare_files`` reads from a ``CodeFingerprint``, computed deterministically."""

    k: int
    filtered_code: str
    offsets: np.ndarray
    hashes: set
    hash_idx: dict
    token_coverage: float


def compare_sources(sources: Mapping[str, str], *, boilerplate: Sequence[str] = (), flag_threshold: float = 0.8,
                    report_threshold: float = 0.5, min_overlap: int = 200, noise_threshold: int = NOISE_THRESHOLD,
                    guarantee_threshold: int = GUARANTEE_THRESHOLD, language: str = "python") -> SimilarityResult:
    """Compare every pair of submissions' source text.

    Args:
        sources: submission id (e.g. ``Entry.key``) -> the module's text. Never executed.
        boilerplate: texts whose fingerprints are removed from every submission (the released stub).
        flag_threshold: a pair is flagged at this similarity (0 to 1) or above...
        report_threshold: pairs below this similarity are not reported at all.
        min_overlap: ...and when it shares at least this many characters of normalized text.
        noise_threshold: k, the shortest shared normalized text that counts.
        guarantee_threshold: shared runs at least this long are always detected (>= ``noise_threshold``).
        language: the Pygments lexer name.

    Returns:
        A ``SimilarityResult``.

    Raises:
        ValueError: thresholds out of range.

    Example:
        >>> compare_sources({"a": text, "b": text}).pairs[0].similarity
        1.0
    """
    if not 0 <= report_threshold <= flag_threshold <= 1:
        raise ValueError(f"Thresholds must satisfy 0 <= report_threshold ({report_threshold}) <= flag_threshold "
                         f"({flag_threshold}) <= 1.")
    if guarantee_threshold < noise_threshold or noise_threshold < 1:
        raise ValueError(f"guarantee_threshold ({guarantee_threshold}) must be >= noise_threshold "
                         f"({noise_threshold}) >= 1.")
    from copydetect.detector import compare_files  # imports matplotlib; only when a class is compared

    window = guarantee_threshold - noise_threshold + 1
    boilerplate_hashes = np.unique(np.concatenate(
        [_kgram_hashes(_filter(text, language)[0], noise_threshold) for text in boilerplate] or
        [np.array([], dtype=np.int64)]))
    fingerprints: dict[str, _Fingerprint] = {}
    skipped = []
    for identifier in sorted(sources):
        text = sources[identifier]
        if not isinstance(text, str):
            skipped.append(f"{identifier}: not text")
            continue
        if len(text) > MAX_SOURCE_CHARACTERS:
            skipped.append(f"{identifier}: {len(text):,} characters, more than the {MAX_SOURCE_CHARACTERS:,} compared")
            continue
        fingerprints[identifier] = _fingerprint(text, noise_threshold, window, boilerplate_hashes, language)
    pairs = []
    for first, second in itertools.combinations(sorted(fingerprints), 2):
        overlap, (share_first, share_second), _ = compare_files(fingerprints[first], fingerprints[second])
        share_first, share_second = float(min(1.0, share_first)), float(min(1.0, share_second))
        if max(share_first, share_second) < report_threshold:
            continue
        flagged = max(share_first, share_second) >= flag_threshold and int(overlap) >= min_overlap
        pairs.append(SimilarPair(first, second, round(share_first, 4), round(share_second, 4), int(overlap), flagged))
    pairs.sort(key=lambda pair: (-pair.similarity, pair.first, pair.second))
    settings = {"flag_threshold": flag_threshold, "report_threshold": report_threshold, "min_overlap": min_overlap,
                "noise_threshold": noise_threshold, "guarantee_threshold": guarantee_threshold}
    return SimilarityResult(pairs, skipped, settings)


def render_report(result: SimilarityResult, sources: Mapping[str, str], *, labels: Mapping[str, str] | None = None,
                  boilerplate: Sequence[str] = (), title: str = "Similarity report") -> str:
    """The class similarity report as one self-contained HTML page (all student text escaped).

    Args:
        result: from ``compare_sources``.
        sources: the same texts, for the side-by-side diffs.
        labels: submission id -> a name to show (e.g. the display name); ids are shown otherwise.
        boilerplate: the released stub's text; runs of identical lines that are the stub's own are folded
            into one row, so what the two students share beyond the stub stands out.
        title: the page title.

    Returns:
        The HTML text.

    Example:
        >>> page = render_report(result, sources, labels={"canvas:1": "Doe, Jane"})
        >>> "<script" in page
        False
    """
    labels = labels or {}
    stub_lines = {line.strip() for text in boilerplate for line in text.splitlines()}

    def name(identifier: str) -> str:
        label = labels.get(identifier)
        return _visible(f"{label} ({identifier})" if label else identifier)

    settings = ", ".join(f"{html.escape(key)} = {value}" for key, value in result.settings.items())
    rows = "\n".join(
        f"<tr class=\"{'flagged' if pair.flagged else ''}\"><td>{name(pair.first)}</td><td>{name(pair.second)}</td>"
        f"<td>{pair.similarity_first:.0%}</td><td>{pair.similarity_second:.0%}</td><td>{pair.overlap}</td>"
        f"<td>{'flagged' if pair.flagged else ''}</td></tr>" for pair in result.pairs) or \
        "<tr><td colspan=\"6\">No pair reaches the report threshold.</td></tr>"
    skipped = "".join(f"<li>{_visible(item)}</li>" for item in result.skipped)
    details = "\n".join(
        f"<section><h2>{name(pair.first)} and {name(pair.second)}: {pair.similarity:.0%}</h2>\n"
        f"{_side_by_side(sources.get(pair.first, ''), sources.get(pair.second, ''), name(pair.first), name(pair.second), stub_lines)}"
        "</section>" for pair in result.flagged)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        "<p>Flags for a person to look at, not penalties. Similarity: share of each module's normalized text "
        "(names, strings and comments abstracted; the released stub removed) found in the other.</p>\n"
        f"<p class=\"settings\">{settings}</p>\n"
        "<table class=\"pairs\"><thead><tr><th>first</th><th>second</th><th>of first</th><th>of second</th>"
        f"<th>shared characters</th><th></th></tr></thead><tbody>\n{rows}\n</tbody></table>\n"
        + (f"<h2>Not compared</h2><ul>{skipped}</ul>\n" if skipped else "")
        + f"{details}\n</body></html>\n")


def _filter(text: str, language: str) -> tuple[str, np.ndarray]:
    from copydetect.utils import filter_code

    logger = logging.getLogger()
    previous = logger.level
    logger.setLevel(logging.ERROR)  # copydetect logs a warning per file it cannot tokenize
    try:
        return filter_code(text, "submission.py", language)
    finally:
        logger.setLevel(previous)


def _kgram_hashes(filtered: str, k: int) -> np.ndarray:
    """Every k-gram (of characters, as copydetect takes them) hashed with BLAKE2b to a signed 64-bit integer.

    Python's ``hash()``, which copydetect uses, is salted per process; BLAKE2b gives the same fingerprints,
    and so the same scores, on every run.
    """
    if len(filtered) < k:
        return np.array([], dtype=np.int64)
    return np.array([int.from_bytes(hashlib.blake2b(filtered[i:i + k].encode("utf-8", "surrogatepass"),
                                                    digest_size=8).digest(), "little", signed=True)
                     for i in range(len(filtered) - k + 1)], dtype=np.int64)


def _fingerprint(text: str, k: int, window: int, boilerplate: np.ndarray, language: str) -> _Fingerprint:
    from copydetect.utils import get_token_coverage, winnow

    filtered, offsets = _filter(text, language)
    hashes = _kgram_hashes(filtered, k)
    if len(hashes):
        selected, indexes = winnow(hashes, window_size=window, remove_duplicates=False)
        keep = ~np.isin(selected, boilerplate)
        selected, indexes = selected[keep], indexes[keep]
    else:
        selected, indexes = hashes, np.array([], dtype=np.int64)
    hash_idx: dict[int, list[int]] = {}
    for value, index in zip(selected.tolist(), indexes.tolist()):
        hash_idx.setdefault(value, []).append(index)
    coverage = get_token_coverage(hash_idx, k, len(filtered))
    return _Fingerprint(k, filtered, offsets, set(hash_idx), hash_idx, coverage)


def _side_by_side(first: str, second: str, first_name: str, second_name: str, stub_lines: set[str]) -> str:
    """A line-aligned diff of two texts as an HTML table; every line escaped, runs of the stub folded."""
    left, right = first.splitlines()[:MAX_DIFF_LINES], second.splitlines()[:MAX_DIFF_LINES]
    rows: list[str] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for tag, left_start, left_end, right_start, right_end in matcher.get_opcodes():
        if tag == "equal":
            run: list[str] = []  # a run of equal lines that are the stub's own, as table rows
            for offset in range(left_end - left_start):
                line = left[left_start + offset]
                if line.strip() in stub_lines:
                    run.append(f"<tr class=\"stub\">{_diff_cell(line, left_start + offset + 1)}"
                                f"{_diff_cell(right[right_start + offset], right_start + offset + 1)}</tr>")
                    continue
                _fold(rows, run)
                run = []
                rows.append(f"<tr class=\"same\">{_diff_cell(line, left_start + offset + 1)}"
                            f"{_diff_cell(right[right_start + offset], right_start + offset + 1)}</tr>")
            _fold(rows, run)
            continue
        for offset in range(max(left_end - left_start, right_end - right_start)):
            left_line = left[left_start + offset] if left_start + offset < left_end else None
            right_line = right[right_start + offset] if right_start + offset < right_end else None
            rows.append(f"<tr class=\"changed\">{_diff_cell(left_line, left_start + offset + 1)}"
                        f"{_diff_cell(right_line, right_start + offset + 1)}</tr>")
    cut = "" if len(first.splitlines()) <= MAX_DIFF_LINES and len(second.splitlines()) <= MAX_DIFF_LINES else \
        f"<p>Only the first {MAX_DIFF_LINES} lines are shown.</p>"
    return (f"{cut}<p class=\"legend\"><span class=\"same\">identical lines</span> "
            "<span class=\"changed\">lines that differ</span></p>"
            f"<table class=\"diff\"><colgroup><col class=\"number\"><col><col class=\"number\"><col></colgroup>"
            f"<thead><tr><th colspan=\"2\">{first_name}</th><th colspan=\"2\">{second_name}</th></tr></thead>"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n")


def _fold(rows: list[str], run: list[str]) -> None:
    """Fold a run of identical stub lines into one row; a run of one or two stays (a blank line, a ``return``)."""
    if len(run) <= 2:
        rows.extend(run)
    else:
        rows.append(f"<tr class=\"stub\"><td colspan=\"4\">{len(run)} identical lines of the released stub</td></tr>")


def _diff_cell(line: str | None, number: int) -> str:
    if line is None:
        return "<td class=\"number\"></td><td class=\"code empty\"></td>"
    return f"<td class=\"number\">{number}</td><td class=\"code\">{_visible(line)}</td>"


def _visible(text: str) -> str:
    """``text`` HTML-escaped, with invisible and reordering characters shown as ``<U+202E>`` ("Trojan
    Source": a bidirectional override can make a copied line read differently than it runs)."""
    return INVISIBLE.sub(lambda match: f"&lt;U+{ord(match.group(0)):04X}&gt;", html.escape(text, quote=True))


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; vertical-align: top; text-align: left; }
tr.flagged td { background: #fde2e2; }
table.diff { table-layout: fixed; width: 100%; }
table.diff col.number { width: 3.5em; }
table.diff td.code { font-family: ui-monospace, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
table.diff td.number { color: #888; text-align: right; }
table.diff tr.same td.code, .legend .same { background: #fff4c2; }
table.diff tr.changed td.code, .legend .changed { background: #f4f4f4; }
table.diff tr.stub td { color: #888; font-style: italic; }
.settings { color: #555; }
"""
