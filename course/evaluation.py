"""Devices, seeding, train and eval modes, and evaluation: what training and testing share.

:func:`course.training.train` uses these, and so do the lessons (through
``course.training``, which re-exports them).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from course.errors import CourseError


def pick_device(preference: str = "auto") -> torch.device:
    """Return ``preference`` as a device; ``"auto"`` picks cuda, then mps, then cpu."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CourseError(
            f"Device {preference!r} was asked for, but PyTorch sees no CUDA GPU here.",
            'Use device="auto" (or "cpu"), or install a CUDA build of PyTorch on a GPU machine.',
        )
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def frozen_batchnorm(module: nn.Module) -> bool:
    """True for a BatchNorm layer that has parameters and none of them trains."""
    if not isinstance(module, nn.modules.batchnorm._NormBase):
        return False
    params = list(module.parameters(recurse=False))
    return bool(params) and not any(p.requires_grad for p in params)


def train_mode(model: nn.Module) -> nn.Module:
    """Put ``model`` in training mode, except BatchNorm layers whose parameters are all frozen.

    Why: in training mode a BatchNorm normalizes with the statistics of each batch and
    overwrites its running statistics. A frozen pretrained layer must keep computing what it
    computed on ImageNet; with batch statistics the features change every batch (for the
    offline MobileNetV2, whose BatchNorm is folded into the convolutions, they are destroyed:
    0% agreement with the original), and a feature cache would no longer be exact. So frozen
    BatchNorm stays in eval mode, as "frozen" means. A BatchNorm that trains (or has no
    parameters) follows the model. Dropout follows the model too, as in the lecture.
    """
    model.train()
    for module in model.modules():
        if frozen_batchnorm(module):
            module.eval()
    return model


class _EvalMode:
    """Eval mode inside a ``with`` block; afterwards every module gets its own mode back."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes = {m: m.training for m in model.modules()}

    def __enter__(self) -> nn.Module:
        return self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for module, mode in self.modes.items():
            module.training = mode


def autocast_for(device: torch.device, enabled: bool) -> Any:
    """The forward pass's precision context: bf16 autocast on CUDA when ``enabled``, else none.

    bf16 keeps float32's exponent range, so no loss scaling is needed, unlike fp16. On the
    CPU nothing changes.
    """
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.inference_mode()
def predict(
    model: nn.Module, loader: Iterable, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(predicted, true)`` class indices over a loader, on the CPU."""
    device = _model_device(model) if device is None else torch.device(device)
    predicted, true = [], []
    with _EvalMode(model):
        for inputs, labels in loader:
            with autocast_for(device, True):
                logits = model(inputs.to(device, non_blocking=True))
            # Kept on the device: one transfer at the end, not one wait per batch.
            predicted.append(logits.argmax(dim=1))
            true.append(labels)
    if not predicted:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    return torch.cat(predicted).cpu(), torch.cat(true).cpu()


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device | str | None = None) -> float:
    """Return the accuracy in percent of ``model`` over ``loader`` (eval mode, no grad)."""
    device = _model_device(model) if device is None else torch.device(device)
    # Hits are counted on the device: one transfer at the end, not one per batch.
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    with _EvalMode(model):
        for inputs, labels in loader:
            labels = labels.to(device, non_blocking=True)
            with autocast_for(device, True):
                logits = model(inputs.to(device, non_blocking=True))
            correct += (logits.argmax(dim=1) == labels).sum()
            seen += labels.numel()
    return 100.0 * correct.item() / seen if seen else float("nan")


def _model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")
