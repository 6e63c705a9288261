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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from course.data import CIFAR10Splits, load_cifar10, make_loaders
from course.errors import CourseError, WeightsError
from course.features import estimate_batchnorm_statistics, resize_normalize
from course.models import calibrate_batchnorm, load_model, trainable_parameters
from course.plots import plot_accuracy, plot_confusion_matrix, plot_minibatch_loss, plot_predictions
from course.quick import machine_label
from course.training import History, TrainConfig, pick_device, train
from solutions.lecture_vgg16 import LectureVGG16
from solutions.protocols import PROTOCOLS, Protocol, normalization_for
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

#: Networks the pretrained protocols run on: the lecture's VGG16, and the offline ImageNet
#: MobileNetV2 (``../shared/data/mobilenet-v2-imagenet``) for machines without VGG16's weights.
ARCHES = ("vgg16", "mobilenet_v2")

#: Where each network's "last block" starts (protocol ``last-block``): VGG16's conv5 block
#: (features[24:], then fc6/fc7 train too), MobileNetV2's last inverted residual and its
#: final 1x1 convolution (features[17:]).
LAST_BLOCK = {"vgg16": 24, "mobilenet_v2": 17}


@dataclass
class RunOptions:
    """What a run may change about a protocol. ``None`` keeps the protocol's own choice."""

    epochs: int = 50  # the lecture's
    arch: str = "vgg16"  # the network of the pretrained protocols (see ARCHES)
    subset: int | None = None  # images per class in each split; None = the full splits
    size: int | None = None  # override the input size (the demo uses 64 px on the CPU)
    device: str = "auto"
    weights: str | None = None  # "imagenet", "random", "auto" or a file; None = protocol's
    data: str | None = None  # a CIFAR-10 source, "synthetic", or None to search
    allow_synthetic: bool = False  # fall back to synthetic data when no CIFAR-10 is found
    batch_size: int = 256  # the lecture's; also bounds memory (cache build and evaluation)
    num_workers: int = 0
    seed: int = 123  # the lecture's
    out: Path = Path("runs")
    fast: bool = False  # solutions.fast: cached features when exact, device-held data always
    compile: bool = False  # torch.compile the trained network (fast path; pays off on a GPU)
    progress: bool = True
    checkpoint: bool = False  # VGG16 checkpoints are ~0.5 GB each: opt in
    cut: str | None = None  # fast path: cache the input of this module (share caches)
    quiet_table: bool = False  # skip the table beside the lecture's figures (the demo)


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


def _load(arch: str, weights: str) -> nn.Module:
    if weights != "auto":
        return load_model(arch, weights)
    try:
        return load_model(arch, "imagenet", offline=True)
    except WeightsError:
        return load_model(arch, "random")


def prepare_model(protocol: Protocol, weights: str, arch: str = "vgg16") -> nn.Module:
    """The protocol's network with a 10-way head and exactly its parameters trainable.

    ``scratch`` is the lecture's own VGG16 (``solutions.lecture_vgg16``) whatever ``arch``
    says: that is the network its 84.58% was measured on.

    Raises:
        CourseError: ``arch`` is unknown, or the protocol names layers ``arch`` lacks.
    """
    if protocol.trainable == "all":
        return LectureVGG16(NUM_CLASSES)
    if arch not in ARCHES:
        raise CourseError(
            f"Unknown network {arch!r} for the pretrained protocols.",
            f"Use one of: {', '.join(ARCHES)}.",
        )
    if arch != "vgg16" and protocol.trainable in ("lecture-bug", "fc"):
        raise CourseError(
            f"The {protocol.name!r} protocol trains VGG16's fc6 and fc7; {arch} has no such "
            "layers.",
            f"Run it with --arch vgg16, or run linear-probe or last-block on {arch}.",
        )
    model = _load(arch, weights)
    if protocol.trainable == "lecture-bug":
        return lecture_unfreeze(model)  # freezes, replaces the head, then the lecture's no-op
    freeze_backbone(model)
    replace_head(model, NUM_CLASSES)  # the new head is created trainable
    if protocol.trainable in ("fc", "last-block") and arch == "vgg16":
        unfreeze(model, FC_LAYERS)
    if protocol.trainable == "last-block":
        model.features[LAST_BLOCK[arch] :].requires_grad_(True)
    return model


def describe_device(device: torch.device) -> str:
    """A human name for the device: the GPU's model, or the CPU's model and its core count."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"{device.type}: {machine_label().split(' | ')[0]}"


def load_average() -> str:
    """The 1/5/15-minute load average, for timings measured on a shared machine."""
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def run_protocol(
    protocol: Protocol, options: RunOptions | None = None, splits: CIFAR10Splits | None = None
) -> Path:
    """Train ``protocol`` as ``options`` say; write results and plots; return the run folder.

    The first and the last line printed name the data, the weights and the machine.
    ``splits``: data loaded already (the demo loads it once for two runs); ``None`` loads it
    as ``options`` say.
    """
    options = options or RunOptions()
    size = options.size or protocol.size
    weights = resolve_weights(protocol, options.weights)
    device = pick_device(options.device)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    arch = "lecture VGG16" if protocol.trainable == "all" else options.arch
    run_dir = Path(options.out) / f"{protocol.name}-{_slug(arch)}-{stamp}"

    started = time.perf_counter()
    splits = splits or load_cifar10(
        options.data,
        subset=options.subset,
        seed=options.seed,
        allow_synthetic=options.allow_synthetic,
    )
    torch.manual_seed(options.seed)  # random init (head, or all of VGG16) is seeded too
    model = prepare_model(protocol, weights, options.arch)
    prepare_batchnorm(model, protocol, splits, size, options.batch_size)
    weights_label = getattr(model, "weights_label", "unknown")
    print(_identity_line(f"run {protocol.name} ({arch}, {size} px)", splits, weights_label))
    run_dir.mkdir(parents=True, exist_ok=True)

    config = TrainConfig(
        epochs=options.epochs,
        batch_size=options.batch_size,
        seed=options.seed,
        device=str(device),
        progress=options.progress,
        checkpoint_dir=run_dir / "checkpoints" if options.checkpoint else None,
    )
    if options.fast:
        from solutions.fast import train_protocol_fast

        history, _ = train_protocol_fast(
            protocol, splits, model, config, size=size, compile=options.compile, cut=options.cut
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

    results = _results(protocol, options, splits, model, device, history, size, seconds, config)
    results["path"] = path_used
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    _plots(run_dir, splits, history, plot_title(results))
    if not options.quiet_table:
        print_table([results], protocol)
    if protocol.pretrained and weights_label.startswith("random"):
        print(
            "note:    these weights are random: the frozen layers compute random features, so\n"
            "         this run shows the pipeline at work, not transfer learning. Put\n"
            "         vgg16-397923af.pth in torchvision's cache, or ../shared/data/mobilenet-v2-\n"
            "         imagenet beside the checkout (see README), for pretrained features."
        )
    print(f"results: {run_dir / 'results.json'} (+ plots *.png); {seconds:.0f} s")
    print(_identity_line(f"done: test {_pct(history.test_acc)}", splits, weights_label))
    return run_dir


#: Training images whose statistics BatchNorm layers get (see prepare_batchnorm).
BATCHNORM_IMAGES = 512


def prepare_batchnorm(
    model: nn.Module, protocol: Protocol, splits: CIFAR10Splits, size: int, batch_size: int
) -> None:
    """Give BatchNorm layers statistics that mean something, and say so in the weights label.

    - Random weights (a random MobileNetV2 as the baseline of a probe): torchvision's init
      leaves mean 0 / variance 1, which normalize nothing, so features would be near-constant;
      the statistics are measured on training images (``estimate_batchnorm_statistics``).
    - Pretrained weights whose BatchNorm trains (``last-block`` on the offline MobileNetV2,
      whose BatchNorm is folded): train mode would normalize with batch statistics unlike the
      stored ones and wreck the features, so they are re-calibrated first, keeping what the
      network computes in eval mode (``course.models.calibrate_batchnorm``).
    Networks without BatchNorm (VGG16) are left alone.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers or protocol.trainable == "all":
        return
    _, mean, std = normalization_for(protocol, model)
    images = splits.train.images[:BATCHNORM_IMAGES]
    label = getattr(model, "weights_label", "unknown")
    if label.startswith("random"):
        estimate_batchnorm_statistics(
            model, images, size=size, mean=mean, std=std, batch_size=batch_size
        )
        model.weights_label = f"{label}; BatchNorm statistics from {len(images)} training images"
    elif any(p.requires_grad for m in layers for p in m.parameters()):
        batches = [
            resize_normalize(images[lo : lo + batch_size], size, mean, std)
            for lo in range(0, len(images), batch_size)
        ]
        # Only the layers that will train need train-mode statistics. calibrate_batchnorm
        # keeps each layer's eval function, so the frozen ones get their exact tensors back:
        # the frozen prefix, and so its feature cache, stays the linear probe's.
        frozen = {
            m: {k: v.clone() for k, v in m.state_dict().items()}
            for m in layers
            if not any(p.requires_grad for p in m.parameters())
        }
        calibrate_batchnorm(model, batches)
        for layer, state in frozen.items():
            layer.load_state_dict(state)
        model.weights_label = (
            f"{label}; BatchNorm re-calibrated on {len(images)} training images before "
            "fine-tuning (eval outputs unchanged)"
        )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def data_summary(splits: CIFAR10Splits) -> str:
    """Real or synthetic, which copy, and how many images: one short phrase."""
    sizes = "/".join(str(len(getattr(splits, n).labels)) for n in ("train", "valid", "test"))
    if splits.synthetic:
        return f"synthetic images, NOT CIFAR-10 ({sizes} train/valid/test)"
    copy = "JPEG copy of CIFAR-10" if "jpeg" in splits.source.lower() else "CIFAR-10"
    return f"{copy} ({sizes} train/valid/test)"


def _identity_line(what: str, splits: CIFAR10Splits, weights_label: str) -> str:
    return (
        f"{what} | data: {data_summary(splits)} | weights: {weights_label} | "
        f"machine: {machine_label()}"
    )


def _train_plain(
    protocol: Protocol,
    splits: CIFAR10Splits,
    model: nn.Module,
    config: TrainConfig,
    size: int,
    options: RunOptions,
) -> History:
    _, mean, std = normalization_for(protocol, model)
    train_tf, eval_tf = build_transforms(size, (mean, std), augment=protocol.augment)
    loaders = make_loaders(
        splits,
        train_tf,
        eval_tf,
        batch_size=config.batch_size,
        num_workers=options.num_workers,
        seed=config.seed,
    )
    # The config's optimizer settings, all of them: the plain and the fast path train alike.
    optimizer = make_optimizer(
        model, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
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
    config: TrainConfig,
) -> dict[str, Any]:
    synthetic = splits.synthetic
    weights_label = getattr(model, "weights_label", "unknown")
    network = "lecture's VGG16" if protocol.trainable == "all" else options.arch
    label = f"{protocol.name}, {network}, {size} px, weights: {weights_label}, data: " + (
        "synthetic" if synthetic else "CIFAR-10"
    )
    norm_name, mean, std = normalization_for(protocol, model)
    return {
        "label": label,
        "protocol": asdict(protocol),
        "network": network,
        "trained": _TRAINS[protocol.trainable],
        "normalization": {"name": norm_name, "mean": list(mean), "std": list(std)},
        "optimizer": {
            "name": "SGD",
            "lr": config.lr,
            "momentum": config.momentum,
            "weight_decay": config.weight_decay,
        },
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
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "description": machine_label(),
            "load_average_at_end": load_average(),
        },
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "seed": options.seed,
        "batch_size": options.batch_size,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "lecture_reported": asdict(protocol.lecture) if protocol.lecture else None,
    }


def plot_title(results: dict[str, Any], width: int = 64) -> str:
    """A plot title that fits inside the PNG: what ran on one line, the weights on the next."""
    data = "synthetic data" if results["data"]["synthetic"] else "CIFAR-10"
    what = f"{results['protocol']['name']}, {results['network']}, {results['size']} px, {data}"
    weights = f"weights: {results['weights']}"
    if len(weights) > width:
        weights = weights[: width - 3].rstrip() + "..."
    return f"{what}\n{weights}"


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
    "last-block": "last block+head",
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
        f"{'run':<44} {'trains':<15} {'val acc ep 1/2/3':<20} {'test acc':>9} {'50 epochs':>13}"
    )
    print()
    print(header)
    print("-" * len(header))
    for name, reported in _lecture_rows():
        lecture = reported.lecture
        val = " / ".join(f"{v:.1f}" for v in lecture.valid_acc_first_epochs)
        print(
            f"{name:<44} {_TRAINS[reported.trainable]:<15} {val:<20} "
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
            f"{_TRAINS[run['protocol']['trainable']]:<15} {val:<20} {test:>9} "
            f"{_fmt_minutes(projected):>9} (projected)"
        )
        print(f"  {run['label']}; {run['device']}")
    print(
        "Lecture rows: its published notebooks (not measured here), on the original CIFAR-10 "
        "files.\n* the lecture's freezing code changed no parameter: those runs were linear probes."
    )
    print()
