"""What every check shares: task names, isolation from the caller's state, meta models."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torchvision
from torch import nn

from autograder.feedback import call_student, fail

TASKS = {
    "load": "Task 1 (load VGG16)",
    "freeze": "Task 2 (freeze and unfreeze)",
    "head": "Task 3 (replace the head)",
    "transforms": "Task 4 (transforms)",
    "optimizer": "Task 5 (optimizer)",
    "stats": "Task 6 (channel statistics)",
    "train": "Task 7 (train and evaluate)",
}

#: The lecture's exact bug leaves only the new 10-way head trainable: 4096 * 10 + 10.
LECTURE_BUG_TRAINABLE = 4096 * 10 + 10


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _isolated(seed: int = 0) -> Iterator[None]:
    """Seed torch, keep warnings off stderr, use one CPU thread; restore all of it afterwards.

    One thread because the fixtures are tiny: on a busy machine (parallel autograding) two
    OpenMP threads spin-wait for each other and a 20 ms forward pass takes seconds.
    """
    threads = torch.get_num_threads()
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def _meta_model(name: str) -> nn.Module:
    """A torchvision model with the real architecture and no storage (instant to build)."""
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None)


def _on_meta(task: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a student's model builder on the meta device (instant), or normally if that fails.

    Building VGG16's 138 million random weights takes seconds on a small CPU; only the
    architecture is checked, so the meta device is enough. Code that does not run on the meta
    device gets a normal call: the device is our shortcut and must never cost a point.
    """
    try:
        with torch.device("meta"):
            return function(*args, **kwargs)
    except Exception:  # retried for real, where errors become feedback
        return call_student(task, function, *args, **kwargs)


def _require_module(task: str, value: Any, call: str) -> nn.Module:
    if not isinstance(value, nn.Module):
        fail(
            task,
            "your function did not return a model.",
            expected=f"{call} to return an nn.Module",
            found=f"{type(value).__name__} ({value!r:.60})",
            hint="End the function with `return model`.",
        )
    return value


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _count(params: dict[str, nn.Parameter]) -> int:
    return sum(p.numel() for p in params.values())


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"
