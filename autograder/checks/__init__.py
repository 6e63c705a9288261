"""Hidden checks for the ``transfer_learning`` exercise.

Each ``check_*`` function takes the student's function, runs it on fixtures it
builds itself, and compares the result with the reference implementation in
``solutions.transfer`` run on the same fixtures in the same process. A hidden
test cell imports one ``check_*`` function and calls it with the student's function.

Design rules, all of them load-bearing:

- Nothing here reads state from the student's notebook except the function
  under test: fixtures, seeds and expected values are made here, so a notebook
  cannot redefine what "expected" means.
- Every check runs offline on the CPU in well under ten seconds on two cores.
  Where only the *structure* of a large model matters (which parameters train,
  what the head looks like), the model lives on PyTorch's ``meta`` device: no
  memory, no initialization cost.
- A check is quiet on stderr when it passes (nbgrader gives zero points to a
  test cell that writes to stderr), and raises :class:`CheckFailure` with what
  was expected, what was found and a hint when it does not.
- The source exercise is executed with its solutions by
  ``tests/test_exercise_source.py``, and ``tests/test_checks.py`` runs every
  check against ``solutions.transfer``: together they keep the exercise's
  solution regions and ``solutions/`` from drifting apart silently.
"""

from autograder.checks.common import LECTURE_BUG_TRAINABLE, TASKS
from autograder.checks.inputs import check_channel_stats, check_transforms
from autograder.checks.model_surgery import (
    check_freezing,
    check_head_replacement,
    check_load_vgg16,
)
from autograder.checks.training import check_optimizer, check_training

__all__ = [
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
