"""``autograde``: grade every collected submission, several at a time, one gradebook writer.

Each submission is graded by :func:`autograder.submission.grade_submission` in a pool thread:
its notebook runs in a sandboxed process of its own and is scored here, in the trusted
process. As each one finishes, this module (the only writer) writes its scores into the
gradebook and its autograded notebook into ``autograded/``. Scores cannot depend on the
number of workers, and a failure while grading one submission is recorded as that student's
``error`` and never stops the batch.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import traceback
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning

from autograder.coursedir import COURSE_ID, CourseDir
from autograder.limits import Limits
from autograder.results import Result
from autograder.sandbox_run import isolation
from autograder.scoring import Check
from autograder.submission import Graded, grade_submission, read_assignment
from course.errors import CourseError, explain
from course.machine import usable_cores

__all__ = ["Result", "autograde", "read_scores"]

log = logging.getLogger(__name__)


def exercise_checks(assignment: str) -> Mapping[str, Check]:
    """The registered checks of ``assignment`` (see :mod:`autograder.exercise`)."""
    from autograder.exercise import checks_for

    return checks_for(assignment)


def autograde(
    course: CourseDir,
    *,
    workers: int = 1,
    limits: Limits | None = None,
    students: list[str] | None = None,
    progress: bool = True,
    checks: Mapping[str, Check] | None = None,
) -> list[Result]:
    """Grade ``students`` (default: all collected) with ``workers`` at once.

    Args:
        checks: grade_id -> :class:`~autograder.scoring.Check` of each test cell; default:
            the checks registered for ``course.assignment``.

    Raises:
        FileNotFoundError: no gradebook (no release made yet).
        RuntimeError: ``--sandbox required`` but the sandbox cannot run, or a test cell has
            no check.
        GradebookTampered: the gradebook's schema is not nbgrader's (checked before grading
            and before each write).
    """
    from tqdm.auto import tqdm

    limits = limits or Limits()
    box = isolation(limits)
    students = students if students is not None else course.students()
    if not course.gradebook.is_file():
        raise FileNotFoundError(
            explain(
                f"No gradebook at {course.gradebook}", "run `python -m autograder release` first."
            )
        )
    check_gradebook(course)
    course.work.mkdir(parents=True, exist_ok=True)
    # A snapshot taken while nobody writes: nbgrader reads the instructor's cells from it.
    template = (course.work / "template.db").resolve()
    shutil.copyfile(course.gradebook, template)
    assignment = read_assignment(
        course,
        checks if checks is not None else exercise_checks(course.assignment),
        f"sqlite:///{template}",
    )
    threads = max(1, usable_cores() // max(1, workers))
    results: list[Result] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {
                pool.submit(
                    grade_submission,
                    course,
                    student,
                    assignment,
                    limits=limits,
                    box=box,
                    threads=threads,
                ): student
                for student in students
            }
            bar = tqdm(total=len(futures), desc="autograde", unit="nb", disable=not progress)
            for future in as_completed(futures):
                student = futures[future]
                try:
                    graded = future.result()
                except Exception:  # a bug or an unexpected file: this student only
                    graded = grader_error(course, student, box.enforced + box.notes)
                if not box.filesystem:  # on the page and in the CSV's reason, not only its column
                    graded.result.reasons.insert(0, UNSANDBOXED)
                try:
                    check_gradebook(course)
                except GradebookTampered:  # nothing more is written, nothing more is graded
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                try:
                    record(course, student, graded, assignment.manual)
                except Exception:  # the gradebook refused: this student only
                    graded = grader_error(course, student, box.enforced + box.notes)
                    record(course, student, graded, assignment.manual)
                results.append(graded.result)
                bar.set_postfix_str(f"{student}: {graded.result.status}")
                bar.update()
            bar.close()
    finally:
        template.unlink(missing_ok=True)
    return sorted(results, key=lambda r: r.student)


#: The first reason of every result graded with ``--sandbox off``.
UNSANDBOXED = (
    "NOT sandboxed: graded with --sandbox off, so this notebook's code ran with the grader's access"
)


class GradebookTampered(CourseError):
    """The gradebook's schema is not nbgrader's: something added a trigger, view or table."""


def schema_of(db: Path) -> set[tuple[str, str, str, str]]:
    """(type, name, table, normalized SQL) of every table, index, view and trigger of ``db``."""
    import sqlite3

    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    finally:
        connection.close()
    return {(t, n, tbl, " ".join((sql or "").split())) for t, n, tbl, sql in rows}


@functools.lru_cache(maxsize=1)
def expected_schema() -> frozenset[tuple[str, str, str, str]]:
    """The schema nbgrader gives a new gradebook (made once, in a temporary folder)."""
    import tempfile

    # nbgrader stamps a new gradebook with the `alembic` command, found through PATH: the one
    # installed beside this Python (as `release` does, autograder/coursedir.py).
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "gradebook.db"
        with Gradebook(f"sqlite:///{db}", COURSE_ID):
            pass
        return frozenset(schema_of(db))


def check_gradebook(course: CourseDir) -> None:
    """Stop grading when the gradebook's schema differs from nbgrader's.

    A trigger, view, table or index that nbgrader did not create (student code run without a
    sandbox could plant one that rewrites every score) is found before any score is written.

    Raises:
        GradebookTampered: with what differs and the remedy.
    """
    found = schema_of(course.gradebook)
    expected = expected_schema()
    extra = sorted(f"{t} {n}" for t, n, _, _ in found - expected)
    missing = sorted(f"{t} {n}" for t, n, _, _ in expected - found)
    if extra or missing:
        raise GradebookTampered(
            f"The gradebook {course.gradebook} has been changed: "
            + "; ".join(
                part
                for part in (
                    f"not nbgrader's: {', '.join(extra)}" if extra else "",
                    f"missing or altered: {', '.join(missing)}" if missing else "",
                )
                if part
            )
            + ". Grading stopped before writing any more scores.",
            "restore the gradebook from a backup (or run `release` again in a fresh course "
            "folder), grade with the sandbox (the default), and look at who ran code unsandboxed.",
        )


def grader_error(course: CourseDir, student: str, notes: list[str]) -> Graded:
    """An ``error`` result for a failure of the grader itself; details go to the log file."""
    log_path = course.result(student).with_suffix(".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(traceback.format_exc(), encoding="utf-8")
    result = Result(
        student=student,
        status="error",
        sandbox=list(notes),
        reasons=["the grader failed on this submission; the instructor has the details"],
    )
    return Graded(result)


def record(course: CourseDir, student: str, graded: Graded, manual: Mapping[str, float]) -> None:
    """Write ``student``'s scores, autograded notebook and result (the single writer)."""
    result = graded.result
    target = course.autograded(student)
    if target.parent.exists():
        make_writable(target.parent)
        shutil.rmtree(target.parent)
    if graded.notebook is not None:
        target.parent.mkdir(parents=True)
        nbformat.write(graded.notebook, target)
    with Gradebook(course.db_url, COURSE_ID) as gb, warnings.catch_warnings():
        # nbgrader's add_submission trips a harmless SQLAlchemy autoflush warning.
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(student)
        gb.update_or_create_submission(course.assignment, student)
        verdicts = graded.verdicts or {}
        notebook = gb.find_submission_notebook(course.notebook, course.assignment, student)
        for grade in notebook.grades:
            if grade.name in verdicts:
                grade.auto_score = verdicts[grade.name].points
                grade.needs_manual_grade = False
            elif grade.name in manual and grade.name in graded.manual_answered:
                grade.auto_score = None
                # A grade the instructor already gave stays; otherwise it waits for one.
                grade.needs_manual_grade = grade.manual_score is None
            else:  # not scored (crash, missing, deleted answer): zero, nothing pending
                grade.auto_score = 0
                grade.manual_score = None
                grade.needs_manual_grade = False
        gb.db.commit()
        read_scores(gb, course, student, result)
    result.save(course)


def read_scores(gb: Gradebook, course: CourseDir, student: str, result: Result) -> None:
    """Refresh ``result``'s score, maximum and pending manual points from the gradebook."""
    sub = gb.find_submission(course.assignment, student)
    result.max_score = float(sub.max_score)
    result.score = float(sub.score)
    result.manual_pending = float(
        sum(g.max_score for nb in sub.notebooks for g in nb.grades if g.needs_manual_grade)
    )


def make_writable(folder: Path) -> None:
    """Make a folder tree writable again (nbgrader leaves its outputs read-only, 0444)."""
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
