"""How a failed check talks to a student: what was expected, what was found, and a hint.

The grader writes a failed check's message into the test cell's output on the
feedback page and into the summary, so every message here is complete on its
own: a student who reads nothing else still learns what went wrong and what
to try next.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

_LABEL_WIDTH = len("Expected: ")


def _indent_continuation(text: str) -> str:
    """Indent every line after the first so multi-line values line up under their label."""
    first, *rest = str(text).splitlines() or [""]
    pad = " " * (_LABEL_WIDTH + 2)
    return "\n".join([first, *(pad + line for line in rest)])


class CheckFailure(AssertionError):
    """A check found a problem in a student's answer.

    It subclasses ``AssertionError`` so nbgrader and pytest treat it as a
    failed test, not as a crash.

    Args:
        task: the task's title as the exercise states it, e.g. ``"Task 2 (freezing)"``.
        problem: one sentence naming what is wrong.
        expected: what the reference solution produces on the same input.
        found: what the student's function produced.
        hint: the next concrete step towards a fix.
    """

    def __init__(self, task: str, problem: str, expected: Any, found: Any, hint: str) -> None:
        self.task = task
        self.problem = problem
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        """The multi-line message a student sees."""
        pad = " " * (_LABEL_WIDTH + 2)  # as wide as "  Hint:     ", so lines stay <= 100
        hint = textwrap.fill(
            self.hint, width=100, initial_indent=pad, subsequent_indent=pad, break_long_words=False
        ).lstrip()
        return (
            f"{self.task}: {self.problem}\n"
            f"  Expected: {_indent_continuation(self.expected)}\n"
            f"  Found:    {_indent_continuation(self.found)}\n"
            f"  Hint:     {hint}"
        )


def fail(task: str, problem: str, *, expected: Any, found: Any, hint: str) -> NoReturn:
    """Raise a :class:`CheckFailure` (a helper that reads well at the call site)."""
    raise CheckFailure(task, problem, expected, found, hint)


def fail_from_error(
    task: str, call: str, error: Mapping[str, Any], hint: str | None = None
) -> NoReturn:
    """Report a crash of the student's function, as recorded in the kernel.

    A ``NotImplementedError`` means the stub is still there; any other error is reported with
    its type and message and the call that raised it, so the student can reproduce it in
    their notebook. ``hint`` replaces the generic advice when the check knows the usual cause.
    """
    kind = str(error.get("type", "Exception"))[:80]
    message = str(error.get("message", ""))[:600]
    if error.get("not_implemented"):
        fail(
            task,
            "this task is not done yet.",
            expected=f"{call} to return an answer",
            found="NotImplementedError (the exercise's placeholder)",
            hint="Replace the `raise NotImplementedError(...)` line with your code, "
            "then rerun the cell and its test cell.",
        )
    fail(
        task,
        "your function raised an error.",
        expected=f"{call} to run without errors",
        found=f"{kind}: {message}",
        hint=hint
        or "Run the same call in a new cell to see the full traceback; "
        "the task's text says which inputs your function must handle.",
    )


def summarize(names: Iterable[str], limit: int = 6) -> str:
    """Group parameter names by layer and list at most ``limit`` layers.

    ``features.0.weight``, ``features.0.bias`` become ``features.0 (weight, bias)``:
    students think in layers, not in tensors.
    """
    layers: dict[str, list[str]] = {}
    for name in names:
        layer, _, leaf = name.rpartition(".")
        layers.setdefault(layer or "(model)", []).append(leaf)
    items = [f"{layer} ({', '.join(leaves)})" for layer, leaves in layers.items()]
    if not items:
        return "none"
    shown = ", ".join(items[:limit])
    more = len(items) - limit
    return shown + (f" and {more} more layer{'s' if more > 1 else ''}" if more > 0 else "")
