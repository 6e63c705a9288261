"""Checkpoints of :func:`course.training.train`: save, resume, and undo a half epoch.

A checkpoint holds the weights, the optimizer and scheduler, the history and every random
state (Python, NumPy, torch, CUDA, the train loader's shuffling), so a resumed run ends
exactly where an uninterrupted one would.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from course.errors import CourseError

#: The checkpoint's file name inside ``TrainConfig.checkpoint_dir``.
CHECKPOINT_NAME = "checkpoint.pt"


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of what training can change in ``model``, for :func:`restore`."""
    # Only what training can change: trainable parameters and buffers (BatchNorm stats).
    # Frozen parameters never move, so a linear probe's snapshot is tiny.
    state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    state.update({n: b.detach().clone() for n, b in model.named_buffers()})
    return state


def restore(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> None:
    """Put back what :func:`snapshot` copied."""
    model.load_state_dict(snapshot, strict=False)


def train_generator(loaders: Mapping[str, Iterable]) -> torch.Generator | None:
    """The random generator that shuffles the train loader, if it has one."""
    loader = loaders["train"]
    if isinstance(loader, DataLoader):
        return loader.generator
    return getattr(loader, "generator", None)


def save_checkpoint(
    folder: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loaders: Mapping[str, Iterable],
    history: dict[str, Any],
) -> Path:
    """Write everything a resumed run needs (weights, optimizer, scheduler, the history as a
    dict, every random state) to ``folder/checkpoint.pt``; return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator = train_generator(loaders)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": history,
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "loader": generator.get_state() if generator is not None else None,
        },
    }
    # Write then rename, so a crash mid-save never leaves a broken checkpoint behind.
    tmp = folder / (CHECKPOINT_NAME + ".tmp")
    torch.save(state, tmp)
    tmp.replace(folder / CHECKPOINT_NAME)
    return folder / CHECKPOINT_NAME


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loaders: Mapping[str, Iterable],
    device: torch.device,
) -> dict[str, Any]:
    """Load a :func:`save_checkpoint` file into the objects given; return the history dict.

    Raises:
        CourseError: no checkpoint there, or one that does not fit the model.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CourseError(
            f"No checkpoint at {path}.",
            "Pass the checkpoint_dir of an earlier run (it holds checkpoint.pt), or start afresh.",
        )
    try:
        # Our own files hold RNG states (numpy tuples), which weights_only refuses.
        state = torch.load(path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (RuntimeError, KeyError, EOFError, OSError) as err:
        raise CourseError(
            f"The checkpoint {path} could not be loaded ({type(err).__name__}: {err}).",
            "Resume only with a checkpoint written by course.training for the same model; "
            "delete it to start afresh.",
        ) from err
    rng = state["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    generator = train_generator(loaders)
    if generator is not None and rng["loader"] is not None:
        generator.set_state(rng["loader"].cpu())
    return state["history"]
