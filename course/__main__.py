"""The course's command line: ``python -m course doctor [--lesson NN]``.

``doctor`` says what this machine has (data, pretrained weights, device) and what each
lesson will use, with the fix for anything missing. ``python -m course.check`` checks an
exercise notebook before you submit it.
"""

from __future__ import annotations

import argparse
import sys

from course.errors import CourseError


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; returns the exit status (1 when the doctor finds something missing)."""
    parser = argparse.ArgumentParser(prog="python -m course", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="what each lesson will use here, and the fixes")
    doctor.add_argument("--lesson", help="one lesson's summary only (a number: 1 to 6)")
    args = parser.parse_args(argv)
    from course import doctor as doctor_module

    try:
        if args.lesson:
            diagnosis = doctor_module.print_summary(args.lesson)
            return 0 if diagnosis.ok else 1
        text = doctor_module.report()
    except CourseError as error:
        print(f"{error.problem}\n  How to fix it: {error.remedy}", file=sys.stderr)
        return 2
    print(text)
    return 0 if "MISSING" not in text else 1


if __name__ == "__main__":
    sys.exit(main())
