"""What the checks of "Fine-tuning in stages" share: task names, tolerances, small helpers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from autograder.feedback import summarize
from solutions import staged as reference

ASSIGNMENT = "fine_tuning_in_stages"
#: Task key -> (number, label, points): the source of the table in ``autograder.checks.staged``.
ROWS = {
    "groups": (1, "parameter groups", 3),
    "stages": (2, "training in stages", 3),
    "best": (3, "keeping the best state", 3),
    "predict": (4, "predict", 3),
}
#: Task key -> how feedback names it, e.g. "Task 1 (parameter groups)".
TASKS = {key: f"Task {number} ({label})" for key, (number, label, _) in ROWS.items()}
#: Weights after training may differ by float rounding between the kernel and this process.
STATE_TOLERANCE = {"atol": 1e-4, "rtol": 1e-3}
#: Model input: resizing with PIL instead of tensors moves values by at most 0.026 (measured).
INPUT_TOLERANCE = 0.1
#: Predicted probability: PIL-resized inputs change it by less than 0.001 (measured).
PROBABILITY_TOLERANCE = 0.005
SGD = f"{torch.optim.SGD.__module__}.{torch.optim.SGD.__qualname__}"


def is_close(a: float | None, b: float) -> bool:
    """True when ``a`` is a number equal to ``b`` up to float rounding."""
    return isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def held_indices(groups: Sequence[Mapping[str, Any]]) -> list[int]:
    """Every parameter position the recorded groups hold, in order (repeats kept)."""
    return [int(i) for g in groups for i in g.get("params", [])]


def rate_of(groups: Sequence[Mapping[str, Any]]) -> dict[int, Any]:
    """Parameter position -> the learning rate of the recorded group holding it."""
    return {int(i): g.get("lr") for g in groups for i in g.get("params", [])}


def names_of(model: torch.nn.Module, indices: Any) -> str:
    """The parameters at ``indices``, by name, shortened for feedback."""
    names = [n for n, _ in model.named_parameters()]
    return summarize(names[i] for i in sorted(indices) if 0 <= i < len(names))


def head_indices(model: torch.nn.Module) -> set[int]:
    """Positions of the head's parameters (the reference's ``head_of``)."""
    index = {id(p): i for i, p in enumerate(model.parameters())}
    return {index[id(p)] for p in reference.head_of(model).parameters()}
