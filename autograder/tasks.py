"""The tables of exercise tasks: one row per autograded task, the one place a task is named.

A :class:`Task` ties together what used to be spelled in four places: the task key (the name
of its record and of its recorder in :mod:`course.grading_record`), the ``grade_id`` of the
exercise's test cell, the label students read in feedback ("Task 2 (freeze and unfreeze)"),
the points the exercise source gives it, and the trusted check that scores its record.

Each exercise registers one table (:func:`register_tasks`); the grader asks for it with
:func:`tasks_for`. The trusted parent draws one fresh seed per task and grading run
(:func:`draw_seeds`), hands the notebook driver one line of Python per test cell
(:func:`cell_prefixes`, contract C1), and scores each record with :meth:`Task.as_check`, which
refuses a record whose embedded task/seed tag is not this task's and this run's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from autograder.feedback import fail
from autograder.scoring import Check

#: Seeds are drawn below this bound (contract C1).
SEED_BOUND = 2**62


@dataclass(frozen=True)
class Task:
    """One autograded task of an exercise.

    Attributes:
        key: record and recorder name (``course.grading_record.RECORDERS[key]``), e.g. "freeze".
        grade_id: the nbgrader ``grade_id`` of the task's test cell, e.g. "task2-test".
        number: the task's number in the exercise.
        label: a few words students recognise, e.g. "freeze and unfreeze".
        check: ``check(data, seed)`` returns when the recorded data is right, else raises
            :class:`~autograder.feedback.CheckFailure`.
        points: the points the exercise source gives the test cell (None: not stated here;
            the gradebook's value is used either way).
    """

    key: str
    grade_id: str
    number: int
    label: str
    check: Callable[[Any, int], None]
    points: int | None = None

    @property
    def title(self) -> str:
        """How feedback names the task: ``"Task 2 (freeze and unfreeze)"``."""
        return f"Task {self.number} ({self.label})"

    @property
    def recorder(self) -> Callable[..., Any]:
        """The student-side recorder of this task (looked up by key)."""
        from course.grading_record import recorder_for

        return recorder_for(self.key)

    def prefix(self, seed: int) -> str:
        """The line the driver runs just before this task's test cell (contract C1)."""
        from course.grading_record import prefix_line

        return prefix_line(self.key, seed)

    def verify(self, record: Any, seed: int) -> None:
        """Check one record: its tag must be this task's and this run's seed, then its data."""
        check_tag(self, record, seed)
        self.check(record["data"], seed)

    def as_check(self) -> Check:
        """This task as a :class:`~autograder.scoring.Check` (record name = key)."""
        return Check(self.key, self.verify)


def check_tag(task: Task, record: Any, seed: int) -> None:
    """Fail unless ``record`` is an envelope written by ``task``'s own test cell this run.

    The recorder writes ``{"task": key, "seed": seed, "data": ...}`` and learns the seed only
    when the task's test cell starts (``begin_task``): a record written earlier, by another
    cell or for another run, carries another tag.
    """
    tag_ok = (
        isinstance(record, Mapping)
        and record.get("task") == task.key
        and type(record.get("seed")) is int
        and record.get("seed") == seed
        and "data" in record
    )
    if not tag_ok:
        fail(
            task.title,
            "the saved result was not made by this task's test cell during this grading run.",
            expected=f"a result recorded by the test cell {task.grade_id} for this run",
            found="a result with another task or run tag, or none (written by other code?)",
            hint="Leave the hidden test cells and course.grading_record alone: run your "
            "notebook top to bottom with your own functions, and the test cells record them.",
        )


# --------------------------------------------------------------------------- the registry

#: assignment -> its table (exercises register on import; see :func:`tasks_for`).
TABLES: dict[str, tuple[Task, ...]] = {}
#: Modules that register a built-in exercise's table when imported.
BUILT_IN: dict[str, str] = {
    "transfer_learning": "autograder.checks",
    "fine_tuning_in_stages": "autograder.checks.staged",
}


def register_tasks(assignment: str, tasks: Iterable[Task]) -> tuple[Task, ...]:
    """Make ``tasks`` the table of ``assignment``; keys and grade_ids must be unique in it."""
    table = tuple(tasks)
    for attribute in ("key", "grade_id", "number"):
        values = [getattr(t, attribute) for t in table]
        if len(values) != len(set(values)):
            raise ValueError(f"duplicate task {attribute} in {assignment}'s table: {values}")
    TABLES[assignment] = table
    return table


def tasks_for(assignment: str) -> tuple[Task, ...]:
    """The task table of ``assignment`` (importing the built-in one on first use).

    Raises:
        KeyError: no table is registered for ``assignment``.
    """
    if assignment not in TABLES and assignment in BUILT_IN:
        import importlib

        importlib.import_module(BUILT_IN[assignment])
    if assignment not in TABLES:
        raise KeyError(f"no task table is registered for the assignment {assignment!r}")
    return TABLES[assignment]


def task_by_key(key: str, assignment: str | None = None) -> Task:
    """The task named ``key`` (in ``assignment``'s table, or in any registered table)."""
    tables = [tasks_for(assignment)] if assignment else [tasks_for(a) for a in BUILT_IN]
    tables += [] if assignment else list(TABLES.values())
    for table in tables:
        for task in table:
            if task.key == key:
                return task
    raise KeyError(f"no task {key!r} is registered")


def title(key: str) -> str:
    """The label feedback uses for the task ``key``: ``"Task 1 (load VGG16)"``."""
    return task_by_key(key).title


def checks_of(tasks: Iterable[Task]) -> dict[str, Check]:
    """grade_id -> :class:`~autograder.scoring.Check` for every task of a table."""
    return {task.grade_id: task.as_check() for task in tasks}


# --------------------------------------------------------------------------- seeds (C1)


def draw_seeds(tasks: Iterable[Task]) -> dict[str, int]:
    """One fresh secret seed per task key, for one grading run of one submission."""
    return {task.key: secrets.randbelow(SEED_BOUND) for task in tasks}


def cell_prefixes(tasks: Iterable[Task], seeds: Mapping[str, int]) -> dict[str, str]:
    """grade_id -> the line the driver prepends to that test cell (contract C1)."""
    return {task.grade_id: task.prefix(seeds[task.key]) for task in tasks}


def seeds_by_grade_id(tasks: Iterable[Task], seeds: Mapping[str, int]) -> dict[str, int]:
    """grade_id -> the seed of its task (what each cell's check is called with)."""
    return {task.grade_id: seeds[task.key] for task in tasks}
