"""The lecture's training loop, made reproducible, resumable and interruptible.

The loop is the one the lecture uses: SGD with momentum, cross-entropy,
``ReduceLROnPlateau`` on validation accuracy, minibatch losses logged, train
and validation accuracy after every epoch, test accuracy at the end. What the
course adds: the device is found automatically, bf16 autocast on a GPU,
seeding, a progress bar, a ``History`` saved as JSON, checkpoints that resume
to the same result, and a clean stop on Ctrl-C.

It trains whatever ``model`` it is given on whatever ``(inputs, labels)`` the
loaders yield, so the same loop trains a full VGG16 on images or just its
trainable tail on cached features.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course.checkpoints import (  # noqa: F401 - CHECKPOINT_NAME re-exported
    CHECKPOINT_NAME,
    load_checkpoint,
    restore,
    save_checkpoint,
    snapshot,
)
from course.errors import CourseError
from course.evaluation import (  # noqa: F401 - re-exported: the lessons import them from here
    autocast_for,
    evaluate,
    frozen_batchnorm,
    pick_device,
    predict,
    seed_everything,
    train_mode,
)

#: The SGD learning rate of all of the lecture's runs (TrainConfig's default).
LECTURE_LR = 0.01


@dataclass
class TrainConfig:
    """Settings for :func:`train`. Defaults are the lecture's unless a comment says otherwise.

    Every field changes what :func:`train` does; none is only documentation. The optimizer
    fields (``lr``, ``momentum``, ``weight_decay``) build the optimizer when ``train`` is given
    none, and are checked against the one it is given otherwise: set one to ``None`` to let
    your optimizer decide (e.g. discriminative learning rates, or Adam without momentum).
    ``batch_size`` is checked against the training loader the same way.
    """

    epochs: int = 50  # the lecture trains every run for 50 epochs
    # The lecture's is 256. None: whatever the train loader yields. A number: train() checks
    # the train loader was built with it, so a config cannot claim a batch size it never used.
    batch_size: int | None = None
    lr: float | None = LECTURE_LR  # SGD learning rate used in all of the lecture's runs
    momentum: float | None = 0.9  # the lecture's SGD momentum
    weight_decay: float | None = 0.0  # the lecture uses none
    scheduler_factor: float = 0.1  # ReduceLROnPlateau(factor=0.1) as in the lecture
    scheduler_patience: int = 10  # PyTorch's default, which the lecture keeps
    seed: int = 123  # the lecture's seed, so splits and shuffles match across runs
    device: str = "auto"  # cuda, then mps, then cpu: the same notebook runs anywhere
    # bf16 autocast on CUDA only: halves memory traffic and needs no loss scaling (unlike
    # fp16). Its effect on accuracy is not measured by this course; set False to compare.
    bf16: bool = True
    progress: bool = True  # tqdm bars; turn off in tests and graded cells (they write stderr)
    verbose: bool = True  # one summary line per epoch, like the lecture's logs
    # The lecture prints the loss every 100 minibatches (1.1-vgg16.ipynb). Here: on the bar when
    # `progress`, else as a printed line when `verbose`; 0 = only the per-epoch line.
    log_every: int = 100
    checkpoint_dir: Path | None = None  # where to save a checkpoint after every epoch
    eval_train: bool = False  # True re-evaluates the whole train split each epoch as the
    # lecture does (one extra forward pass); False reports the running accuracy of the epoch


@dataclass
class History:
    """Everything a run measured, in plain lists so it saves as JSON."""

    minibatch_loss: list[float] = field(default_factory=list)
    # The mean training loss of each epoch over all its examples (what the epoch line prints;
    # the last minibatch's loss alone is one noisy sample of it).
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)  # percent, one per epoch
    valid_acc: list[float] = field(default_factory=list)  # percent, one per epoch
    lr: list[float] = field(default_factory=list)  # learning rate used in each epoch
    epoch_seconds: list[float] = field(default_factory=list)
    batches_per_epoch: int = 0
    test_acc: float | None = None
    # Class indices over the test split, in its order: a confusion matrix or a prediction
    # grid comes from these without another pass over the test set.
    test_predicted: list[int] | None = None
    test_true: list[int] | None = None
    interrupted: bool = False

    @property
    def epochs_done(self) -> int:
        """Number of finished epochs."""
        return len(self.valid_acc)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a history written by :meth:`save`."""
        return cls(**json.loads(Path(path).read_text()))


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    loaders: Mapping[str, Iterable],
    config: TrainConfig | None = None,
    *,
    resume_from: str | Path | None = None,
) -> History:
    """Train ``model`` the lecture's way and return its :class:`History`.

    Args:
        model: the network to train; only parameters the optimizer holds change. BatchNorm
            layers whose parameters are all frozen stay in eval mode (see :func:`train_mode`).
        optimizer: built over the trainable parameters (see the lessons), or ``None``: SGD
            over the trainable parameters with ``config``'s lr, momentum and weight decay.
            When given, its settings must agree with ``config``'s (``None`` fields aside).
        loaders: ``"train"`` and ``"valid"`` are required; ``"test"`` is evaluated at the end.
        config: settings; :class:`TrainConfig` defaults are the lecture's.
        resume_from: a checkpoint file (or the folder holding ``checkpoint.pt``) to go on from.
            The result matches an uninterrupted run with the same seed.

    Ctrl-C stops cleanly: the model keeps the weights of the last finished epoch and the
    history says ``interrupted=True``.

    Raises:
        CourseError: a loader is missing, or ``config`` disagrees with the optimizer or with
            the train loader's batch size (so no setting is silently ignored).
    """
    config = config or TrainConfig()
    for key in ("train", "valid"):
        if key not in loaders:
            raise CourseError(
                f"train() needs a {key!r} loader, but got only {sorted(loaders)}.",
                'Pass loaders={"train": ..., "valid": ...} (course.data.make_loaders builds them).',
            )
    _check_batch_size(loaders["train"], config)
    device = pick_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    if optimizer is None:
        optimizer = _sgd_from(model, config)
    else:
        _check_optimizer(optimizer, config)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.scheduler_factor, patience=config.scheduler_patience
    )
    history = History()
    if resume_from is not None:
        history = History(
            **load_checkpoint(resume_from, model, optimizer, scheduler, loaders, device)
        )

    loss_fn = nn.CrossEntropyLoss()
    saved = snapshot(model)
    try:
        for epoch in range(history.epochs_done, config.epochs):
            _run_epoch(model, optimizer, loaders, config, device, loss_fn, history, epoch)
            scheduler.step(history.valid_acc[-1])
            saved = snapshot(model)
            if config.checkpoint_dir is not None:
                save_checkpoint(
                    config.checkpoint_dir, model, optimizer, scheduler, loaders, history.to_dict()
                )
    except KeyboardInterrupt:
        # Drop the half-finished epoch: the weights go back to its start, and the
        # history never saw it (an epoch is recorded only once it has finished).
        restore(model, saved)
        history.interrupted = True
        if config.verbose:
            print(f"Interrupted: keeping the {history.epochs_done} finished epoch(s).")
        return history

    if "test" in loaders:
        predicted, true = predict(model, loaders["test"], device)
        history.test_predicted, history.test_true = predicted.tolist(), true.tolist()
        history.test_acc = 100.0 * (predicted == true).float().mean().item() if len(true) else None
        if config.verbose:
            print(f"Test accuracy: {history.test_acc:.2f}%")
    return history


# TrainConfig field -> the optimizer's param_group key it must agree with.
_OPTIMIZER_FIELDS = {"lr": "lr", "momentum": "momentum", "weight_decay": "weight_decay"}


def _sgd_from(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD over the trainable parameters, with the config's (the lecture's) settings."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise CourseError(
            "No parameter of the model is trainable, so train() has nothing to optimize.",
            "Unfreeze the layers to train (e.g. the new head) before calling train().",
        )
    settings = {
        key: value
        for key, value in (
            ("lr", config.lr if config.lr is not None else LECTURE_LR),
            ("momentum", config.momentum),
            ("weight_decay", config.weight_decay),
        )
        if value is not None
    }
    return torch.optim.SGD(params, **settings)


def _check_optimizer(optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    """Every optimizer setting the config states must be the optimizer's own, in every group."""
    for field_name, key in _OPTIMIZER_FIELDS.items():
        wanted = getattr(config, field_name)
        if wanted is None:
            continue
        found = sorted({group.get(key) for group in optimizer.param_groups}, key=str)
        if found != [wanted]:
            raise CourseError(
                f"TrainConfig says {field_name}={wanted}, but the optimizer uses "
                f"{key}={', '.join(map(str, found))}: one of the two would be ignored.",
                f"Build the optimizer with {key}=config.{field_name}, or pass optimizer=None "
                f"to let train() build SGD from the config, or set TrainConfig({field_name}="
                "None) when the optimizer decides (e.g. one learning rate per layer group).",
            )


def _check_batch_size(loader: Iterable, config: TrainConfig) -> None:
    """A config that states a batch size must match the train loader's."""
    found = getattr(loader, "batch_size", None)
    if config.batch_size is None or found is None or found == config.batch_size:
        return
    raise CourseError(
        f"TrainConfig says batch_size={config.batch_size}, but the train loader yields "
        f"batches of {found}.",
        "Build the loaders with batch_size=config.batch_size (course.data.make_loaders), "
        "or leave TrainConfig.batch_size at None.",
    )


def _run_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loaders: Mapping[str, Iterable],
    config: TrainConfig,
    device: torch.device,
    loss_fn: nn.Module,
    history: History,
    epoch: int,
) -> None:
    # Plain tqdm: tqdm.auto calls iter() on the loader eagerly, which draws an extra
    # shuffle seed (breaking resume) and, with workers, starts them twice.
    from tqdm import tqdm

    start = time.perf_counter()
    train_mode(model)
    # Losses and hits stay on the device; one transfer per epoch keeps the GPU busy.
    losses: list[torch.Tensor] = []
    correct = torch.zeros((), dtype=torch.long, device=device)
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)  # float64: not on MPS
    seen = 0
    total = f"{len(loaders['train']):04d}" if hasattr(loaders["train"], "__len__") else "?"
    bar = tqdm(
        loaders["train"],
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not config.progress,
        leave=False,
    )
    for inputs, labels in bar:
        inputs = inputs.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with autocast_for(device, config.bf16):
            logits = model(inputs)
            loss = loss_fn(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
        loss_sum += loss.detach().float() * labels.numel()
        correct += (logits.argmax(dim=1) == labels).sum()
        seen += labels.numel()
        if config.log_every and len(losses) % config.log_every == 0:
            if config.progress:
                bar.set_postfix(loss=f"{loss.item():.3f}")
            elif config.verbose:
                print(
                    f"Epoch {epoch + 1:03d}/{config.epochs:03d} | "
                    f"Batch {len(losses):04d}/{total} | Loss {loss.item():.4f}"
                )
    bar.close()

    history.minibatch_loss.extend(torch.stack(losses).float().cpu().tolist() if losses else [])
    history.batches_per_epoch = len(losses)
    if config.eval_train:
        train_acc = evaluate(model, loaders["train"], device)
    else:
        train_acc = 100.0 * correct.item() / max(seen, 1)
    history.train_loss.append(loss_sum.item() / seen if seen else float("nan"))
    history.train_acc.append(train_acc)
    history.valid_acc.append(evaluate(model, loaders["valid"], device))
    history.lr.append(optimizer.param_groups[0]["lr"])
    history.epoch_seconds.append(time.perf_counter() - start)
    if config.verbose:
        print(
            f"Epoch {epoch + 1:03d}/{config.epochs:03d} | "
            f"mean loss {history.train_loss[-1]:.4f} | "
            f"train {train_acc:.2f}% | valid {history.valid_acc[-1]:.2f}% | "
            f"{history.epoch_seconds[-1]:.1f} s"
        )
