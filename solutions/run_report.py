"""Reporting a run: the lines that name it, its plots, and the table beside the lecture's.

Everything here reads a :class:`solutions.run_setup.RunPlan` or a
:class:`solutions.run_record.RunRecord`; nothing is decided again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from course.data import CIFAR10Splits
from course.machine import machine_label
from course.plots import plot_accuracy, plot_confusion_matrix, plot_minibatch_loss, plot_predictions
from course.quick import data_label
from course.training import History
from solutions.protocols import PROTOCOLS, Protocol
from solutions.run_record import TRAINS, RunRecord

#: What a run on random weights prints before its last line.
RANDOM_WEIGHTS_NOTE = (
    "note:    these weights are random: the frozen layers compute random features, so\n"
    "         this run shows the pipeline at work, not transfer learning. Put\n"
    "         vgg16-397923af.pth in torchvision's cache, or ../shared/data/mobilenet-v2-\n"
    "         imagenet beside the checkout (see README), for pretrained features."
)


def data_summary(splits: CIFAR10Splits) -> str:
    """Real or synthetic, which copy, and how many images: ``course.quick.data_label``."""
    return data_label(splits)


def identity_line(what: str, data: str, weights_label: str) -> str:
    """``what | data: ... | weights: ... | machine: ...``: a run's first and last line."""
    return f"{what} | data: {data} | weights: {weights_label} | machine: {machine_label()}"


def pct(value: float | None) -> str:
    """A percentage with two decimals, ``"n/a"`` when unknown."""
    return "n/a" if value is None else f"{value:.2f}%"


def plot_title(record: RunRecord | Mapping[str, Any], width: int = 64) -> str:
    """A plot title that fits inside the PNG: what ran on one line, the weights on the next."""
    results = record.to_dict() if isinstance(record, RunRecord) else record
    data = "synthetic data" if results["data"]["synthetic"] else "CIFAR-10"
    what = f"{results['protocol']['name']}, {results['network']}, {results['size']} px, {data}"
    weights = f"weights: {results['weights']}"
    if len(weights) > width:
        weights = weights[: width - 3].rstrip() + "..."
    return f"{what}\n{weights}"


def write_plots(run_dir: Path, splits: CIFAR10Splits, history: History, label: str) -> None:
    """Loss, accuracy, confusion matrix and a prediction grid, as PNGs in ``run_dir``."""
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


def _lecture_rows() -> list[tuple[str, Protocol]]:
    """One row per run the lecture published (linear-probe repeats lecture-large's)."""
    rows, seen = [], set()
    for protocol in PROTOCOLS.values():
        if protocol.lecture is not None and protocol.lecture not in seen:
            seen.add(protocol.lecture)
            rows.append((f"reported by the lecture: {protocol.name}", protocol))
    return rows


def print_table(runs: Sequence[RunRecord | Mapping[str, Any]], protocol: Protocol) -> None:
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
            f"{name:<44} {TRAINS[reported.trainable]:<15} {val:<20} "
            f"{lecture.test_acc:>8.2f}% {lecture.minutes_50_epochs:>9.1f} min"
        )
    for entry in runs:
        run = entry.to_dict() if isinstance(entry, RunRecord) else entry
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
            f"{TRAINS[run['protocol']['trainable']]:<15} {val:<20} {test:>9} "
            f"{_fmt_minutes(projected):>9} (projected)"
        )
        print(f"  {run['label']}; {run['device']}")
    print(
        "Lecture rows: its published notebooks (not measured here), on the original CIFAR-10 "
        "files.\n* the lecture's freezing code changed no parameter: those runs were linear probes."
    )
    print()
