"""Trusted scoring: what the student's kernel recorded, compared with the reference.

Runs in the grading process, never in the kernel. Every record is untrusted data: it is
loaded with ``torch.load(..., weights_only=True)`` (tensors, numbers, strings, lists and dicts
only; no pickled code), files above :data:`MAX_RECORD_BYTES` are refused, and a record that
is missing or malformed fails that task with a reason, never the whole submission.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.feedback import CheckFailure

log = logging.getLogger(__name__)

#: Checks seed torch's global random generator to rebuild the kernel's inputs: two pool
#: threads scoring at once would interleave their seeds, so scoring takes turns.
SCORING_LOCK = threading.Lock()
#: Largest record file read, in bytes (a MobileNetV3-Small state dict is about 10 MB).
MAX_RECORD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    """How one test cell is scored: the record its hidden test writes, and the comparison.

    ``compare(record, seed)`` returns when the answer is right and raises
    :class:`~autograder.feedback.CheckFailure` (or ``AssertionError``) when it is not.
    """

    record: str
    compare: Callable[[Any, int], None]


@dataclass
class Verdict:
    """The score of one test cell and, when it lost points, why (text a student can read)."""

    grade_id: str
    points: float
    max_points: float
    message: str = ""

    @property
    def passed(self) -> bool:
        """True when the cell got all its points."""
        return self.points >= self.max_points


class RecordError(Exception):
    """A record is missing, too large or not loadable; the message says which."""


def load_record(folder: Path, name: str) -> Any:
    """The record ``name`` the kernel saved in ``folder``, loaded safely."""
    import torch

    path = folder / f"{name}.pt"
    if path.is_symlink() or not path.is_file():
        raise RecordError(
            "no result was recorded for this test: the test cell did not run to its end "
            "(an error or a time-out before it, or the kernel stopped)"
        )
    size = path.stat().st_size
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"the recorded result is too large ({size // 2**20} MiB)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refused or a corrupt file
        raise RecordError(
            f"the recorded result could not be read safely ({type(error).__name__})"
        ) from None


def score_cell(grade_id: str, points: float, check: Check, folder: Path, seed: int) -> Verdict:
    """Score one test cell; any problem with its record or comparison costs only this cell."""
    try:
        record = load_record(folder, check.record)
        check.compare(record, seed)
    except CheckFailure as failure:
        return Verdict(grade_id, 0.0, points, str(failure))
    except AssertionError as failure:
        return Verdict(grade_id, 0.0, points, f"AssertionError: {failure}"[:2000])
    except RecordError as error:
        return Verdict(grade_id, 0.0, points, str(error))
    except Exception as error:  # a malformed record (wrong types inside) fails like a wrong answer
        log.warning("check %s failed on a malformed record", grade_id, exc_info=True)
        return Verdict(
            grade_id,
            0.0,
            points,
            "the recorded result does not have the expected form "
            f"({type(error).__name__}); was the recorder or its output changed?",
        )
    return Verdict(grade_id, points, points)


def score_all(
    checks: Mapping[str, Check], points: Mapping[str, float], folder: Path, seed: int
) -> dict[str, Verdict]:
    """A verdict for every autograded test cell in ``points`` (grade_id -> max points)."""
    verdicts = {}
    with SCORING_LOCK:
        return score_each(checks, points, folder, seed, verdicts)


def score_each(
    checks: Mapping[str, Check],
    points: Mapping[str, float],
    folder: Path,
    seed: int,
    verdicts: dict[str, Verdict],
) -> dict[str, Verdict]:
    """Fill ``verdicts`` with one verdict per test cell (call with :data:`SCORING_LOCK` held)."""
    for grade_id, max_points in points.items():
        check = checks.get(grade_id)
        if check is None:
            raise KeyError(f"no check is registered for the test cell {grade_id!r}")
        verdicts[grade_id] = score_cell(grade_id, max_points, check, folder, seed)
    return verdicts
