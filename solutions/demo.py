"""``python -m solutions demo``: transfer learning shown end to end in minutes on a laptop CPU.

What it runs: a linear probe (only a new 10-way head trains) on frozen features of the best
pretrained network this machine holds (``course.quick.quick_weights``: VGG16's ImageNet
weights from torchvision's cache, else the offline ImageNet MobileNetV2), on a real CIFAR-10
subset from ``../shared/data``; then the same probe on the same network with *random* weights,
so the difference is the transfer effect itself. Frozen features are computed once and cached
(``course.features``), so the probe's epochs cost almost nothing.

Fallbacks, each labelled on the output: random weights when no pretrained network is found,
synthetic images when no CIFAR-10 is found. The first and the last line name the data, the
weights and the machine; the total time is printed (measured, never asserted).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from course.data import load_cifar10
from course.machine import load_average, machine_label
from course.quick import QuickWeights, quick_weights
from solutions.protocols import get_protocol
from solutions.run import RunOptions, run_protocol
from solutions.run_report import data_summary

#: Input size per network: 96 px is where MobileNetV2's frozen features start to pay off
#: (../shared/data/mobilenet-v2-imagenet/README.md: 64.9% at 96 px, 100 images a class);
#: VGG16 costs ~7x more an image, so it keeps the lecture's small 64 px.
DEMO_SIZE = {"mobilenet_v2": 96, "vgg16": 64}


@dataclass(frozen=True)
class DemoSettings:
    """What ``make demo`` runs; the defaults fit about three minutes on 2 CPU cores."""

    subset: int = 100  # images per class in each split (1,000 train / 1,000 valid / 1,000 test)
    epochs: int = 30  # epochs of the head on cached features: milliseconds each
    batch_size: int = 64  # also bounds memory in the feature build
    out: Path = Path("runs")
    data: str | None = None  # a CIFAR-10 source; None searches (../shared/data included)
    contrast: bool = True  # also probe random features of the same network


def demo_options(settings: DemoSettings, choice: QuickWeights, weights: str) -> RunOptions:
    """The run options of one demo run (``weights``: the choice's, or ``"random"``)."""
    return RunOptions(
        epochs=settings.epochs,
        arch=choice.name,
        subset=settings.subset,
        size=DEMO_SIZE.get(choice.name, 64),
        weights=weights,
        data=settings.data,
        allow_synthetic=True,
        fast=True,
        out=settings.out,
        batch_size=settings.batch_size,
        progress=False,
        quiet_table=True,
    )


def run_demo(settings: DemoSettings | None = None) -> dict[str, float | None]:
    """Run the demo; return the test accuracies by name ("pretrained", "random")."""
    settings = settings or DemoSettings()
    started = time.perf_counter()
    choice = quick_weights()
    splits = load_cifar10(settings.data, subset=settings.subset, allow_synthetic=True)
    data = data_summary(splits)
    print(
        f"demo: linear probe on frozen features | data: {data} | weights: {choice.label} | "
        f"machine: {machine_label()}"
    )
    print(f"why these weights: {choice.reason}")
    probe = get_protocol("linear-probe")
    runs = {"pretrained" if choice.pretrained else "random": choice.weights}
    if settings.contrast and choice.pretrained:
        runs["random"] = "random"
    accuracy: dict[str, float | None] = {}
    for name, weights in runs.items():
        print(f"\n--- {name} features ---")
        record = run_protocol(probe, demo_options(settings, choice, weights), splits=splits)
        accuracy[name] = record.test_acc
    seconds = time.perf_counter() - started

    print("\ntest accuracy, linear probe (chance: 10%):")
    for name, acc in accuracy.items():
        print(f"  {name + ' features':<20} {acc:6.2f}%" if acc is not None else f"  {name}: n/a")
    if "pretrained" in accuracy and "random" in accuracy:
        gap = (accuracy["pretrained"] or 0) - (accuracy["random"] or 0)
        print(f"  transfer effect      {gap:+6.2f} points (pretrained minus random features)")
    if splits.synthetic:
        print("note: synthetic images (no CIFAR-10 found): these accuracies are not CIFAR-10's.")
    if not choice.pretrained:
        print("note: no pretrained network found: random features only, NOT transfer learning.")
    print(
        f"demo done in {seconds:.0f} s (load average {load_average()}) | data: {data} | "
        f"weights: {choice.label} | machine: {machine_label()}"
    )
    return accuracy
