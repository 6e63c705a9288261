"""What every check shares: task names, reading recorded results, reference models, formats.

A check runs in the trusted grading process. It receives what the student's kernel recorded
for one task (:mod:`course.grading_record`: plain data loaded with ``weights_only=True``) and
the seed those inputs were built from; it rebuilds the same inputs, runs the reference in
:mod:`solutions.transfer`, compares, and raises :class:`~autograder.feedback.CheckFailure`
with what was expected, what was found and a hint. No student code runs here.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn

import torch
from torch import nn

from autograder.feedback import fail, fail_from_error


def title(key: str) -> str:
    """The task's label in feedback, from the exercise's task table: "Task 1 (load VGG16)"."""
    from autograder.tasks import title as task_title

    return task_title(key)


def lecture_bug_trainable(head_in: int, classes: int) -> int:
    """The lecture's exact bug leaves only the new head trainable: ``in * classes + classes``
    (4096 * 10 + 10 = 40,970 on VGG16 with CIFAR-10's 10 classes)."""
    return head_in * classes + classes


@contextlib.contextmanager
def isolated(seed: int = 0) -> Iterator[None]:
    """Seed torch and keep warnings quiet while the reference runs; restore the RNG after."""
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        yield


def entry(record: Any, key: str) -> Any:
    """``record[key]``; a malformed record fails like a wrong answer, with a clear reason."""
    if not isinstance(record, Mapping) or key not in record:
        raise MalformedRecord(f"the recorded result has no {key!r}")
    return record[key]


class MalformedRecord(ValueError):
    """What the kernel saved does not have the form the recorder writes."""


def raise_if_error(task: str, record: Any, call: str, hint: str | None = None) -> None:
    """Turn a recorded crash of the student's function into feedback."""
    if isinstance(record, Mapping) and isinstance(record.get("error"), Mapping):
        fail_from_error(task, call, record["error"], hint=hint)


def require_module(task: str, described: Any, call: str) -> Mapping[str, Any]:
    """The recorded description of a returned model, or a failure saying none was returned."""
    if not isinstance(described, Mapping) or not described.get("is_module"):
        found = described.get("repr", "?") if isinstance(described, Mapping) else "?"
        fail(
            task,
            "your function did not return a model.",
            expected=f"{call} to return an nn.Module",
            found=str(found),
            hint="End the function with `return model`.",
        )
    return described


def shapes(model: nn.Module) -> dict[str, list[int]]:
    """State-dict entry -> shape, as the recorder writes it."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def trainable_names(described: Mapping[str, Any]) -> list[str]:
    """Names of recorded parameters that require grad, in model order."""
    return [n for n, flag in dict(described.get("requires_grad", {})).items() if flag]


def count(names: Sequence[str], sizes: Mapping[str, Sequence[int]]) -> int:
    """Number of values in the named tensors."""
    return sum(math.prod(sizes.get(n, [])) for n in names)


def fmt(values: Sequence[float]) -> str:
    """Numbers as ``(0.1234, 0.5678, ...)``."""
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"


def unreachable() -> NoReturn:  # pragma: no cover - fail() never returns
    raise AssertionError("unreachable")
