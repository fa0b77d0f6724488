"""Scores -> what people read: Gradescope's results.json, the student's feedback (Markdown and HTML),
the class summary CSVs and the terminal table.

Everything here is rendered from structured outcomes, and every string that can hold student text goes
through ``text`` (``markdown``, ``html_text``, ``plain``): whatever a submission managed to put into a
message, nothing of it renders as a link, an image, HTML or a terminal escape. One cause that fails
several checks (a module that does not import, say) is explained once, with the checks it cost.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .text import html_text, markdown, one_line, plain

FLAG_HELP = {
    "timeout": "a function hit its wall-clock limit",
    "limit_hit": "a memory, CPU, file-size or process limit was hit",
    "early_exit": "student code exited the process (sys.exit / os._exit)",
    "abnormal_exit": "a check's process crashed",
    "sandbox_died": "the sandbox stopped before all checks ran",
    "sandbox_wall_clock": "the whole sandbox hit its time limit and was killed",
    "sandbox_exit": "the sandbox ended before sending every result",
    "protocol_violation": "the sandbox, or the student's process to its recorder, sent malformed or forged frames",
    "stream_error": "the stream from the sandbox broke off",
    "artifacts_too_large": "the sandbox sent more data than allowed",
    "import_error": "the graded module does not import",
    "syntax_error": "a function has a syntax error; the functions around it were graded",
    "missing_module": "no graded module (hello_mnist.py, ...) in the submission",
    "no_model": "no model.keras in the submission (an LMS download that dropped files?)",
    "renamed_module": "the module had another name and was graded anyway",
    "notebook_instead_of_module": "a notebook was submitted instead of the graded module",
    "not_utf8": "the graded module is not UTF-8",
    "oversized_file": "a file above the size limit was ignored",
    "symlink": "a link instead of a file was ignored",
    "unreadable": "the submission could not be read",
    "name_collision": "two sources had the same name; each was graded under its own source",
    "corrupt_zip": "the zip is damaged or empty",
    "zip_path_traversal": "the zip had members with ../ or absolute paths (ignored)",
    "zip_symlink": "the zip had symbolic links (ignored)",
    "zip_bomb": "a zip member inflated beyond the limit (ignored)",
    "unsafe_model": "model.keras was refused (custom code, Lambda, too many files)",
    "corrupt_model": "model.keras is damaged",
    "oversized_model": "model.keras is above the size limit",
    "legacy_h5": "model.keras is a legacy HDF5 file",
    "suspicious_accuracy": "the submitted model is implausibly accurate for an MLP",
    "refused_object": "a function returned a model the grader does not load (a custom class or custom code)",
    "model_inconsistent": "a model's outputs disagree with its exported layers (forged export?)",
    "forged_output": "the code writes or prints something that looks like grading results (ignored)",
    "suspicious_code": "the source calls things a graded module does not need (subprocess, os._exit, ...)",
    "grader_error": "an internal grader error",
    "not_graded": "the grader failed twice on this submission: no grade recorded, run again (see .grader/errors/)",
    "version_mismatch": "the module is from another assignment version than the one it was graded against",
    "version_assumed": "nothing in the submission says its version; graded against the default one",
    "unknown_version": "the module names an assignment version this grader does not know",
}

NOT_GRADED_TO_STUDENT = ("The autograder could not grade this submission because of a problem on the grader's side; "
                         "this is not your fault and no grade was recorded. Your TA has the details and will grade "
                         "it again.")


@dataclass
class SubmissionReport:
    """One submission's outcome. ``name`` is its folder in the output folder; ``key`` its identity."""
    name: str
    total: float
    max_total: float
    tests: list[dict]
    flags: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    execution_time: float = 0.0
    digest: str = ""
    key: str = ""
    display_name: str = ""
    source: str = ""
    status: str = "graded"       # graded | not_graded
    failure: str = ""            # not graded: why, for the TA
    details: str = ""            # not graded: the file with the details, relative to the output folder
    functions: tuple[str, ...] = ()
    version: str = ""            # the assignment version it was graded against
    title: str = ""              # the assignment's name, heading the feedback
    manifest_hash: str = ""      # of that version's manifest and rubric
    lms: dict = field(default_factory=dict)  # the student as the LMS download gave them (lms/grading.py)
    model_fingerprint: str = ""  # of the submitted model's weights (class_similarity.py), for copy flags
    model_sha256: str = ""       # of the submitted model file's bytes
    isolation: str = ""          # the sandbox tier it was graded in (sandbox/tiers.py): namespaces | container | none

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SubmissionReport":
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["functions"] = tuple(values.get("functions") or ())
        return cls(**values)

    @property
    def graded(self) -> bool:
        return self.status == "graded"

    @property
    def shown_name(self) -> str:
        return self.display_name or self.name

    def by_function(self, functions: tuple[str, ...] | None = None) -> dict[str, tuple[float, float]]:
        names = functions or self.functions
        scores: dict[str, list[float]] = {name: [0.0, 0.0] for name in names}
        for test in self.tests:
            entry = scores.setdefault(test["function"], [0.0, 0.0])
            entry[0] += test["score"]
            entry[1] += test["max_score"]
        return {name: (round(s, 2), round(m, 2)) for name, (s, m) in scores.items()}


def build_report(name: str, tests: list[dict], *, flags, problems, execution_time, digest, key: str = "",
                 display_name: str = "", source: str = "", functions: tuple[str, ...] = (), version: str = "",
                 title: str = "", manifest_hash: str = "", lms: dict | None = None,
                 model_fingerprint: str = "", model_sha256: str = "", isolation: str = "") -> SubmissionReport:
    total = round(sum(t["score"] for t in tests), 2)
    max_total = round(sum(t["max_score"] for t in tests), 2)
    all_flags = sorted(set(flags) | {flag for t in tests for flag in t.get("flags", [])})
    return SubmissionReport(name, total, max_total, tests, all_flags, list(problems), round(execution_time, 1), digest,
                            key=key or name, display_name=display_name or name, source=source,
                            functions=tuple(functions), version=version, title=title, manifest_hash=manifest_hash,
                            lms=dict(lms or {}), model_fingerprint=model_fingerprint, model_sha256=model_sha256,
                            isolation=isolation)


def not_graded_report(name: str, *, max_total: float, failure: str, details: str, digest: str, key: str,
                      display_name: str, source: str, flags=(), functions: tuple[str, ...] = (),
                      execution_time: float = 0.0, version: str = "", title: str = "",
                      lms: dict | None = None) -> SubmissionReport:
    """A submission the grader failed on: no score, the student is not blamed, the TA is told where to look."""
    return SubmissionReport(name, 0.0, max_total, [], sorted(set(flags) | {"not_graded"}), [], round(execution_time, 1),
                            digest, key=key, display_name=display_name, source=source, status="not_graded",
                            failure=failure, details=details, functions=tuple(functions), version=version,
                            title=title, lms=dict(lms or {}))


def results_json(report: SubmissionReport) -> dict:
    """Gradescope's autograder results format (tests with name, score, max_score, status, output, visibility).

    Every text field is plain text: test outputs quote the student's own exception messages and code.
    """
    if not report.graded:
        return {"score": 0.0, "execution_time": int(round(report.execution_time)), "output": NOT_GRADED_TO_STUDENT,
                "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": [],
                "extra_data": {"not_graded": True, "reason": plain(report.failure, limit=2000), "flags": report.flags,
                               "digest": report.digest, "key": plain(report.key), "version": report.version}}
    return {
        "score": report.total,
        "execution_time": int(round(report.execution_time)),
        "output": summary_text(report),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [{
            "name": plain(test["name"]),
            "name_format": "text",
            "score": test["score"],
            "max_score": test["max_score"],
            "status": test["status"],
            "output": plain(test["output"] or ""),
            "output_format": "text",
            "tags": [test["function"]],
            "visibility": "visible",
        } for test in report.tests],
        "extra_data": {"flags": report.flags, "digest": report.digest, "max_score": report.max_total,
                       "key": plain(report.key), "version": report.version, "manifest_hash": report.manifest_hash,
                       "isolation": report.isolation},
    }


def summary_text(report: SubmissionReport) -> str:
    lines = [f"Score: {report.total:g} / {report.max_total:g}"]
    lines += [f"- {plain(problem)}" for problem in report.problems]
    return "\n".join(lines)


def _causes(failed: list[dict]) -> list[tuple[str, list[dict]]]:
    """Failed checks grouped by their explanation, in rubric order: one cause, one paragraph."""
    groups: dict[str, list[dict]] = {}
    for test in failed:
        groups.setdefault(test["output"] or "This check failed.", []).append(test)
    return list(groups.items())


def feedback_markdown(report: SubmissionReport) -> str:
    title = f"{report.title or 'assignment'} {report.version}".strip()
    lines = [f"# {markdown(title)}: feedback for {markdown(report.shown_name)}", ""]
    if not report.graded:
        return "\n".join(lines + [markdown(NOT_GRADED_TO_STUDENT), ""])
    failed = [t for t in report.tests if t["status"] != "passed"]
    passed = [t for t in report.tests if t["status"] == "passed"]
    lines += [f"**Score: {report.total:g} / {report.max_total:g}**", "", "| function | points |", "|---|---|"]
    for function, (score, maximum) in report.by_function().items():
        if maximum:
            lines.append(f"| `{function}` | {score:g} / {maximum:g} |")
    if report.problems:
        lines += ["", "## About your submission", ""] + [f"- {markdown(p)}" for p in report.problems]
    if failed:
        lines += ["", "## What to fix", ""]
        for cause, tests in _causes(failed):
            if len(tests) == 1:
                test = tests[0]
                lines += [f"### {markdown(test['name'])} ({test['score']:g} / {test['max_score']:g})", ""]
                if test.get("question"):
                    lines += [f"*{markdown(test['question'])}*", ""]
                lines += [markdown(cause), ""]
            else:
                lost = sum(t["max_score"] - t["score"] for t in tests)
                lines += [f"### {len(tests)} checks, one cause ({lost:g} points)", "", markdown(cause), "",
                          "Checks affected:", ""]
                lines += [f"- {markdown(t['name'])} ({t['score']:g} / {t['max_score']:g})" for t in tests]
                lines.append("")
    if passed:
        lines += ["", "## Passed", ""]
        for test in passed:
            note = f": {markdown(test['output'])}" if test["output"] else ""
            lines.append(f"- {markdown(test['name'])} ({test['max_score']:g} / {test['max_score']:g}){note}")
    return "\n".join(lines).rstrip() + "\n"


def feedback_html(report: SubmissionReport) -> str:
    e = html_text
    title = f"{report.title or 'assignment'} {report.version}".strip()
    head = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)} feedback: {e(report.shown_name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.45}}
table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:.2rem .6rem}}
section{{border-left:.3rem solid;padding:.1rem .8rem;margin:.8rem 0}}.pass{{border-color:#2a7}}.fail{{border-color:#c33}}
h3{{font-size:1rem;margin:.4rem 0}}h3 span{{float:right;font-weight:normal}}.q{{font-style:italic;color:#555}}</style>
</head><body><h1>{e(title)}: feedback for {e(report.shown_name)}</h1>
"""
    if not report.graded:
        return head + f"<p>{e(NOT_GRADED_TO_STUDENT)}</p></body></html>\n"
    rows = "".join(f"<tr><td><code>{e(f)}</code></td><td>{s:g} / {m:g}</td></tr>"
                   for f, (s, m) in report.by_function().items() if m)
    problems = "".join(f"<li>{e(p)}</li>" for p in report.problems)
    sections = []
    failed = [t for t in report.tests if t["status"] != "passed"]
    for cause, tests in _causes(failed):
        if len(tests) == 1:
            test = tests[0]
            question = f"<p class='q'>{e(test['question'])}</p>" if test.get("question") else ""
            sections.append(f"<section class='fail'><h3>&#10007; {e(test['name'])} <span>{test['score']:g} / "
                            f"{test['max_score']:g}</span></h3>{question}<p>{e(cause)}</p></section>")
        else:
            items = "".join(f"<li>{e(t['name'])} ({t['score']:g} / {t['max_score']:g})</li>" for t in tests)
            sections.append(f"<section class='fail'><h3>&#10007; {len(tests)} checks, one cause</h3><p>{e(cause)}</p>"
                            f"<ul>{items}</ul></section>")
    for test in report.tests:
        if test["status"] == "passed":
            output = f"<p>{e(test['output'])}</p>" if test["output"] else ""
            sections.append(f"<section class='pass'><h3>&#10003; {e(test['name'])} <span>{test['max_score']:g} / "
                            f"{test['max_score']:g}</span></h3>{output}</section>")
    return head + (f"<p><strong>Score: {report.total:g} / {report.max_total:g}</strong></p>\n<table>{rows}</table>"
                   f"{f'<h2>About your submission</h2><ul>{problems}</ul>' if problems else ''}"
                   f"<h2>Checks</h2>{''.join(sections)}</body></html>\n")


def write_atomic(path: Path, content: str) -> None:
    """Write via a temporary file and rename, so a crash or a full disk never leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            temporary.unlink()
        except OSError:
            pass
        raise


def write_submission_files(directory: Path, report: SubmissionReport) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / "feedback.md", feedback_markdown(report))
    write_atomic(directory / "feedback.html", feedback_html(report))
    # results.json last: its presence marks the submission's files as complete.
    write_atomic(directory / "results.json", json.dumps(results_json(report), indent=1))


def _csv_cell(value) -> str:
    """A cell a spreadsheet will not run as a formula and a terminal will not interpret."""
    text_value = plain(value)
    return "'" + text_value if text_value[:1] in ("=", "+", "-", "@") else text_value


def summary_csv(reports: list[SubmissionReport], functions: tuple[str, ...],
                similar: dict[str, list[str]] | None = None) -> str:
    """The class summary; ``similar`` (class_similarity.py) fills the ``similar_to`` column: the keys of the
    submissions whose code or model looks copied from or by this one (a flag to look at, not a penalty)."""
    similar = similar or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "key", "folder", "source", "version", *functions, "total", "max_total", "status",
                     "flags", "similar_to", "isolation"])
    for report in sorted(reports, key=lambda r: r.key):
        scores = report.by_function(functions)
        cells = [report.shown_name, report.key, report.name, report.source, report.version]
        if report.graded:
            # A function another version has and this one does not: empty, not 0.
            cells += [f"{scores[f][0]:g}" if scores[f][1] else "" for f in functions] + [f"{report.total:g}"]
        else:
            cells += [""] * len(functions) + [""]
        cells += [f"{report.max_total:g}", report.status, " ".join(report.flags), " ".join(similar.get(report.key, [])),
                  report.isolation]
        writer.writerow([_csv_cell(cell) for cell in cells])
    return buffer.getvalue()


def pass_rates_csv(reports: list[SubmissionReport]) -> str:
    passed: dict[str, int] = defaultdict(int)
    seen: dict[str, int] = defaultdict(int)
    names: list[str] = []
    for report in reports:
        if not report.graded:
            continue
        for test in report.tests:
            if test["name"] not in seen:
                names.append(test["name"])
            seen[test["name"]] += 1
            passed[test["name"]] += test["status"] == "passed"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["test", "passed", "graded", "pass_rate"])
    for name in names:
        writer.writerow([name, passed[name], seen[name], f"{passed[name] / seen[name]:.3f}"])
    return buffer.getvalue()


def class_table(reports: list[SubmissionReport], *, functions: tuple[str, ...], labels: dict[str, str]) -> str:
    """The final terminal table: one line per submission, points per function, total and flags; then a legend
    of the column labels and of the flags that occur."""
    names = {id(r): one_line(r.shown_name, limit=28) for r in reports}
    width = max([10] + [len(name) for name in names.values()])
    columns = [labels.get(f, f[:5]) for f in functions]
    cell = max([5] + [len(c) for c in columns])
    header = f"{'submission':<{width}} " + " ".join(f"{c:>{cell}}" for c in columns) + "  total  flags"
    lines = [header, "-" * len(header)]
    for report in sorted(reports, key=lambda r: r.key):
        if not report.graded:
            lines.append(f"{names[id(report)]:<{width}} {'NOT GRADED: ' + one_line(report.failure, limit=70)}"
                         f"  (details: {report.details})")
            continue
        scores = report.by_function(functions)
        cells = " ".join(f"{scores[f][0]:>{cell}g}" for f in functions)
        lines.append(f"{names[id(report)]:<{width}} {cells}  {report.total:>5g}  {plain(' '.join(report.flags))}")
    graded = [r for r in reports if r.graded]
    if graded:
        maxima = graded[0].by_function(functions)
        lines.append(f"{'(max)':<{width}} " + " ".join(f"{maxima[f][1]:>{cell}g}" for f in functions)
                     + f"  {graded[0].max_total:>5g}")
    lines += ["", "columns: " + ", ".join(f"{labels.get(f, f[:5])} = {f}" for f in functions)]
    present = sorted({flag.split(":")[0] for report in reports for flag in report.flags})
    if present:
        lines += ["", "flags (for the TA; not penalties):"]
        lines += [f"  {flag}: {FLAG_HELP.get(flag, '')}" for flag in present]
    return "\n".join(lines)
