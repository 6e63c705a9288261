"""The timed steps of ``bench_fast.py``: one training or evaluation pass, synchronized.

``train_steps`` is ``course.training.train``'s step (forward under bf16 autocast on CUDA,
cross-entropy, backward, SGD step) without its bookkeeping (loss history, accuracy counts,
progress), so the rates measure the computation both paths share.
"""

from __future__ import annotations

import time
from typing import Any

import torch


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA, disabled elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def train_steps(net, optimizer, batches, device) -> int:
    """The training step of course.training.train, without its bookkeeping; returns images."""
    loss_fn = torch.nn.CrossEntropyLoss()
    seen = 0
    net.train()
    for inputs, labels in batches:
        inputs = inputs.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with autocast(device):
            loss = loss_fn(net(inputs).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(labels)
    return seen


def eval_steps(net, batches, device) -> int:
    """Forward passes in inference mode over ``batches``; returns the images seen."""
    seen = 0
    net.eval()
    with torch.inference_mode():
        for inputs, labels in batches:
            with autocast(device):
                net(inputs.to(device, non_blocking=True)).argmax(1)
            seen += len(labels)
    return seen


def timed(fn, device: torch.device) -> tuple[Any, float]:
    """``fn()`` and its wall-clock seconds, the device synchronized on both sides."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start
