"""Fine-tuning like a practitioner: the small tools lesson 7 uses.

- :func:`param_group`: unfreeze a part of the network as one optimizer group with its own rate;
- :func:`warmup_cosine`: a per-step schedule, linear warm-up then cosine decay to zero;
- :func:`lr_range_test`: raise the rate step by step, watch the loss, suggest a rate;
- :class:`EarlyStopping`: keep the best-validation state, stop when it stops improving;
- :func:`fit`: a short training loop built from those pieces (per-step schedules, best state);
- :class:`RandomViews`: augmentation on the cached-feature path (a few augmented views of each
  image cached once, one drawn at random per epoch);
- :func:`save_finetuned` / :func:`load_finetuned`: the model *with its preprocessing*, in one file;
- :func:`read_image`, :func:`predict_image`, :func:`flip_tta`: use the model on a new image,
  with or without test-time augmentation (these live in :mod:`course.saved_model`, re-exported
  here).

The second graded exercise asks students to write their own versions of some of these (a
parameter-group optimizer, a two-stage schedule, keeping the best state, ``predict``); these are
the lessons' tools, not the exercise's answers.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from course.errors import CourseError
from course.saved_model import (  # noqa: F401 - re-exported: lesson 7 imports them from here
    FILE_FORMAT,
    flip_tta,
    load_finetuned,
    predict_image,
    preprocess,
    read_image,
    save_finetuned,
)
from course.training import evaluate, train_mode

_BATCHNORM = nn.modules.batchnorm._BatchNorm


# --- optimizer groups and schedules ---


def param_group(
    name: str,
    module: nn.Module,
    lr: float,
    *,
    weight_decay: float = 0.0,
    batchnorm: bool = False,
) -> dict[str, Any]:
    """Unfreeze ``module`` and return its parameters as one optimizer group.

    Args:
        name: kept in the group (``optimizer.param_groups[i]["name"]``), for printouts.
        module: the part of the network this group trains.
        lr: its learning rate.
        weight_decay: its weight decay (SGD's L2 penalty).
        batchnorm: also train the BatchNorm layers' weight and bias. ``False`` leaves them
            frozen, so ``course.training.train_mode`` keeps them in eval mode with their
            running statistics (frozen BatchNorm, lesson 2).

    Raises:
        CourseError: ``module`` has no parameter to train.
    """
    params = [
        p
        for m in module.modules()
        if batchnorm or not isinstance(m, _BATCHNORM)
        for p in m.parameters(recurse=False)
    ]
    if not params:
        raise CourseError(
            f"The group {name!r} has no parameters to train.",
            "Pass the module whose weights should train (e.g. model.features[-1]).",
        )
    for p in params:
        p.requires_grad_(True)
    return {"name": name, "params": params, "lr": lr, "weight_decay": weight_decay}


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    start_factor: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step schedule: warm up linearly, then decay along a half cosine to zero.

    Every group's rate is multiplied by the same factor, so discriminative ratios survive.
    The factor goes from ``start_factor`` to 1 over ``warmup_steps`` optimizer steps, then from
    1 to 0 over the remaining ``total_steps - warmup_steps``. Call ``scheduler.step()`` after
    every ``optimizer.step()`` (:func:`fit` does).

    Raises:
        ValueError: the step counts are inconsistent.
    """
    if total_steps < 1 or not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}"
        )

    def factor(step: int) -> float:
        if step < warmup_steps:
            return start_factor + (1 - start_factor) * step / warmup_steps
        progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class RangeTest:
    """What :func:`lr_range_test` measured: the rate (first group's) and loss of every step."""

    lrs: list[float]
    losses: list[float]  # exponentially smoothed
    suggestion: float  # the rate at the lowest smoothed loss, divided by ``divide``
    lowest: float  # the rate at the lowest smoothed loss


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Iterable,
    *,
    start_lr: float = 1e-5,
    end_lr: float = 1.0,
    steps: int = 100,
    smoothing: float = 0.98,
    diverge: float = 4.0,
    divide: float = 10.0,
    device: str | torch.device = "cpu",
) -> RangeTest:
    """Train for ``steps`` batches with the rate rising geometrically; suggest a rate.

    The first group's rate goes from ``start_lr`` to ``end_lr``; other groups keep their ratio to
    it. The loss is smoothed exponentially (``smoothing`` 0.98, as fastai's ``lr_find``); the
    test stops early once it exceeds ``diverge`` times its lowest value. The suggestion is the
    rate at the lowest smoothed loss divided by ``divide`` (10 is the classic rule of thumb: a
    rate that still learns, safely below where training falls apart). The model's and
    optimizer's states are restored afterwards: the test costs time, not progress.

    Raises:
        ValueError: bad rates, step count or ``divide``.
    """
    if not 0 < start_lr < end_lr or steps < 2 or divide < 1:
        raise ValueError(f"need 0 < start_lr < end_lr and steps >= 2, got {start_lr}, {end_lr}")
    device = torch.device(device)
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    ratios = [g["lr"] / optimizer.param_groups[0]["lr"] for g in optimizer.param_groups]
    gamma = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    modes = {m: m.training for m in model.modules()}
    train_mode(model)
    try:
        batches = _cycle(loader)
        for step in range(steps):
            lr = start_lr * gamma**step
            for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
                group["lr"] = lr * ratio
            inputs, labels = next(batches)
            loss = F.cross_entropy(model(inputs.to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            average = smoothing * average + (1 - smoothing) * loss.item()
            smoothed = average / (1 - smoothing ** (step + 1))  # bias-corrected
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if not math.isfinite(smoothed) or smoothed > diverge * best:
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        for module, mode in modes.items():
            module.training = mode
    finite = [(loss, lr) for loss, lr in zip(losses, lrs, strict=True) if math.isfinite(loss)]
    lowest = min(finite)[1]
    return RangeTest(lrs, losses, suggestion=lowest / divide, lowest=lowest)


def _cycle(loader: Iterable) -> Iterator:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the loader yields no batches")


# --- best state and early stopping ---


class EarlyStopping:
    """Keep the state with the best validation score; say when to stop.

    ``step(score, model)`` after every epoch: a better score (higher, by more than
    ``min_delta``) stores a copy of the model's trainable parameters and buffers; ``patience``
    epochs in a row without one make ``step`` return ``True`` (stop). ``restore(model)`` puts
    the best state back. With ``patience=None`` it never says stop and only keeps the best.

    Once it has said stop it ignores later epochs, so it still holds what an early-stopped run
    would have kept. With ``stop_training=False``, :func:`fit` keeps training anyway: one run
    then gives both the early-stopped state and the last epoch's (training is deterministic
    for a given seed, so the early-stopped run is this run cut short).
    """

    def __init__(
        self, patience: int | None = 3, min_delta: float = 0.0, *, stop_training: bool = True
    ) -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be at least 1 (or None), not {patience}")
        self.patience = patience
        self.min_delta = min_delta
        self.stop_training = stop_training
        self.best: float = -math.inf
        self.best_epoch: int = 0  # 1-based; 0 until the first step
        self.epochs_seen = 0
        self.stopped_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def step(self, score: float, model: nn.Module) -> bool:
        """Record one epoch's validation score; ``True`` means: stop training now."""
        if self.stopped_epoch is not None:
            return True  # already stopped: later epochs would not exist in a stopped run
        self.epochs_seen += 1
        if score > self.best + self.min_delta:
            self.best, self.best_epoch = score, self.epochs_seen
            self._state = _trainable_state(model)
            return False
        if self.patience is not None and self.epochs_seen - self.best_epoch >= self.patience:
            self.stopped_epoch = self.epochs_seen
            return True
        return False

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best state kept so far into ``model`` and return it."""
        if self._state is None:
            raise CourseError(
                "EarlyStopping.restore() was called before any epoch was recorded.",
                "Call step(valid_score, model) after every epoch first.",
            )
        model.load_state_dict(self._state, strict=False)
        return model


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    # What training can change: trainable parameters and buffers (BatchNorm statistics).
    state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    state.update({n: b.detach().clone() for n, b in model.named_buffers()})
    return state


# --- a short training loop ---


@dataclass
class FitHistory:
    """What :func:`fit` measured, one entry per epoch run."""

    train_loss: list[float] = field(default_factory=list)  # the epoch's mean loss
    valid_acc: list[float] = field(default_factory=list)  # percent
    lr: list[float] = field(default_factory=list)  # first group's rate at the epoch's end
    seconds: float = 0.0
    best_epoch: int | None = None  # set when an EarlyStopping was passed
    stopped_epoch: int | None = None  # the epoch early stopping stopped after, if it did


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loaders: Mapping[str, Iterable],
    *,
    epochs: int,
    scheduler: Any | None = None,
    stopper: EarlyStopping | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> FitHistory:
    """Train ``model`` for up to ``epochs`` epochs; validate after each.

    Args:
        model: what trains; frozen BatchNorm stays in eval mode (``train_mode``).
        optimizer: over the parameters that train (e.g. :func:`param_group` groups).
        loaders: ``"train"`` and ``"valid"`` iterables of ``(inputs, labels)``.
        epochs: the most epochs to run.
        scheduler: stepped after every optimizer step (e.g. :func:`warmup_cosine`).
        stopper: an :class:`EarlyStopping`; training stops when it says so (unless its
            ``stop_training`` is ``False``), and the model keeps its *last* weights (call
            ``stopper.restore(model)`` for the best).
        seed: seeds dropout (the loaders carry their own shuffling seeds).
        device: where to train.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    model.to(device)
    history = FitHistory()
    start = time.perf_counter()
    for _ in range(epochs):
        train_mode(model)
        total, seen = 0.0, 0
        for inputs, labels in loaders["train"]:
            inputs, labels = inputs.to(device), labels.to(device)
            loss = F.cross_entropy(model(inputs), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.item() * len(labels)
            seen += len(labels)
        history.train_loss.append(total / max(seen, 1))
        history.valid_acc.append(evaluate(model, loaders["valid"], device))
        history.lr.append(optimizer.param_groups[0]["lr"])
        if stopper is not None:
            stop = stopper.step(history.valid_acc[-1], model)
            history.best_epoch = stopper.best_epoch
            history.stopped_epoch = stopper.stopped_epoch
            if stop and stopper.stop_training:
                break
    history.seconds = time.perf_counter() - start
    return history


class RandomViews:
    """Batches of cached features where each image shows one of its augmented views per epoch.

    Augmentation draws a new crop or flip every epoch, which a feature cache cannot follow.
    A middle way: augment each training image a few times *once*, cache the frozen part's
    output of every view, and let every epoch pick one view per image at random. It is
    weaker than fresh augmentation (a few views, not endless ones) and exact otherwise.

    Args:
        views: ``(V, N, ...)`` cached features of V views of N images.
        labels: ``(N,)``.
        batch_size: images per batch.
        seed: seeds the shuffle and the choice of views (same seed, same batches).
    """

    def __init__(
        self, views: torch.Tensor, labels: torch.Tensor, *, batch_size: int, seed: int = 0
    ) -> None:
        if views.ndim < 2 or views.shape[1] != len(labels):
            raise ValueError(f"views {tuple(views.shape)} do not match {len(labels)} labels")
        self.views, self.labels, self.batch_size = views, labels, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator)
        chosen = torch.randint(len(self.views), (n,), generator=self.generator)
        for low in range(0, n, self.batch_size):
            index = order[low : low + self.batch_size]
            yield self.views[chosen[index], index].float(), self.labels[index]
