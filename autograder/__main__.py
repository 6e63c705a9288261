"""``python -m autograder COMMAND``: the instructor's grading pipeline around nbgrader.

Commands: setup, release, collect, autograde, feedback, export, all, reference; student-package
and student-kit build what students get. The course directory is ``./grading/`` unless
``--course-dir`` says otherwise. ``--assignment NAME`` (before or after the command, repeatable,
or ``all``) picks the exercises: ``transfer_learning`` (the default) and
``fine_tuning_in_stages``; each command then runs once per exercise. ``python -m autograder
COMMAND -h`` lists each command's options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import pipeline
from autograder.coursedir import ASSIGNMENT, ASSIGNMENTS, resolve_assignments
from autograder.intake import PATTERNS
from autograder.limits import NETWORK_MODES, SANDBOX_MODES, Limits, make_sandbox
from course.errors import explain

#: The defaults live in one place, :class:`Limits`; the options show them.
_DEFAULTS = Limits()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    parser.add_argument(
        "--course-dir", type=Path, default=Path("grading"), help="default: %(default)s"
    )
    assignment_help = (
        f"exercise to work on; repeat it for several, or 'all' ({', '.join(ASSIGNMENTS)}); "
        f"default: {ASSIGNMENT}. With several, collect and all read INBOX/<assignment>/ (or "
        "INBOX/<assignment>.zip) and reference writes OUT/<assignment>.ipynb"
    )
    parser.add_argument("--assignment", action="append", metavar="NAME", help=assignment_help)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_parser = commands.add_parser

    def add_parser(name: str, **kwargs: object) -> argparse.ArgumentParser:
        """A command that also takes --assignment after its name."""
        p = _add_parser(name, **kwargs)
        p.add_argument(
            "--assignment",
            action="append",
            metavar="NAME",
            default=argparse.SUPPRESS,
            help=assignment_help,
        )
        return p

    commands.add_parser = add_parser  # type: ignore[method-assign]

    def limits_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--cell-timeout",
            type=int,
            default=_DEFAULTS.cell_timeout,
            help="seconds per cell (%(default)s)",
        )
        p.add_argument(
            "--submission-timeout",
            type=int,
            default=_DEFAULTS.submission_timeout,
            help="seconds per submission (%(default)s)",
        )
        p.add_argument(
            "--memory-mb",
            type=int,
            default=_DEFAULTS.memory_mb,
            help="address-space cap in MiB, 0: none (%(default)s)",
        )
        p.add_argument(
            "--max-file-mb",
            type=int,
            default=_DEFAULTS.max_file_mb,
            help="largest file a submission may write, MiB, 0: none (%(default)s)",
        )
        p.add_argument("--network", choices=NETWORK_MODES, default=_DEFAULTS.network)
        p.add_argument(
            "--sandbox",
            choices=SANDBOX_MODES,
            default=_DEFAULTS.sandbox,
            help="bubblewrap sandbox: required (refuse, with the remedy, where it cannot run) or "
            "off (grade without it; every result says NOT sandboxed) (%(default)s)",
        )

    def source_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--source", type=Path, help="Jupytext exercise source (default: the course's)"
        )

    def inbox_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("inbox", type=Path, help="a folder of notebooks or an LMS zip export")
        p.add_argument(
            "--pattern",
            help="regex (re.fullmatch on each file name) with a named group 'student' and "
            "optionally 'file'; default: " + ", ".join(PATTERNS),
        )
        p.add_argument(
            "--roster",
            type=Path,
            help="file of student ids (one a line, or a CSV whose first column is the id): "
            "students without a submission are listed as missing",
        )

    def workers_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--workers", type=int, default=1, help="submissions graded at once")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = commands.add_parser("setup", help="create the course dir and the instructor notebook")
    source_arg(p)
    limits_args(p)
    p = commands.add_parser("release", help="generate the student notebook (release/)")
    limits_args(p)
    p = commands.add_parser("collect", help="copy submissions into the course dir")
    inbox_args(p)
    p = commands.add_parser("autograde", help="grade every collected submission")
    workers_arg(p)
    limits_args(p)
    commands.add_parser("feedback", help="write HTML feedback per student")
    p = commands.add_parser("export", help="write the grades CSV")
    p.add_argument("--out", type=Path, help="CSV path (default: COURSE_DIR/grades.csv)")
    p = commands.add_parser(
        "student-package", help="build the wheel students install (course only, no solutions)"
    )
    p.add_argument("--out", type=Path, default=Path("dist"), help="default: %(default)s")
    p = commands.add_parser(
        "student-kit",
        help="build the zip students get: wheel, lessons, released exercise, offline network",
    )
    p.add_argument("out", type=Path, nargs="?", default=Path("dist"), help="default: %(default)s")
    p = commands.add_parser(
        "reference",
        help="write the release filled with the reference answers (a submission that must "
        "score full marks; time `autograde` on copies of it)",
    )
    p.add_argument(
        "out",
        type=Path,
        help="the notebook to write, e.g. ref/transfer_learning.ipynb (several assignments: "
        "a folder, OUT/<assignment>.ipynb)",
    )
    p = commands.add_parser("all", help="every step in order")
    source_arg(p)
    inbox_args(p)
    workers_arg(p)
    limits_args(p)
    return parser


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(
        cell_timeout=args.cell_timeout,
        submission_timeout=args.submission_timeout,
        memory_mb=args.memory_mb,
        max_file_mb=args.max_file_mb,
        network=args.network,
        sandbox=args.sandbox,
    )


def main(argv: list[str] | None = None) -> int:
    """Run one command for each assignment picked; return the process exit code."""
    args = _parser().parse_args(argv)
    names = resolve_assignments(args.assignment)
    cmd = args.command
    if getattr(args, "source", None) and len(names) > 1:
        print(
            "error: --source names one exercise's source; pick one --assignment with it",
            file=sys.stderr,
        )
        return 1
    if cmd in ("student-package", "student-kit"):
        return _run(args, pipeline.CourseDir(args.course_dir, names[0], names[0]), names)
    status = 0
    for name in names:
        if len(names) > 1:
            print(f"== {name} ==")
        status = max(status, _run(args, pipeline.CourseDir(args.course_dir, name, name), names))
    return status


def _inbox(args: argparse.Namespace, course: pipeline.CourseDir, names: list[str]) -> Path:
    """The inbox of ``course``'s assignment: INBOX itself, or with several INBOX/<name>."""
    if len(names) == 1:
        return args.inbox
    for candidate in (args.inbox / course.assignment, args.inbox / f"{course.assignment}.zip"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        explain(
            f"No inbox for {course.assignment} in {args.inbox}",
            f"with several assignments, put each one's submissions in {args.inbox}/<assignment>/ "
            "(a folder, or <assignment>.zip), or run one assignment at a time with "
            "--assignment NAME.",
        )
    )


def _reference_out(args: argparse.Namespace, course: pipeline.CourseDir, names: list[str]) -> Path:
    """OUT itself, or with several assignments OUT/<assignment>.ipynb."""
    if len(names) == 1:
        return args.out
    return args.out / f"{course.assignment}.ipynb"


def _run(args: argparse.Namespace, course: pipeline.CourseDir, names: list[str]) -> int:
    """Run ``args.command`` for one assignment (``course``); return the exit code."""
    cmd = args.command
    try:
        if cmd == "student-package":
            from autograder.student_package import build_student_wheel

            print(f"student wheel: {build_student_wheel(args.out)}")
        elif cmd == "student-kit":
            from autograder.student_package import build_student_kit

            print(f"student kit: {build_student_kit(args.out, assignments=names)}")
        elif cmd == "setup":
            print(f"instructor notebook: {pipeline.setup(course, args.source, _limits(args))}")
        elif cmd == "release":
            print(f"student notebook: {pipeline.release(course, _limits(args))} (no leaks found)")
        elif cmd == "collect":
            intakes, unmatched = pipeline.collect(
                course, _inbox(args, course, names), pattern=args.pattern, roster=args.roster
            )
            from autograder.report import printable  # control characters escaped

            for intake in intakes:
                status = "no notebook" if intake.missing else intake.chosen
                notes = f"  ({'; '.join(intake.notes)})" if intake.notes else ""
                print(printable(f"{intake.student}: {status}{notes}"))
            for name in unmatched:
                print(printable(f"NOT COLLECTED (no student id in the name): {name}"))
            print(f"collected {len(intakes)} student(s) into {course.own}")
        elif cmd == "reference":
            out = _reference_out(args, course, names)
            print(f"reference submission: {pipeline.reference_submission(course, out)}")
        elif cmd in ("autograde", "all"):
            limits = _limits(args)
            box = make_sandbox(limits)
            print("limits: " + "; ".join(box.enforced + box.notes))
            if cmd == "all":
                _, results, csv_path = pipeline.run_all(
                    course,
                    _inbox(args, course, names),
                    source=args.source,
                    pattern=args.pattern,
                    roster=args.roster,
                    workers=args.workers,
                    limits=limits,
                    progress=not args.no_progress,
                )
            else:
                results = pipeline.autograde(
                    course, workers=args.workers, limits=limits, progress=not args.no_progress
                )
            print(pipeline.summary_table(results, unmatched=pipeline.load_unmatched(course)))
            from autograder.similarity import write_similarity_report

            print(f"similarity report (no score changed): {write_similarity_report(course)}")
            if cmd == "all":
                print(f"feedback: {course.root / 'feedback'}\ngrades: {csv_path}")
            damaged = pipeline.verify_originals(course)
            if damaged:
                print(f"ORIGINALS CHANGED: {', '.join(damaged)}", file=sys.stderr)
                return 2
        elif cmd == "feedback":
            paths = pipeline.feedback(course)
            print(f"wrote {len(paths)} feedback file(s) under {course.root / 'feedback'}")
        elif cmd == "export":
            out = args.out
            if out is not None and len(names) > 1:
                out = out.with_name(f"{out.stem}-{course.assignment}{out.suffix or '.csv'}")
            print(f"grades: {pipeline.export_csv(course, out)}")
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
