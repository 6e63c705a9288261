"""The graded exercises (instructor-only): their Jupytext sources and their checks.

``<assignment>.py`` here is the source ``python -m autograder setup`` turns into the nbgrader
instructor notebook; :func:`checks_for` gives the checks that score its test cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from autograder.scoring import Check
from course.errors import CourseError

FOLDER = Path(__file__).resolve().parent


def exercise_source(assignment: str) -> Path:
    """The Jupytext source of ``assignment``."""
    return FOLDER / f"{assignment}.py"


#: Checks of assignments other than the built-in one (see :func:`register`).
REGISTERED: dict[str, Mapping[str, Check]] = {}


def register(assignment: str, checks: Mapping[str, Check]) -> None:
    """Make ``checks`` (grade_id -> check) the checks of ``assignment``."""
    REGISTERED[assignment] = checks


def checks_for(assignment: str) -> Mapping[str, Check]:
    """grade_id -> check for every autograded test cell of ``assignment``.

    Raises:
        RuntimeError: no checks are registered for ``assignment``.
    """
    from autograder.tasks import checks_of, tasks_for

    if assignment in REGISTERED:
        return REGISTERED[assignment]
    try:
        return checks_of(tasks_for(assignment))
    except KeyError:
        pass
    raise CourseError(
        f"No checks are registered for the assignment {assignment!r}",
        "register its task table (autograder.tasks.register_tasks), or its checks "
        "(autograder.exercise.register).",
    )
