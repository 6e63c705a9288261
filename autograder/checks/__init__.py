"""The checks of the ``transfer_learning`` exercise, and its task table.

The exercise's hidden test cells only *record*: :func:`course.grading_record.record_task`
calls the student's function in the grading kernel on inputs built from the task's seed
(given to the kernel only when that test cell starts) and saves what it returns. Each
``check_*`` function here runs in the trusted grading process: it gets that record (plain
data, loaded with ``torch.load(weights_only=True)``) and the seed, rebuilds the same inputs,
runs :mod:`solutions.transfer` on them and compares. A failure raises
:class:`~autograder.feedback.CheckFailure` with what was expected, what was found and a hint.
Student code never runs here, and these modules never enter the student's kernel.

:data:`TASKS` is the exercise's one table of tasks (:class:`autograder.tasks.Task`).
"""

from autograder.checks.common import lecture_bug_trainable
from autograder.checks.inputs import check_channel_stats, check_transforms
from autograder.checks.model_surgery import (
    check_freezing,
    check_head_replacement,
    check_load_vgg16,
)
from autograder.checks.training import check_optimizer, check_training
from autograder.scoring import Check
from autograder.tasks import Task, checks_of, register_tasks

#: The exercise's tasks: key (record + recorder), test cell, number, label, check, points.
TASKS: tuple[Task, ...] = register_tasks(
    "transfer_learning",
    (
        Task("load", "task1-test", 1, "load VGG16", check_load_vgg16, 1),
        Task("freeze", "task2-test", 2, "freeze and unfreeze", check_freezing, 3),
        Task("head", "task3-test", 3, "replace the head", check_head_replacement, 3),
        Task("transforms", "task4-test", 4, "transforms", check_transforms, 3),
        Task("optimizer", "task5-test", 5, "optimizer", check_optimizer, 2),
        Task("stats", "task6-test", 6, "channel statistics", check_channel_stats, 3),
        Task("train", "task7-test", 7, "train and evaluate", check_training, 3),
    ),
)

#: grade_id of each test cell -> how it is scored (derived from :data:`TASKS`).
CHECKS: dict[str, Check] = checks_of(TASKS)

__all__ = [
    "CHECKS",
    "TASKS",
    "check_channel_stats",
    "check_freezing",
    "check_head_replacement",
    "check_load_vgg16",
    "check_optimizer",
    "check_training",
    "check_transforms",
    "lecture_bug_trainable",
]
