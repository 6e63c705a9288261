"""The lecture's figures: loss, accuracy, labelled predictions, confusion matrix.

Each function returns a matplotlib ``Figure`` (shown inline when it is the last
expression of a notebook cell) and saves it as PNG when given a ``path``.
Figures are built without ``pyplot``, so scripts never open windows or leak
figures, whatever the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from course.data import CLASSES
from course.training import History


def _show_figures_inline() -> None:
    """Let a notebook display our pyplot-free figures as images, with no magic needed."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


_show_figures_inline()


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


def running_average(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each step (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def plot_minibatch_loss(
    history: History,
    path: str | Path | None = None,
    *,
    window: int = 100,
    title: str | None = None,
) -> Figure:
    """Minibatch loss with its running average, epochs marked on a second axis."""
    losses = history.minibatch_loss
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, lw=0.6, alpha=0.5, label="minibatch loss")
    ax.plot(steps, running_average(losses, window), lw=1.5, label=f"running average ({window})")
    if len(losses) > 0:
        # Skip the first steps' spikes so the interesting part fills the plot.
        top = float(np.max(losses[min(len(losses) - 1, 10) :]))
        ax.set_ylim(0, top * 1.1 if top > 0 else 1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy loss")
    if history.batches_per_epoch:
        epochs = ax.secondary_xaxis(
            -0.22,
            functions=(
                lambda x: x / history.batches_per_epoch,
                lambda e: e * history.batches_per_epoch,
            ),
        )
        epochs.set_xlabel("epoch")
    ax.legend()
    ax.set_title(title or "Training loss")
    return _finish(fig, path)


def plot_accuracy(
    history: History, path: str | Path | None = None, *, title: str | None = None
) -> Figure:
    """Train and validation accuracy per epoch, with the test accuracy if known."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    epochs = np.arange(1, history.epochs_done + 1)
    ax.plot(epochs, history.train_acc[: len(epochs)], marker="o", ms=3, label="train")
    ax.plot(epochs, history.valid_acc, marker="o", ms=3, label="validation")
    if history.test_acc is not None:
        ax.axhline(history.test_acc, ls="--", c="gray", label=f"test {history.test_acc:.2f}%")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    ax.set_title(title or "Accuracy")
    return _finish(fig, path)


def _as_display_images(
    images: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None
) -> np.ndarray:
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        images = images.float() / 255
    elif mean is not None and std is not None:
        # Undo Normalize so colours look right again.
        images = images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    return images.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def plot_predictions(
    images: torch.Tensor,
    predicted: torch.Tensor | Sequence[int],
    true: torch.Tensor | Sequence[int],
    path: str | Path | None = None,
    *,
    classes: Sequence[str] = CLASSES,
    title: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    columns: int = 5,
) -> Figure:
    """A grid of images, each labelled "P: predicted / T: true"; mistakes in red.

    ``images`` are uint8 or float (N, 3, H, W); pass the normalization's ``mean``
    and ``std`` for normalized floats so the colours are undone.
    """
    pictures = _as_display_images(images, mean, std)
    predicted = [int(p) for p in predicted]
    true = [int(t) for t in true]
    rows = max(1, int(np.ceil(len(pictures) / columns)))
    # Two-line titles need about 0.6 inch above every row.
    fig = Figure(figsize=(2 * columns, 2.7 * rows + 0.5))
    for i, picture in enumerate(pictures):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(picture, interpolation="nearest")
        ok = predicted[i] == true[i]
        ax.set_title(
            f"P: {classes[predicted[i]]}\nT: {classes[true[i]]}",
            fontsize=9,
            color="black" if ok else "tab:red",
        )
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def confusion_matrix(
    predicted: torch.Tensor | Sequence[int], true: torch.Tensor | Sequence[int], num_classes: int
) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    predicted = torch.as_tensor(predicted, dtype=torch.long).flatten()
    true = torch.as_tensor(true, dtype=torch.long).flatten()
    flat = true * num_classes + predicted
    counts = torch.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).numpy()


def plot_confusion_matrix(
    predicted: torch.Tensor | Sequence[int],
    true: torch.Tensor | Sequence[int],
    path: str | Path | None = None,
    *,
    classes: Sequence[str] = CLASSES,
    title: str | None = None,
) -> Figure:
    """The confusion matrix as a heat map with the count in every cell."""
    matrix = confusion_matrix(predicted, true, len(classes))
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot()
    shown = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(shown, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in range(matrix.shape[0]):
        for col in range(matrix.shape[1]):
            ax.text(
                col,
                row,
                str(matrix[row, col]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if matrix[row, col] > threshold else "black",
            )
    ax.set_title(title or "Confusion matrix (rows: true class)")
    return _finish(fig, path)
