"""The checks of "Fine-tuning in stages": recorded results against :mod:`solutions.staged`.

Each check runs in the trusted grading process. It gets what the student's kernel recorded
for one task (:mod:`course.grading_staged`, loaded with ``weights_only=True``) and that task's
seed, rebuilds the same inputs, runs the reference on them and compares. Scores come from
what the trusted side recomputes: the groups the function returned, the weights training
left, the class and probability predicted. What the kernel watched (which parameters were
trainable at each epoch, the optimizer's rates, ``load_state_dict`` calls, the model's mode
and input in ``predict``) names the usual mistakes in the hints.

One module per task group, as :mod:`course.grading_staged` records them: :mod:`.groups`
(task 1), :mod:`.stages` (tasks 2 and 3), :mod:`.predict` (task 4); what they share (task
names, tolerances) is in :mod:`.shared`. This package holds the task table and re-exports
every check.
"""

from __future__ import annotations

from autograder.checks.staged.groups import check_groups
from autograder.checks.staged.predict import (
    MISTAKES,
    check_one_prediction,
    check_predict,
    prepared,
)
from autograder.checks.staged.shared import (
    ASSIGNMENT,
    INPUT_TOLERANCE,
    PROBABILITY_TOLERANCE,
    ROWS,
    SGD,
    STATE_TOLERANCE,
    TASKS,
)
from autograder.checks.staged.stages import check_best, check_stages
from autograder.scoring import Check
from autograder.tasks import Task, checks_of, register_tasks

#: The exercise's tasks: key (record + recorder), test cell, number, label, check, points.
TABLE: tuple[Task, ...] = register_tasks(
    ASSIGNMENT,
    (
        Task(key, f"task{number}-test", number, label, check, points)
        for (key, (number, label, points)), check in zip(
            ROWS.items(), (check_groups, check_stages, check_best, check_predict), strict=True
        )
    ),
)
#: grade_id of each test cell -> how it is scored (derived from :data:`TABLE`).
CHECKS: dict[str, Check] = checks_of(TABLE)

__all__ = [
    "ASSIGNMENT",
    "CHECKS",
    "INPUT_TOLERANCE",
    "MISTAKES",
    "PROBABILITY_TOLERANCE",
    "ROWS",
    "SGD",
    "STATE_TOLERANCE",
    "TABLE",
    "TASKS",
    "check_best",
    "check_groups",
    "check_one_prediction",
    "check_predict",
    "check_stages",
    "prepared",
]
