"""The command line: parses arguments and forwards them to keyword-only functions; nothing else.

    python -m autograder grade SUBMISSION... --out DIR [--version V] [--jobs N] [--regrade] [--lms L] [--roster CSV]
                                             [--cluster tcp://SCHEDULER:8786]
    python -m autograder gradebook export --out DIR [--format csv|canvas|moodle|gradescope] [--roster CSV] [--feedback]
    python -m autograder gradebook override --out DIR --submission KEY --score S --comment TEXT
    python -m autograder gradebook void --out DIR (--submission KEY | --run ID) --reason TEXT
    python -m autograder reference {train,retrain,grade,all} [--version V]
    python -m autograder release [--version V]
    python -m autograder gradescope [--version V] --output autograder.zip

Exit codes: 0 when every submission was graded (whatever the scores); 2 when the grader itself could
not run (bad arguments, no sandbox, no MNIST, an inconsistent rubric or reference, the output folder held
by another run, a full disk); 3 when the run finished but the grader failed on some submissions, which
are recorded as not graded and graded again by the next plain run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .settings import Settings, SettingsError, load_settings

EXIT_OK, EXIT_GRADER, EXIT_NOT_GRADED = 0, 2, 3
# --lms choices (lms/grading.py LAYOUT_CHOICES; spelled here so --help needs no import) and export formats
LAYOUT_CHOICES = ("auto", "none", "canvas", "moodle", "moodle-flat", "gradescope")
LMS_EXPORTS = ("canvas", "moodle", "gradescope")


def _settings_options(parser: argparse.ArgumentParser) -> None:
    import dataclasses
    for field in dataclasses.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata.get("help", "")
        if isinstance(field.default, bool):
            if field.default:  # on by default: the option turns it off
                parser.add_argument("--no-" + field.name.replace("_", "-"), dest=field.name, action="store_false",
                                    default=None, help=f"turn off: {help_text}")
            else:
                parser.add_argument(flag, dest=field.name, action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=field.name, default=None, metavar=field.name.split("_")[-1].upper(),
                                help=f"{help_text} (default {field.default})")


def _settings_from(args) -> Settings:
    import dataclasses
    return load_settings({f.name: getattr(args, f.name, None) for f in dataclasses.fields(Settings)})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder",
                                     description="Grade, release and reference the versions of the assignment "
                                                 "(solutions/<version>/).")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade submissions (folders, .zip files, hello_mnist.py files)")
    grade.add_argument("submissions", nargs="+", type=Path, help="submissions, or folders of submissions")
    grade.add_argument("--out", type=Path, required=True, help="output folder (results, feedback, gradebook)")
    grade.add_argument("--gradebook", default=None, help="SQLAlchemy URL (default: sqlite in --out)")
    grade.add_argument("--regrade", action="store_true", help="grade again what was already graded")
    grade.add_argument("--version", default=None, help="grade every submission against this assignment version "
                                                       "(default: the version each submission's own files name)")
    grade.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    grade.add_argument("--lms", default="auto", choices=LAYOUT_CHOICES,
                       help="how to read an LMS download given as a submission: auto (recognise Canvas, Moodle, "
                            "Gradescope), a layout, or none (default auto)")
    grade.add_argument("--cluster", default=None, metavar="ADDRESS",
                       help="grade on a Dask cluster (tcp://scheduler:8786): each worker sandboxes its share, this "
                            "command alone writes the gradebook; --jobs is then per worker")
    grade.add_argument("--roster", type=Path, default=None,
                       help="the LMS's roster export (Canvas gradebook CSV, Moodle worksheet or participants CSV, "
                            "Gradescope roster): the closing lines name who handed nothing in")
    _settings_options(grade)

    book = commands.add_parser("gradebook", help="read the gradebook")
    book_commands = book.add_subparsers(dest="action", required=True)
    export = book_commands.add_parser("export", help="write grades: the gradebook's CSV, or a file an LMS imports")
    export.add_argument("--out", type=Path, default=None, help="the grading output folder")
    export.add_argument("--gradebook", default=None, help="SQLAlchemy URL instead of --out")
    export.add_argument("--format", default="csv", choices=("csv", *LMS_EXPORTS),
                        help="csv: every function's points (standard output unless --csv); canvas, moodle, "
                             "gradescope: the file that LMS imports, in <out>/exports/ unless --csv")
    export.add_argument("--csv", type=Path, default=None, help="file to write")
    export.add_argument("--history", action="store_true", help="every grade ever recorded, voided ones included")
    export.add_argument("--roster", type=Path, default=None, help="the LMS's roster export, to join students by id")
    export.add_argument("--feedback", action="store_true",
                        help="also write the feedback files laid out for upload (Moodle's zip; Canvas: a folder "
                             "per student id)")
    export.add_argument("--assignment-name", default=None, help="the LMS's name of the assignment (Canvas column)")
    export.add_argument("--assignment-id", default=None, help="the LMS's id of the assignment (Canvas column)")
    export.add_argument("--due", default=None, help="the due date, ISO 8601 with offset (default: the version's "
                                                   "[late] due in its assignment.toml); enables the late columns")
    export.add_argument("--extensions", type=Path, default=None, help="CSV identifier,new_due_date")
    export.add_argument("--late-percent-per-day", type=float, default=None, help="late penalty per day, percent")
    export.add_argument("--late-max-percent", type=float, default=None, help="cap on the late penalty, percent")
    export.add_argument("--grace-minutes", type=float, default=None, help="minutes after the due date still on time")
    override = book_commands.add_parser("override", help="set one student's final score by hand, with why")
    override.add_argument("--out", type=Path, default=None, help="the grading output folder")
    override.add_argument("--gradebook", default=None, help="SQLAlchemy URL instead of --out")
    override.add_argument("--submission", required=True, metavar="KEY", help="the submission's key (summary.csv)")
    override.add_argument("--score", type=float, required=True, help="the final score to post")
    override.add_argument("--comment", required=True, help="why (shown to the student, kept in the gradebook)")
    void = book_commands.add_parser("void", help="undo a mistaken grade or run (append-only: a tombstone)")
    void.add_argument("--out", type=Path, default=None, help="the grading output folder")
    void.add_argument("--gradebook", default=None, help="SQLAlchemy URL instead of --out")
    target = void.add_mutually_exclusive_group(required=True)
    target.add_argument("--submission", default=None, metavar="KEY", help="the submission's key (summary.csv)")
    target.add_argument("--run", type=int, default=None, metavar="ID", help="every grade of this grading run")
    void.add_argument("--reason", required=True, help="why (kept in the gradebook)")

    reference = commands.add_parser("reference", help="compute the reference scores from the solution")
    reference.add_argument("action", choices=("train", "retrain", "grade", "all"),
                           help="train: full training over seeds; retrain: the budgeted retrain through the sandbox; "
                                "grade: grade the solution and require 100; all: the three in order")
    reference.add_argument("--version", default=None, help="the assignment version (default: the latest)")
    reference.add_argument("--seeds", type=int, default=None, help="default: the manifest's [reference] seeds")
    reference.add_argument("--epochs", type=int, default=None, help="default: the manifest's [reference] epochs")
    reference.add_argument("--output", type=Path, default=None, help="default: data/<version>/reference_scores.json")
    _settings_options(reference)

    release = commands.add_parser("release", help="generate assignments/<version>/ from solutions/")
    release.add_argument("--version", default=None, help="the version to release (default: the latest under solutions/)")
    release.add_argument("--skip-checks", action="store_true",
                         help="do not grade the solution and the stubs before publishing (development only)")
    _settings_options(release)

    gradescope = commands.add_parser("gradescope", help="build a Gradescope autograder zip")
    gradescope.add_argument("--version", default=None, help="the assignment version (default: the latest)")
    gradescope.add_argument("--output", type=Path, default=Path("gradescope_autograder.zip"))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GRADER
    except KeyboardInterrupt:
        print("\ninterrupted: graded submissions are recorded; run the same command again to finish.", file=sys.stderr)
        return 130


def _grader_errors():
    from .assignment import AssignmentError
    from .datasets import DatasetError
    from .gradebook import GradebookError
    from .grade import GraderError
    from .reference_scores import ReferenceScoresError
    from .rubric import RubricError
    from .submissions import SubmissionPathError
    return (GraderError, GradebookError, ReferenceScoresError, RubricError, SubmissionPathError, AssignmentError,
            DatasetError)


def run_grade(args) -> int:
    from .grade import grade, print_table
    try:
        if args.cluster:
            from .cluster import grade_on_cluster
            outcomes = grade_on_cluster(args.submissions, out_dir=args.out, settings=_settings_from(args),
                                        address=args.cluster, gradebook_url=args.gradebook, regrade=args.regrade,
                                        progress=not args.quiet, version=args.version, lms=args.lms,
                                        command=" ".join(sys.argv))
        else:
            outcomes = grade(args.submissions, out_dir=args.out, settings=_settings_from(args),
                             gradebook_url=args.gradebook, regrade=args.regrade, progress=not args.quiet,
                             version=args.version, command=" ".join(sys.argv), lms=args.lms)
    except _grader_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GRADER
    if not args.quiet:
        print_table(outcomes, args.out, args.gradebook)
    if args.roster is not None:
        from .lms.exports_cli import roster_report
        try:
            print(roster_report(args.out, args.gradebook, args.roster))
        except _lms_errors() as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_GRADER
    return EXIT_OK if all(o.graded for o in outcomes) else EXIT_NOT_GRADED


def run_gradebook(args) -> int:
    from .gradebook import GradebookError, open_gradebook
    from .grade import all_functions
    try:
        book = open_gradebook(args.gradebook, args.out)
        if args.action == "override":
            book.override(key=args.submission, score=args.score, comment=args.comment)
            print(f"{args.submission}: final score {args.score:g} ({args.comment}); LMS exports post it and say so")
            return EXIT_OK
        if args.action == "export" and args.format != "csv":
            from .lms.exports_cli import export
            try:
                for line in export(args, book):
                    print(line)
            except _lms_errors() as error:
                print(f"error: {error}", file=sys.stderr)
                return EXIT_GRADER
            return EXIT_OK
        if args.action == "void":
            count = book.void(reason=args.reason, key=args.submission, run_id=args.run)
            if args.out is not None:
                from .grade import write_class_files
                write_class_files(args.out, book)
            print(f"voided {count} grade(s); exports and class files now leave them out (--history still shows them)")
            return EXIT_OK
        text = book.export_csv(history=args.history, functions=all_functions(book.reports()))
    except GradebookError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GRADER
    if args.csv:
        args.csv.write_text(text)
        print(f"wrote {args.csv}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _lms_errors():
    from .lms import ExportError, LateConfigurationError, RosterError
    return (ExportError, LateConfigurationError, RosterError, OSError, ValueError)


def run_reference(args) -> int:
    from . import assignment as assignments
    from . import reference
    try:
        version = assignments.load(args.version or assignments.latest())
        reference.run(args.action, assignment=version, settings=_settings_from(args), seeds=args.seeds,
                      epochs=args.epochs, output=args.output)
    except (*_grader_errors(), reference.ReferenceRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GRADER
    return EXIT_OK


def run_release(args) -> int:
    from . import release
    try:
        path = release.release(version=args.version, check=not args.skip_checks, settings=_settings_from(args))
    except (*_grader_errors(), release.ReleaseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GRADER
    print(f"released {path}")
    return EXIT_OK


def run_gradescope(args) -> int:
    from . import gradescope
    try:
        path = gradescope.build_bundle(args.output, version=args.version)
    except (*_grader_errors(), gradescope.BundleError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GRADER
    print(f"wrote {path}")
    return EXIT_OK


COMMANDS = {"grade": run_grade, "gradebook": run_gradebook, "reference": run_reference, "release": run_release,
            "gradescope": run_gradescope}
