"""The grading pipeline, one function per ``python -m autograder`` command.

``setup`` -> ``release`` -> ``collect`` -> ``autograde`` -> ``feedback`` -> ``export``;
``run_all`` does them in order. Each step only reads what the previous ones wrote into the
course directory (see :mod:`autograder.coursedir`), so any step can be rerun on its own.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.coursedir import CourseDir
from autograder.grade import Result, autograde
from autograder.intake import Intake, collect, load_unmatched, verify_originals
from autograder.limits import Limits
from autograder.release import fill_from_source, release, setup
from autograder.report import export_csv, feedback, summary_table
from course.errors import explain

__all__ = [
    "CourseDir",
    "Limits",
    "Result",
    "autograde",
    "collect",
    "export_csv",
    "feedback",
    "load_unmatched",
    "reference_submission",
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
    roster: Path | None = None,
    workers: int = 1,
    limits: Limits | None = None,
    progress: bool = True,
) -> tuple[list[Intake], list[Result], Path]:
    """Every step in order; returns the intakes, the results and the grades CSV path."""
    setup(course, source, limits)
    release(course, limits)
    intakes, _ = collect(course, inbox, pattern=pattern, roster=roster)
    results = autograde(course, workers=workers, limits=limits, progress=progress)
    feedback(course)
    return intakes, results, export_csv(course)


def reference_submission(course: CourseDir, out: Path) -> Path:
    """Write the released notebook with every answer filled from the source's solutions.

    It is what a student who wrote the reference solution would submit: test and locked cells
    exactly as released (so nothing is flagged as edited), hidden tests absent. Grading it must
    give full marks; copies of it time ``autograde``.

    Raises:
        FileNotFoundError: ``setup`` or ``release`` has not been run in ``course``.
    """
    for path, step in ((course.source_notebook, "setup"), (course.release_notebook, "release")):
        if not path.is_file():
            raise FileNotFoundError(
                explain(f"No notebook at {path}", f"run `python -m autograder {step}` first.")
            )
    filled = fill_from_source(
        nbformat.read(course.release_notebook, 4), nbformat.read(course.source_notebook, 4)
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(filled, out)
    return out
