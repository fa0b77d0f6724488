"""Scores -> what people read: Gradescope's results.json, the student's feedback (Markdown and HTML),
the class summary CSVs and the terminal table.

Everything here is rendered from the structured outcomes; student-controlled text (exception
messages, file names) is escaped in HTML and defanged in Markdown.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .rubric import FUNCTIONS

FLAG_HELP = {
    "timeout": "a function hit its wall-clock limit",
    "limit_hit": "a memory, CPU, file-size or process limit was hit",
    "early_exit": "student code exited the process (sys.exit / os._exit)",
    "abnormal_exit": "a probe process crashed",
    "sandbox_died": "the sandbox stopped before all checks ran",
    "sandbox_wall_clock": "the whole sandbox hit its time limit and was killed",
    "sandbox_exit": "the sandbox ended before sending every result",
    "protocol_violation": "the sandbox sent malformed or forged frames",
    "stream_error": "the stream from the sandbox broke off",
    "artifacts_too_large": "the sandbox sent more data than allowed",
    "import_error": "hello_mnist.py does not import",
    "missing_module": "no hello_mnist.py in the submission",
    "renamed_module": "the module had another name and was graded anyway",
    "notebook_instead_of_module": "a notebook was submitted instead of hello_mnist.py",
    "not_utf8": "hello_mnist.py is not UTF-8",
    "oversized_file": "a file above the size limit was ignored",
    "symlink": "a link instead of a file was ignored",
    "unreadable": "the submission could not be read",
    "corrupt_zip": "the zip is damaged or empty",
    "zip_path_traversal": "the zip had members with ../ or absolute paths (ignored)",
    "zip_symlink": "the zip had symbolic links (ignored)",
    "zip_bomb": "a zip member inflated beyond the limit (ignored)",
    "unsafe_model": "model.keras was refused (custom code, Lambda, bad archive)",
    "corrupt_model": "model.keras is damaged",
    "oversized_model": "model.keras is above the size limit",
    "legacy_h5": "model.keras is a legacy HDF5 file",
    "suspicious_accuracy": "the submitted model is implausibly accurate for an MLP",
    "model_inconsistent": "a model's outputs disagree with its exported layers (forged export?)",
    "forged_output": "the code writes or prints something that looks like grading results (ignored)",
    "suspicious_code": "the source calls things a graded module does not need (subprocess, os._exit, ...)",
    "grader_error": "an internal grader error (see out/.grader/work/<submission>/grader-errors.txt)",
}


@dataclass
class SubmissionReport:
    name: str
    total: float
    max_total: float
    tests: list[dict]
    flags: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    execution_time: float = 0.0
    digest: str = ""

    def by_function(self) -> dict[str, tuple[float, float]]:
        scores: dict[str, list[float]] = {name: [0.0, 0.0] for name in FUNCTIONS}
        for test in self.tests:
            entry = scores.setdefault(test["function"], [0.0, 0.0])
            entry[0] += test["score"]
            entry[1] += test["max_score"]
        return {name: (round(s, 2), round(m, 2)) for name, (s, m) in scores.items()}


def build_report(name: str, tests: list[dict], *, flags, problems, execution_time, digest) -> SubmissionReport:
    total = round(sum(t["score"] for t in tests), 2)
    max_total = round(sum(t["max_score"] for t in tests), 2)
    all_flags = sorted(set(flags) | {flag for t in tests for flag in t.get("flags", [])})
    return SubmissionReport(name, total, max_total, tests, all_flags, list(problems), round(execution_time, 1), digest)


def _md_text(text: str) -> str:
    return str(text).replace("<", "&lt;")


def results_json(report: SubmissionReport) -> dict:
    """Gradescope's autograder results format (tests with name, score, max_score, status, output, visibility)."""
    return {
        "score": report.total,
        "execution_time": int(round(report.execution_time)),
        "output": summary_text(report),
        # Plain text: test outputs quote the student's own exception messages and code, which must not
        # render on Gradescope as links, images or headings.
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [{
            "name": test["name"],
            "name_format": "text",
            "score": test["score"],
            "max_score": test["max_score"],
            "status": test["status"],
            "output": test["output"] or "",
            "output_format": "text",
            "tags": [test["function"]],
            "visibility": "visible",
        } for test in report.tests],
        "extra_data": {"flags": report.flags, "digest": report.digest, "max_score": report.max_total},
    }


def summary_text(report: SubmissionReport) -> str:
    lines = [f"Score: {report.total:g} / {report.max_total:g}"]
    lines += [f"- {problem}" for problem in report.problems]
    return "\n".join(lines)


def feedback_markdown(report: SubmissionReport) -> str:
    failed = [t for t in report.tests if t["status"] != "passed"]
    passed = [t for t in report.tests if t["status"] == "passed"]
    lines = [f"# hello_mnist: feedback for {_md_text(report.name)}", "",
             f"**Score: {report.total:g} / {report.max_total:g}**", "",
             "| function | points |", "|---|---|"]
    for function, (score, maximum) in report.by_function().items():
        if maximum:
            lines.append(f"| `{function}` | {score:g} / {maximum:g} |")
    if report.problems:
        lines += ["", "## About your submission", ""] + [f"- {_md_text(p)}" for p in report.problems]
    if failed:
        lines += ["", "## What to fix", ""]
        for test in failed:
            lines += [f"### {_md_text(test['name'])} ({test['score']:g} / {test['max_score']:g})", ""]
            if test.get("question"):
                lines += [f"*{_md_text(test['question'])}*", ""]
            lines += [_md_text(test["output"]) or "This check failed.", ""]
    if passed:
        lines += ["", "## Passed", ""]
        for test in passed:
            note = f": {_md_text(test['output'])}" if test["output"] else ""
            lines.append(f"- {_md_text(test['name'])} ({test['max_score']:g} / {test['max_score']:g}){note}")
    return "\n".join(lines).rstrip() + "\n"


def feedback_html(report: SubmissionReport) -> str:
    e = html.escape
    rows = "".join(f"<tr><td><code>{e(f)}</code></td><td>{s:g} / {m:g}</td></tr>"
                   for f, (s, m) in report.by_function().items() if m)
    problems = "".join(f"<li>{e(p)}</li>" for p in report.problems)
    tests = []
    for test in report.tests:
        ok = test["status"] == "passed"
        question = f"<p class='q'>{e(test['question'])}</p>" if test.get("question") else ""
        output = f"<p>{e(test['output'])}</p>" if test["output"] else ""
        tests.append(f"<section class='{'pass' if ok else 'fail'}'><h3>{'&#10003;' if ok else '&#10007;'} "
                     f"{e(test['name'])} <span>{test['score']:g} / {test['max_score']:g}</span></h3>"
                     f"{question}{output}</section>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hello_mnist feedback: {e(report.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.45}}
table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:.2rem .6rem}}
section{{border-left:.3rem solid;padding:.1rem .8rem;margin:.8rem 0}}.pass{{border-color:#2a7}}.fail{{border-color:#c33}}
h3{{font-size:1rem;margin:.4rem 0}}h3 span{{float:right;font-weight:normal}}.q{{font-style:italic;color:#555}}</style>
</head><body><h1>hello_mnist: feedback for {e(report.name)}</h1>
<p><strong>Score: {report.total:g} / {report.max_total:g}</strong></p>
<table>{rows}</table>{f'<h2>About your submission</h2><ul>{problems}</ul>' if problems else ''}
<h2>Checks</h2>{''.join(tests)}</body></html>
"""


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash or a full disk never leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
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


def summary_csv(reports: list[SubmissionReport]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", *FUNCTIONS, "total", "max_total", "flags"])
    for report in sorted(reports, key=lambda r: r.name):
        scores = report.by_function()
        writer.writerow([report.name, *(f"{scores[f][0]:g}" for f in FUNCTIONS), f"{report.total:g}",
                         f"{report.max_total:g}", " ".join(report.flags)])
    return buffer.getvalue()


def pass_rates_csv(reports: list[SubmissionReport]) -> str:
    passed: dict[str, int] = defaultdict(int)
    seen: dict[str, int] = defaultdict(int)
    names: list[str] = []
    for report in reports:
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


SHORT = {"preprocess": "prep", "build_model": "build", "compile_model": "comp", "minibatches": "mini",
         "train_one_epoch": "t1ep", "train_model": "train", "forward_loop": "floop", "forward_matrix": "fmat",
         "evaluate_model": "eval", "predict_digits": "pred", "save_model": "save", "load_model": "load",
         "trained_model": "model"}


def class_table(reports: list[SubmissionReport]) -> str:
    """The final terminal table: one line per submission, points per function, total and flags."""
    width = max([10] + [len(r.name) for r in reports])
    header = f"{'submission':<{width}} " + " ".join(f"{SHORT[f]:>5}" for f in FUNCTIONS) + "  total  flags"
    lines = [header, "-" * len(header)]
    for report in sorted(reports, key=lambda r: r.name):
        scores = report.by_function()
        cells = " ".join(f"{scores[f][0]:>5g}" for f in FUNCTIONS)
        lines.append(f"{report.name:<{width}} {cells}  {report.total:>5g}  {' '.join(report.flags)}")
    if reports:
        maxima = reports[0].by_function()
        lines.append(f"{'(max)':<{width}} " + " ".join(f"{maxima[f][1]:>5g}" for f in FUNCTIONS)
                     + f"  {reports[0].max_total:>5g}")
    present = sorted({flag.split(":")[0] for report in reports for flag in report.flags})
    if present:
        lines += ["", "flags (for the TA; not penalties):"]
        lines += [f"  {flag}: {FLAG_HELP.get(flag, '')}" for flag in present]
    return "\n".join(lines)
