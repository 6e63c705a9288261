"""The checks of the ``transfer_learning`` exercise: recorded results against the reference.

The exercise's hidden test cells only *record*: :func:`course.grading_record.record_task`
calls the student's function in the grading kernel on inputs built from the run's seed and
saves what it returns. Each ``check_*`` function here runs in the trusted grading process: it
gets that record (plain data, loaded with ``torch.load(weights_only=True)``) and the seed,
rebuilds the same inputs, runs :mod:`solutions.transfer` on them and compares. A failure
raises :class:`~autograder.feedback.CheckFailure` with what was expected, what was found and
a hint. Student code never runs here, and these modules never enter the student's kernel.
"""

from autograder.checks.common import LECTURE_BUG_TRAINABLE, TASKS
from autograder.checks.inputs import check_channel_stats, check_transforms
from autograder.checks.model_surgery import (
    check_freezing,
    check_head_replacement,
    check_load_vgg16,
)
from autograder.checks.training import check_optimizer, check_training
from autograder.scoring import Check

#: grade_id of each test cell -> what it checks (record name = task key).
CHECKS: dict[str, Check] = {
    "task1-test": Check("load", check_load_vgg16),
    "task2-test": Check("freeze", check_freezing),
    "task3-test": Check("head", check_head_replacement),
    "task4-test": Check("transforms", check_transforms),
    "task5-test": Check("optimizer", check_optimizer),
    "task6-test": Check("stats", check_channel_stats),
    "task7-test": Check("train", check_training),
}

__all__ = [
    "CHECKS",
    "LECTURE_BUG_TRAINABLE",
    "TASKS",
    "check_channel_stats",
    "check_freezing",
    "check_head_replacement",
    "check_load_vgg16",
    "check_optimizer",
    "check_training",
    "check_transforms",
]
