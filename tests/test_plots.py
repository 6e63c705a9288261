"""The course's figures: readable on any page (white, uncut titles, labels large enough)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from course import plots
from course.training import History

LONG_TITLE = (
    "Linear probe, accuracy\nweights: imagenet (MobileNetV2 from Google's uint8 TFLite file) | "
    "data: CIFAR-10 subset, JPEG copy (train/valid/test 1000/1000/1000)"
)


def _history() -> History:
    return History(
        minibatch_loss=[2.3, 1.5, 1.0, 0.8, 0.7, 0.6],
        train_acc=[40.0, 60.0, 70.0],
        valid_acc=[45.0, 55.0, 58.0],
        lr=[0.01] * 3,
        epoch_seconds=[1.0] * 3,
        batches_per_epoch=2,
        test_acc=57.5,
    )


def test_wrap_title_keeps_words_and_line_breaks() -> None:
    wrapped = plots.wrap_title(LONG_TITLE, 6.5)
    assert wrapped.split("\n")[0] == "Linear probe, accuracy"
    assert len(wrapped.split("\n")) >= 3
    assert wrapped.replace("\n", " ").split() == LONG_TITLE.replace("\n", " ").split()


@pytest.mark.parametrize(
    "draw",
    [
        lambda path: plots.plot_accuracy(_history(), path, title=LONG_TITLE),
        lambda path: plots.plot_minibatch_loss(_history(), path, window=2, title=LONG_TITLE),
        lambda path: plots.plot_confusion_matrix(
            [0, 1, 2, 3], [0, 1, 3, 3], path, title=LONG_TITLE
        ),
        lambda path: plots.plot_comparison(
            {"a": [60.0, 62.0], "b": [14.0]}, path, chance=10, title=LONG_TITLE
        ),
        lambda path: plots.plot_size_sweep(
            (32, 64), [[30.0, 31.0], [50.0]], [0.001, 0.002], path, title=LONG_TITLE
        ),
    ],
    ids=["accuracy", "loss", "confusion", "comparison", "size_sweep"],
)
def test_saved_figures_are_opaque_white_and_keep_their_title(draw, tmp_path: Path) -> None:
    path = tmp_path / "figure.png"
    fig = draw(path)
    pixels = imread(path)
    assert pixels.shape[2] == 3 or np.all(pixels[..., 3] == 1.0), "the PNG must be opaque"
    assert np.allclose(pixels[0, 0, :3], 1.0), "the background must be white (dark mode)"
    assert fig.get_figwidth() <= plots.MAX_WIDTH_IN
    # The wrapped title fits the figure's width, so the tight crop never has to widen it
    # (a title wider than the figure is what got cut off before).
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    width = fig.get_figwidth() * fig.dpi
    titles = [fig._suptitle] if fig._suptitle is not None else [ax.title for ax in fig.axes[:1]]
    for title in titles:
        assert title.get_window_extent(renderer).width <= width, title.get_text()


def test_prediction_grid_labels_are_at_least_ten_pixels() -> None:
    images = torch.zeros(10, 3, 32, 32, dtype=torch.uint8)
    fig = plots.plot_predictions(images, list(range(10)), [0] * 10, title=LONG_TITLE)
    assert fig.get_figwidth() * fig.dpi <= plots.MAX_WIDTH_IN * plots.DPI
    sizes = [ax.title.get_fontsize() for ax in fig.axes]
    assert sizes and min(sizes) * plots.DPI / 72 >= 10, sizes


def test_epoch_axes_tick_whole_epochs_only() -> None:
    history = _history()  # 3 epochs: matplotlib's default locator would tick 1.5 and 2.5
    accuracy = plots.plot_accuracy(history)
    loss = plots.plot_minibatch_loss(history, window=2)
    FigureCanvasAgg(accuracy).draw()
    FigureCanvasAgg(loss).draw()
    epoch_axes = [accuracy.axes[0].xaxis]
    epoch_axes += [a.xaxis for a in loss.axes[0].child_axes if a.get_xlabel() == "epoch"]
    assert len(epoch_axes) == 2, "the loss plot has no epoch axis"
    for axis in epoch_axes:
        lo, hi = axis.get_view_interval()
        ticks = [t for t in axis.get_ticklocs() if lo - 1e-9 <= t <= hi + 1e-9]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
