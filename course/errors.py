"""Errors a person can fix.

Every error the course raises on bad input names the problem *and* the
remedy, so a student never has to read a traceback from deep inside
torchvision to know what to do next.
"""

from __future__ import annotations


def explain(problem: str, remedy: str) -> str:
    """The text of an error a person can fix: the problem, then how to fix it.

    :class:`CourseError` is worded with it; so are errors that must keep another type
    (a ``FileNotFoundError``) and reasons that are reported rather than raised.
    """
    return f"{problem}\n  How to fix it: {remedy}"


class CourseError(RuntimeError):
    """A problem with the user's input or set-up, with the way to fix it.

    Args:
        problem: what is wrong, naming the file or value involved.
        remedy: what to do about it, as a concrete next step.
    """

    def __init__(self, problem: str, remedy: str) -> None:
        self.problem = problem
        self.remedy = remedy
        super().__init__(explain(problem, remedy))


class DataError(CourseError):
    """Missing, empty, truncated or badly laid out image data."""


class WeightsError(CourseError):
    """Missing weights, weights for another architecture, or a download asked for offline."""
