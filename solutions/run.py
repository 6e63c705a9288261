"""Run one of the lecture's protocols end to end and record what happened.

Each run writes a folder holding ``results.json`` (accuracies per epoch, test
accuracy, time per epoch, device, versions, protocol, weights and data) and
the plots, and prints a table beside the lecture's reported figures, labelled
as the lecture's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from course.data import CIFAR10Splits, load_cifar10, make_loaders
from course.errors import WeightsError
from course.models import load_model, trainable_parameters
from course.plots import plot_accuracy, plot_confusion_matrix, plot_minibatch_loss, plot_predictions
from course.training import History, TrainConfig, pick_device, train
from solutions.protocols import PROTOCOLS, Protocol
from solutions.transfer import (
    FC_LAYERS,
    build_transforms,
    freeze_backbone,
    lecture_unfreeze,
    make_optimizer,
    replace_head,
    unfreeze,
)

NUM_CLASSES = 10


@dataclass
class RunOptions:
    """What a run may change about a protocol. ``None`` keeps the protocol's own choice."""

    epochs: int = 50  # the lecture's
    subset: int | None = None  # images per class in each split; None = the full splits
    size: int | None = None  # override the input size (the demo uses 64 px on the CPU)
    device: str = "auto"
    weights: str | None = None  # "imagenet", "random", "auto" or a file; None = protocol's
    data: str | None = None  # a CIFAR-10 source, "synthetic", or None to search
    allow_synthetic: bool = False  # fall back to synthetic data when no CIFAR-10 is found
    batch_size: int = 256  # the lecture's
    num_workers: int = 0
    seed: int = 123  # the lecture's
    out: Path = Path("runs")
    fast: bool = False  # solutions.fast: cached features when exact, device-held data always
    compile: bool = False  # torch.compile the trained network (fast path; pays off on a GPU)
    progress: bool = True
    checkpoint: bool = False  # VGG16 checkpoints are ~0.5 GB each: opt in


def resolve_weights(protocol: Protocol, requested: str | None) -> str:
    """The weights a run uses: the protocol's, unless asked otherwise.

    ``"auto"`` takes ImageNet weights when torchvision's cache already holds
    them and random weights otherwise, so a demo never needs the network.
    """
    if not protocol.pretrained:
        if requested not in (None, "random", "auto"):
            raise ValueError(f"The {protocol.name!r} protocol trains from random init by design.")
        return "random"
    return requested or "imagenet"


def _load_vgg16(weights: str) -> nn.Module:
    if weights != "auto":
        return load_model("vgg16", weights)
    try:
        return load_model("vgg16", "imagenet", offline=True)
    except WeightsError:
        return load_model("vgg16", "random")


def prepare_model(protocol: Protocol, weights: str) -> nn.Module:
    """VGG16 with a 10-way head and exactly the protocol's parameters trainable."""
    model = _load_vgg16(weights)
    if protocol.trainable == "lecture-bug":
        return lecture_unfreeze(model)  # freezes, replaces the head, then the lecture's no-op
    if protocol.trainable == "all":
        return replace_head(model, NUM_CLASSES)
    freeze_backbone(model)
    replace_head(model, NUM_CLASSES)  # the new head is created trainable
    if protocol.trainable == "fc":
        unfreeze(model, FC_LAYERS)
    return model


def describe_device(device: torch.device) -> str:
    """A human name for the device: the GPU's model, or the CPU and its core count."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"{device.type}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def run_protocol(protocol: Protocol, options: RunOptions | None = None) -> Path:
    """Train ``protocol`` as ``options`` say; write results and plots; return the run folder."""
    options = options or RunOptions()
    size = options.size or protocol.size
    weights = resolve_weights(protocol, options.weights)
    device = pick_device(options.device)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(options.out) / f"{protocol.name}-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)

    splits = load_cifar10(
        options.data,
        subset=options.subset,
        seed=options.seed,
        allow_synthetic=options.allow_synthetic,
    )
    print(f"data:    {splits.source}")
    torch.manual_seed(options.seed)  # random init (head, or all of VGG16) is seeded too
    model = prepare_model(protocol, weights)
    weights_label = getattr(model, "weights_label", "unknown")
    print(f"weights: {weights_label}")
    print(f"run:     {protocol.name} at {size} px on {describe_device(device)}")

    config = TrainConfig(
        epochs=options.epochs,
        batch_size=options.batch_size,
        seed=options.seed,
        device=str(device),
        progress=options.progress,
        checkpoint_dir=run_dir / "checkpoints" if options.checkpoint else None,
    )
    started = time.perf_counter()
    if options.fast:
        from solutions.fast import train_protocol_fast

        history, _ = train_protocol_fast(
            protocol, splits, model, config, size=size, compile=options.compile
        )
        path_used = (
            "fast: frozen features cached once, trainable tail trained from the cache"
            if protocol.cacheable
            else "fast: images held on the device, resized/cropped/normalized there per batch"
        )
    else:
        history = _train_plain(protocol, splits, model, config, size, options)
        path_used = "plain: every epoch runs the full model on transformed images"
    seconds = time.perf_counter() - started

    results = _results(protocol, options, splits, model, device, history, size, seconds)
    results["path"] = path_used
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    _plots(run_dir, splits, history, results["label"])
    print_table([results], protocol)
    if protocol.pretrained and weights_label.startswith("random"):
        print(
            "note:    these weights are random: the frozen layers compute random features, so\n"
            "         this run shows the pipeline at work, not transfer learning (expect accuracy\n"
            "         far below the lecture's). Put vgg16-397923af.pth in torchvision's cache\n"
            "         (see README) for the real run."
        )
    print(f"data:    {splits.source}")
    print(f"weights: {weights_label}")
    print(f"results: {run_dir / 'results.json'}")
    print(f"plots:   {run_dir}/*.png")
    return run_dir


def _train_plain(
    protocol: Protocol,
    splits: CIFAR10Splits,
    model: nn.Module,
    config: TrainConfig,
    size: int,
    options: RunOptions,
) -> History:
    train_tf, eval_tf = build_transforms(size, protocol.normalization, augment=protocol.augment)
    loaders = make_loaders(
        splits,
        train_tf,
        eval_tf,
        batch_size=config.batch_size,
        num_workers=options.num_workers,
        seed=config.seed,
    )
    optimizer = make_optimizer(model, lr=config.lr, momentum=config.momentum)
    return train(model, optimizer, loaders, config)


def _results(
    protocol: Protocol,
    options: RunOptions,
    splits: CIFAR10Splits,
    model: nn.Module,
    device: torch.device,
    history: History,
    size: int,
    seconds: float,
) -> dict[str, Any]:
    synthetic = splits.synthetic
    weights_label = getattr(model, "weights_label", "unknown")
    label = f"{protocol.name}, {size} px, weights: {weights_label}, data: " + (
        "synthetic" if synthetic else "CIFAR-10"
    )
    return {
        "label": label,
        "protocol": asdict(protocol),
        "size": size,
        "size_is_protocol_default": size == protocol.size,
        "trainable_parameters": trainable_parameters(model),
        "weights": weights_label,
        "data": {
            "source": splits.source,
            "synthetic": synthetic,
            "fingerprint": splits.fingerprint,
            "train": len(splits.train.labels),
            "valid": len(splits.valid.labels),
            "test": len(splits.test.labels),
            "subset_per_class": options.subset,
        },
        "epochs": history.epochs_done,
        "valid_acc": history.valid_acc,
        "train_acc": history.train_acc,
        "test_acc": history.test_acc,
        "lr": history.lr,
        "epoch_seconds": history.epoch_seconds,
        "total_seconds": seconds,
        "interrupted": history.interrupted,
        "minibatch_loss": history.minibatch_loss,
        "batches_per_epoch": history.batches_per_epoch,
        "device": describe_device(device),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "seed": options.seed,
        "batch_size": options.batch_size,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "lecture_reported": asdict(protocol.lecture) if protocol.lecture else None,
    }


def _plots(run_dir: Path, splits: CIFAR10Splits, history: History, label: str) -> None:
    plot_minibatch_loss(history, run_dir / "loss.png", title=f"Loss: {label}")
    plot_accuracy(history, run_dir / "accuracy.png", title=f"Accuracy: {label}")
    if history.test_predicted is None:  # interrupted before the test pass
        return
    # The predictions the test accuracy was computed from: same transform, no second pass.
    predicted, true = history.test_predicted, history.test_true
    plot_confusion_matrix(predicted, true, run_dir / "confusion.png", title=f"Test set: {label}")
    shown = min(15, len(true))
    plot_predictions(
        splits.test.images[:shown],
        predicted[:shown],
        true[:shown],
        run_dir / "predictions.png",
        title=label,
    )


def _fmt_minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


_TRAINS = {
    "lecture-bug": "head only*",
    "head": "head only",
    "fc": "fc6+fc7+head",
    "all": "all layers",
}


def _lecture_rows() -> list[tuple[str, Protocol]]:
    """One row per run the lecture published (linear-probe repeats lecture-large's)."""
    rows, seen = [], set()
    for protocol in PROTOCOLS.values():
        if protocol.lecture is not None and protocol.lecture not in seen:
            seen.add(protocol.lecture)
            rows.append((f"reported by the lecture: {protocol.name}", protocol))
    return rows


def print_table(runs: list[dict[str, Any]], protocol: Protocol) -> None:
    """Print measured runs below the lecture's reported figures, each labelled as what it is."""
    header = (
        f"{'run':<44} {'trains':<13} {'val acc ep 1/2/3':<20} {'test acc':>9} {'50 epochs':>13}"
    )
    print()
    print(header)
    print("-" * len(header))
    for name, reported in _lecture_rows():
        lecture = reported.lecture
        val = " / ".join(f"{v:.1f}" for v in lecture.valid_acc_first_epochs)
        print(
            f"{name:<44} {_TRAINS[reported.trainable]:<13} {val:<20} "
            f"{lecture.test_acc:>8.2f}% {lecture.minutes_50_epochs:>9.1f} min"
        )
    for run in runs:
        val = " / ".join(f"{v:.1f}" for v in run["valid_acc"][:3]) or "-"
        test = f"{run['test_acc']:.2f}%" if run["test_acc"] is not None else "-"
        per_epoch = run["epoch_seconds"]
        # Everything measured (data, cache build, test) plus the epochs not run, at the mean rate.
        projected = (
            run["total_seconds"] + (50 - len(per_epoch)) * sum(per_epoch) / len(per_epoch)
            if per_epoch
            else None
        )
        print(
            f"{'this run: ' + run['protocol']['name'] + ' (measured)':<44} "
            f"{_TRAINS[run['protocol']['trainable']]:<13} {val:<20} {test:>9} "
            f"{_fmt_minutes(projected):>9} (projected)"
        )
        print(f"  {run['label']}; {run['device']}")
    print(
        "Lecture rows: its published notebooks (not measured here), on the original CIFAR-10 "
        "files.\n* the lecture's freezing code changed no parameter: those runs were linear probes."
    )
    print()


def demo_options(out: Path = Path("runs"), epochs: int = 3, subset: int = 100) -> RunOptions:
    """The README's main job: the corrected protocol on a small subset, offline, on 2 CPU cores."""
    return RunOptions(
        epochs=epochs,
        subset=subset,
        size=64,  # 224 px costs 12x the compute: far too slow for a CPU demo
        weights="auto",
        allow_synthetic=True,
        fast=True,
        out=out,
        num_workers=0,
        batch_size=64,  # small subsets: more steps per epoch so the loss visibly falls
    )


def with_overrides(options: RunOptions, **changes: Any) -> RunOptions:
    """A copy of ``options`` with the given fields changed (``None`` values ignored)."""
    return replace(options, **{k: v for k, v in changes.items() if v is not None})
