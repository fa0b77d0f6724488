"""Copying across a class, as flags for a TA to look at (never a change to a grade).

Two signals, both computed on the trusted side from plain files:

* **models**: each graded submission's ``model_fingerprint`` (``lms.weights.weights_fingerprint`` of the weight
  arrays the model-describing probe recorded as ``.npy``, read without pickle) and ``model_sha256`` (the staged
  file's bytes), stored with its report in the gradebook; equal fingerprints across students are flagged;
* **source**: the staged modules compared pairwise with copydetect's winnowing (``lms.similarity``), the
  released stub of each version subtracted first, so filling in the same stub is not similarity.

``write_similarity`` is called with the class files (``grade.write_class_files``): the class as the gradebook
has it, whatever one run graded, written to ``similarity.csv`` and ``similarity.html``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from .report import SubmissionReport

MAX_RESULT_BYTES = 4 * 2**20
MAX_WEIGHTS_BYTES = 512 * 2**20
MAX_MODULE_CHARACTERS = 200_000


@dataclass
class ClassSimilarity:
    """Who looks like whom: ``similar[key]`` lists the other keys, ``pairs`` the rows of similarity.csv."""
    pairs: list[dict] = field(default_factory=list)
    similar: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    source_pairs: list = field(default_factory=list, repr=False)  # lms.similarity.SimilarPair, for the page
    sources: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def flagged(self) -> list[dict]:
        return [pair for pair in self.pairs if pair["flagged"]]


def model_identity(artifacts_dir: Path, staged_model: Path | None, probes: tuple[str, ...]) -> dict[str, str]:
    """``{"model_fingerprint", "model_sha256"}`` of one submission (empty strings when there is no model).

    ``probes`` are the probes that describe the submitted model (declared ``only_with_model``); the first
    whose record lists its layers' weight arrays gives the fingerprint."""
    from .lms.weights import weights_fingerprint
    identity = {"model_fingerprint": "", "model_sha256": ""}
    if staged_model is not None and staged_model.is_file() and not staged_model.is_symlink():
        digest = hashlib.sha256()
        with open(staged_model, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        identity["model_sha256"] = digest.hexdigest()
    for probe in probes:
        arrays = _weight_arrays(Path(artifacts_dir) / probe)
        if arrays:
            try:
                identity["model_fingerprint"] = weights_fingerprint(arrays)
            except (TypeError, ValueError):
                pass
            break
    return identity


def _weight_arrays(folder: Path) -> list:
    import numpy as np
    result = folder / "result.json"
    if not result.is_file() or result.is_symlink() or result.stat().st_size > MAX_RESULT_BYTES:
        return []
    try:
        payload = json.loads(result.read_bytes())
        layers = payload["record"]["model"]["layers"]
        names = [name for layer in layers for name in layer.get("weights", [])]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, UnicodeDecodeError):
        return []
    arrays, total = [], 0
    for name in names:
        path = folder / f"{name}.npy"
        if not isinstance(name, str) or "/" in name or not path.is_file() or path.is_symlink():
            return []
        total += path.stat().st_size
        if total > MAX_WEIGHTS_BYTES:
            return []
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return []
        if array.dtype.kind not in "biuf":
            return []
        arrays.append(array)
    return arrays


def compare_class(submissions_dir: Path, reports: list[SubmissionReport], *, modules: dict[str, str],
                  stubs: dict[str, str]) -> ClassSimilarity:
    """Compare the graded submissions of a class.

    Args:
        submissions_dir: the output folder's submissions (staged modules are read from ``<name>/submission/``).
        reports: the latest report of every submission.
        modules: version -> the graded module's file name.
        stubs: version -> the released stub's text (subtracted before comparing sources).
    """
    from .lms.similarity import compare_sources
    graded = [report for report in reports if report.graded]
    result = ClassSimilarity()
    by_model: dict[str, list[str]] = {}
    for report in graded:  # by weights; a model the grader did not load (refused, broken) by its bytes
        identity = report.model_fingerprint or (f"file:{report.model_sha256}" if report.model_sha256 else "")
        if identity:
            by_model.setdefault(identity, []).append(report.key)
    for fingerprint, keys in sorted(by_model.items()):
        keys = sorted(keys)
        for index, first in enumerate(keys):
            for second in keys[index + 1:]:
                result.pairs.append({"first": first, "second": second, "kind": "model",
                                     "similarity": 1.0, "detail": "the same trained weights", "flagged": True})
    sources: dict[str, str] = {}
    for report in graded:
        module = modules.get(report.version)
        path = Path(submissions_dir) / report.name / "submission" / (module or "")
        if not module or not path.is_file() or path.is_symlink():
            continue
        text = path.read_bytes()[:MAX_MODULE_CHARACTERS * 4].decode("utf-8", "replace")
        sources[report.key] = text
    by_version: dict[str, dict[str, str]] = {}
    for report in graded:
        if report.key in sources:
            by_version.setdefault(report.version, {})[report.key] = sources[report.key]
    for version, texts in sorted(by_version.items()):
        if len(texts) < 2:
            continue
        compared = compare_sources(texts, boilerplate=[stubs[version]] if version in stubs else [])
        result.skipped += compared.skipped
        result.source_pairs += compared.pairs
        for pair in compared.pairs:
            result.pairs.append({"first": pair.first, "second": pair.second, "kind": "source",
                                 "similarity": pair.similarity,
                                 "detail": f"{pair.overlap} characters of shared code beyond the stub",
                                 "flagged": pair.flagged})
    for pair in result.flagged:
        result.similar.setdefault(pair["first"], []).append(pair["second"])
        result.similar.setdefault(pair["second"], []).append(pair["first"])
    result.similar = {key: sorted(set(keys)) for key, keys in result.similar.items()}
    result.sources = sources
    return result


def similarity_csv(result: ClassSimilarity, names: dict[str, str]) -> str:
    from .report import _csv_cell
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["first", "first_name", "second", "second_name", "kind", "similarity", "flagged", "detail"])
    for pair in result.pairs:
        writer.writerow([_csv_cell(str(cell)) for cell in (
            pair["first"], names.get(pair["first"], ""), pair["second"], names.get(pair["second"], ""),
            pair["kind"], f"{pair['similarity']:.3f}", "yes" if pair["flagged"] else "no", pair["detail"])])
    return buffer.getvalue()


def similarity_html(result: ClassSimilarity, names: dict[str, str], stubs: dict[str, str]) -> str:
    """The source pairs as lms.similarity's report (escaped, side by side), the identical models listed above."""
    import html
    from .lms.similarity import SimilarityResult, render_report
    pairs = sorted(result.source_pairs, key=lambda pair: (-pair.similarity, pair.first, pair.second))
    page = render_report(SimilarityResult(pairs, result.skipped, {}), result.sources, labels=names,
                         boilerplate=list(stubs.values()), title="Similarity report (flags for a TA, not penalties)")
    models = [p for p in result.pairs if p["kind"] == "model"]
    if models:
        rows = "".join(f"<li>{html.escape(names.get(p['first'], p['first']))} and "
                       f"{html.escape(names.get(p['second'], p['second']))}: the same trained weights</li>"
                       for p in models)
        page = page.replace("<body>", f"<body>\n<h2>Identical trained models</h2>\n<ul>{rows}</ul>", 1)
    return page
