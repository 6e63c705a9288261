"""The grading pipeline, one function per ``python -m autograder`` command.

``setup`` -> ``release`` -> ``collect`` -> ``autograde`` -> ``feedback`` -> ``export``;
``run_all`` does them in order. Each step only reads what the previous ones wrote into the
course directory (see :mod:`autograder.coursedir`), so any step can be rerun on its own.
"""

from __future__ import annotations

from pathlib import Path

from autograder.coursedir import CourseDir
from autograder.grade import Result, autograde
from autograder.intake import Intake, collect, verify_originals
from autograder.limits import Limits
from autograder.release import release, setup
from autograder.report import export_csv, feedback, summary_table

__all__ = [
    "CourseDir",
    "Limits",
    "Result",
    "autograde",
    "collect",
    "export_csv",
    "feedback",
    "release",
    "run_all",
    "setup",
    "summary_table",
    "verify_originals",
]


def run_all(
    course: CourseDir,
    inbox: Path,
    *,
    source: Path | None = None,
    pattern: str | None = None,
    workers: int = 1,
    limits: Limits | None = None,
    progress: bool = True,
) -> tuple[list[Intake], list[Result], Path]:
    """Every step in order; returns the intakes, the results and the grades CSV path."""
    setup(course, source, limits)
    release(course, limits)
    intakes, _ = collect(course, inbox, pattern=pattern)
    results = autograde(course, workers=workers, limits=limits, progress=progress)
    feedback(course)
    return intakes, results, export_csv(course)
