"""The course's figures: loss, accuracy, labelled predictions, confusion matrix, comparisons.

Each function returns a matplotlib ``Figure`` (shown inline when it is the last
expression of a notebook cell) and saves it as PNG when given a ``path``.
Figures are built without ``pyplot``, so scripts never open windows or leak
figures, whatever the backend.

Every figure is drawn so that it reads the same on any page:

- an opaque white background (``FACECOLOR``): dark-mode pages show a white card,
  never black text on a dark page;
- ``constrained`` layout and a tight bounding box when saved: titles, labels and
  a second axis are never cut off;
- long titles are wrapped to the figure's width (:func:`wrap_title`), never cut;
- epoch axes tick whole epochs only;
- the figures stay at most ``MAX_WIDTH_IN`` inches wide at ``DPI`` dots per inch,
  so a page that shows them at their own size (about 650 pixels) shows every label
  at its size in points times ``DPI / 72``: 10-point labels are about 14 pixels.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from course.data import CLASSES
from course.training import History

#: Opaque background of every figure: readable on light and dark pages alike.
FACECOLOR = "white"
#: Dots per inch of inline and saved PNGs.
DPI = 100
#: The widest figure, in inches (6.5 in at 100 dpi: 650 pixels before the tight crop).
MAX_WIDTH_IN = 6.5
#: Font size, in points, of titles and of the labels in a prediction grid.
TITLE_SIZE = 10
LABEL_SIZE = 10


def _show_figures_inline() -> None:
    """Let a notebook display our pyplot-free figures as images, with no magic needed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, _png_bytes)


def _png_bytes(fig: Figure) -> bytes:
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png", bbox_inches="tight", dpi=DPI, facecolor=FACECOLOR)


_show_figures_inline()


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure with the course's look: white, constrained layout, capped width."""
    width = min(width, MAX_WIDTH_IN)
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    fig.patch.set_facecolor(FACECOLOR)
    return fig


def wrap_title(title: str, width_in: float, fontsize: float = TITLE_SIZE) -> str:
    """Wrap each line of ``title`` so it fits ``width_in`` inches at ``fontsize`` points.

    Wraps at spaces, never inside a word; a line break the caller put in is kept.
    """
    # An average character is about 0.55 em wide in DejaVu Sans; 0.6 leaves a margin.
    per_line = max(20, int(width_in * 72 / (fontsize * 0.6)))
    return "\n".join(
        textwrap.fill(line, per_line, break_long_words=False, break_on_hyphens=False)
        for line in title.split("\n")
    )


def _title(ax_or_fig, fig: Figure, text: str, *, suptitle: bool = False) -> None:
    wrapped = wrap_title(text, fig.get_figwidth())
    if suptitle:
        ax_or_fig.suptitle(wrapped, fontsize=TITLE_SIZE)
    else:
        ax_or_fig.set_title(wrapped, fontsize=TITLE_SIZE)


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor=FACECOLOR)
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
    fig = new_figure(6.5, 4)
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
        epochs.xaxis.set_major_locator(MaxNLocator(integer=True))  # epoch 1, 2, never 1.5
    ax.legend()
    _title(ax, fig, title or "Training loss")
    return _finish(fig, path)


def plot_accuracy(
    history: History, path: str | Path | None = None, *, title: str | None = None
) -> Figure:
    """Train and validation accuracy per epoch, with the test accuracy if known."""
    fig = new_figure(6.5, 4)
    ax = fig.add_subplot()
    epochs = np.arange(1, history.epochs_done + 1)
    ax.plot(epochs, history.train_acc[: len(epochs)], marker="o", ms=3, label="train")
    ax.plot(epochs, history.valid_acc, marker="o", ms=3, label="validation")
    if history.test_acc is not None:
        ax.axhline(history.test_acc, ls="--", c="gray", label=f"test {history.test_acc:.2f}%")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epoch 1, 2, never 1.5
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    _title(ax, fig, title or "Accuracy")
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
    # At most 6.5 inches wide, so LABEL_SIZE points stay LABEL_SIZE * DPI / 72 pixels on a
    # page that shows the PNG at its own size; two-line labels need ~0.45 inch per row.
    panel = MAX_WIDTH_IN / columns
    fig = new_figure(MAX_WIDTH_IN, (panel + 0.5) * rows + 0.6)
    for i, picture in enumerate(pictures):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(picture, interpolation="nearest")
        ok = predicted[i] == true[i]
        ax.set_title(
            f"P: {classes[predicted[i]]}\nT: {classes[true[i]]}",
            fontsize=LABEL_SIZE,
            color="black" if ok else "#c00000",
            fontweight="normal" if ok else "bold",
        )
        ax.axis("off")
    if title:
        _title(fig, fig, title, suptitle=True)
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
    fig = new_figure(6.5, 6)
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
    _title(ax, fig, title or "Confusion matrix (rows: true class)")
    return _finish(fig, path)


def plot_image_rows(
    rows: dict[str, torch.Tensor],
    path: str | Path | None = None,
    *,
    column_titles: Sequence[str] = (),
    title: str | None = None,
) -> Figure:
    """Images in labelled rows (e.g. the same images at several sizes), pixels kept sharp.

    ``rows`` maps a row label to a uint8 or [0, 1] float batch ``(N, 3, H, W)``; every row
    should hold the same number of images.
    """
    columns = max(len(images) for images in rows.values())
    panel = MAX_WIDTH_IN / columns
    fig = new_figure(MAX_WIDTH_IN, (panel + 0.15) * len(rows) + 0.7)
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        pictures = _as_display_images(images, None, None)
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(pictures):
                ax.imshow(pictures[c], interpolation="nearest")
            if c == 0:
                ax.set_ylabel(label, fontsize=LABEL_SIZE)
            if r == 0 and c < len(column_titles):
                ax.set_title(column_titles[c], fontsize=LABEL_SIZE)
    if title:
        _title(fig, fig, title, suptitle=True)
    return _finish(fig, path)


def plot_comparison(
    results: dict[str, Sequence[float]],
    path: str | Path | None = None,
    *,
    xlabel: str = "test accuracy (%)",
    title: str | None = None,
    chance: float | None = None,
) -> Figure:
    """One row per setting: a bar at the mean and a dot for every repeat (seed).

    Showing every repeat, not only the mean, lets a reader see whether a difference
    between two rows is larger than the spread within a row.

    Args:
        results: setting name -> the measured values, one per seed.
        xlabel: what the values are.
        title: the figure's title (wrapped to fit).
        chance: draw a dashed line at this value (e.g. 10 for ten classes).
    """
    names = list(results)
    fig = new_figure(MAX_WIDTH_IN, 0.45 * len(names) + 1.4)
    ax = fig.add_subplot()
    for row, name in enumerate(names):
        values = np.asarray(results[name], dtype=np.float64)
        if values.size == 0:
            continue
        ax.barh(row, values.mean(), color="#9ecae1", height=0.6)
        ax.plot(values, np.full(values.size, row), "o", color="#08519c", ms=5)
        spread = f" (min {values.min():.1f}, max {values.max():.1f})" if values.size > 1 else ""
        ax.text(
            values.max(),
            row,
            f"  {values.mean():.1f}{spread}",
            va="center",
            fontsize=9,
        )
    # First setting on top, like a table; room above it for the chance label.
    ax.set_ylim(len(names) - 0.5, -1.0)
    if chance is not None:
        ax.axvline(chance, ls="--", c="gray", lw=1)
        ax.text(chance, -0.75, f" chance ({chance:g})", color="gray", fontsize=9, va="center")
    ax.set_yticks(range(len(names)), names)
    top = max((max(v) for v in results.values() if len(v)), default=1.0)
    ax.set_xlim(0, top * 1.5)
    ax.set_xlabel(xlabel)
    if title:
        _title(ax, fig, title)
    return _finish(fig, path)


def plot_size_sweep(
    sides: Sequence[int],
    accuracy: Sequence[Sequence[float]],
    seconds_per_image: Sequence[float],
    path: str | Path | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Accuracy (every seed and the mean) and time per image against the input side.

    Args:
        sides: input sizes in pixels.
        accuracy: for each side, the accuracies of the repeats (percent).
        seconds_per_image: for each side, the measured time to compute one image's features.
        title: the figure's title (wrapped to fit).
    """
    fig = new_figure(MAX_WIDTH_IN, 3.6)
    left, right = fig.subplots(1, 2)
    means = [float(np.mean(a)) for a in accuracy]
    for side, values in zip(sides, accuracy, strict=True):
        left.plot([side] * len(values), values, "o", color="#08519c", ms=4, alpha=0.7)
    left.plot(sides, means, "-", color="#08519c", label="mean")
    left.set_xlabel("input side (px)")
    left.set_ylabel("test accuracy (%)")
    left.set_xticks(list(sides))
    left.set_title("accuracy (dots: seeds)", fontsize=LABEL_SIZE)
    right.plot(sides, [s * 1000 for s in seconds_per_image], "o-", color="#a63603")
    right.set_xlabel("input side (px)")
    right.set_ylabel("ms per image (features)")
    right.set_xticks(list(sides))
    right.set_title("time", fontsize=LABEL_SIZE)
    if title:
        _title(fig, fig, title, suptitle=True)
    return _finish(fig, path)
