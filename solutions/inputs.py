"""Reference solutions, inputs (exercise tasks 4 and 6): transforms and channel statistics.

Mirrors ``autograder.checks.inputs``. :func:`lecture_channel_stats` reproduces the lecture's
normalization mistake on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from course.data import NORMALIZATIONS
from solutions.protocols import CROP_PAD

__all__ = ["Stats", "build_transforms", "channel_stats", "lecture_channel_stats"]

Stats = tuple[tuple[float, ...], tuple[float, ...]]


# --- task 4: transforms ----------------------------------------------------------------------


def build_transforms(
    size: int = 224,
    normalization: str | tuple[Sequence[float], Sequence[float]] = "imagenet",
    *,
    augment: bool = False,
) -> tuple[Callable[[Any], torch.Tensor], Callable[[Any], torch.Tensor]]:
    """The training and evaluation transforms for CIFAR-10 images (uint8 CHW tensors or PIL).

    Both end as float32 ``(3, size, size)`` tensors normalized per channel:
    ``ToImage -> Resize(antialias=True) -> [crop] -> ToDtype(float32, scale=True) ->
    Normalize(mean, std)``.

    - ``augment=False`` (the lecture's 224-px run): both transforms are ``Resize(size)``.
    - ``augment=True`` (the lecture's 64-px run): ``Resize(size + CROP_PAD)`` (6 px) then
      ``RandomCrop(size)`` for training and ``CenterCrop(size)`` for evaluation, so
      evaluation is deterministic.

    Args:
        size: side in pixels of the images the network sees. CIFAR-10 images are square, so
            ``Resize(size)`` (the short side) gives ``size x size``.
        normalization: a key of ``course.data.NORMALIZATIONS`` (``"imagenet"``, ``"cifar10"``,
            ``"half"``) or an explicit ``(mean, std)`` pair.
        augment: use the random-crop training transform.

    Returns:
        ``(train_transform, eval_transform)``.
    """
    mean, std = _normalization(normalization)

    def pipeline(*resize_and_crop: Callable[[Any], Any]) -> v2.Compose:
        return v2.Compose(
            [
                v2.ToImage(),
                *resize_and_crop,
                # scale=True maps uint8 0..255 to 0..1 (what the normalization stats assume);
                # a plain cast would keep 0..255.
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )

    if augment:
        train = pipeline(v2.Resize(size + CROP_PAD, antialias=True), v2.RandomCrop(size))
        evaluate = pipeline(v2.Resize(size + CROP_PAD, antialias=True), v2.CenterCrop(size))
    else:
        train = pipeline(v2.Resize(size, antialias=True))
        evaluate = pipeline(v2.Resize(size, antialias=True))
    return train, evaluate


def _normalization(
    normalization: str | tuple[Sequence[float], Sequence[float]],
) -> tuple[list[float], list[float]]:
    if isinstance(normalization, str):
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {normalization!r}: use one of "
                f"{', '.join(map(repr, NORMALIZATIONS))} or a (mean, std) pair"
            )
        mean, std = NORMALIZATIONS[normalization]
    else:
        mean, std = normalization
    return [float(v) for v in mean], [float(v) for v in std]


# --- task 6: channel statistics --------------------------------------------------------------


def channel_stats(
    images_or_dataset: Any, *, size: int | None = None, batch_size: int = 1000
) -> Stats:
    """Exact per-channel mean and population standard deviation, in one streaming pass.

    Pixels are scaled to [0, 1] (uint8 values divided by 255; float images are taken as they
    are), the scale ``transforms.Normalize`` works in.

    Each batch's mean and sum of squared deviations are computed in float64 and merged into
    running totals (Chan et al.'s pairwise update), so the result equals the mean and std of
    all pixels at once, without holding them all in memory.

    The lecture instead averaged the per-batch stds (see :func:`lecture_channel_stats`).
    That is not the std of the data: each batch's std measures spread around *that batch's*
    mean, so the spread between batch means is lost (the total variance is the mean
    within-batch variance *plus* the variance of the batch means), averaging square roots
    underestimates again, and a small last batch weighs as much as a full one.

    Args:
        images_or_dataset: a uint8 tensor ``(N, C, H, W)``, a ``course.data.ImageSplit``, a
            Dataset yielding ``(image, label)`` (tensor or PIL images), or a DataLoader (or
            other iterable) yielding ``(images, labels)`` batches.
        size: resize every image to ``size x size`` first (bilinear, ``antialias=True``, on
            the original dtype, as the transforms do), to get the statistics of what the
            network sees.
        batch_size: images per step (memory use, not the result).

    Returns:
        ``(mean, std)``, each a tuple with one float per channel.
    """
    count = 0
    mean = m2 = None
    for batch in _batches(images_or_dataset, batch_size, size):
        for chunk in _float64_chunks(batch):
            n = chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
            chunk_mean = chunk.mean(dim=(0, 2, 3))
            chunk_m2 = ((chunk - chunk_mean.view(1, -1, 1, 1)) ** 2).sum(dim=(0, 2, 3))
            if mean is None:
                count, mean, m2 = n, chunk_mean, chunk_m2
                continue
            # Merge two groups' (count, mean, M2): the squared gap between their means,
            # weighted by both counts, is the between-group part of the spread.
            delta = chunk_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + chunk_m2 + delta**2 * (count * n / total)
            count = total
    if mean is None:
        raise ValueError("channel_stats got no images")
    std = torch.sqrt(m2 / count)
    return tuple(mean.tolist()), tuple(std.tolist())


def lecture_channel_stats(
    images_or_dataset: Any, *, size: int | None = None, batch_size: int = 256
) -> Stats:
    """The lecture's statistics: the average of per-batch means and of per-batch stds.

    Kept to show the pitfall (see :func:`channel_stats` for why the std is wrong). The mean is
    exact only when every batch has the same size. Same arguments as :func:`channel_stats`.
    """
    means, stds = [], []
    for batch in _batches(images_or_dataset, batch_size, size):
        x = _to_unit_float64(batch)
        means.append(x.mean(dim=(0, 2, 3)))
        stds.append(x.std(dim=(0, 2, 3), unbiased=False))  # np.std: population std
    if not means:
        raise ValueError("lecture_channel_stats got no images")
    return tuple(torch.stack(means).mean(0).tolist()), tuple(torch.stack(stds).mean(0).tolist())


def _batches(source: Any, batch_size: int, size: int | None) -> Iterator[torch.Tensor]:
    """Yield image batches ``(B, C, H, W)`` in their own dtype, resized when asked."""
    for batch in _raw_batches(source, batch_size):
        if size is not None:
            batch = TF.resize(batch, [size, size], antialias=True)
        yield batch


def _raw_batches(source: Any, batch_size: int) -> Iterator[torch.Tensor]:
    if isinstance(source, torch.Tensor):
        images = source.unsqueeze(0) if source.dim() == 3 else source
        _check_images(images)
        for start in range(0, len(images), batch_size):
            yield images[start : start + batch_size]
        return
    if isinstance(getattr(source, "images", None), torch.Tensor):  # an ImageSplit
        yield from _raw_batches(source.images, batch_size)
        return
    # A map-style Dataset is read by index (iterating one may never stop); anything else
    # (a DataLoader, a generator) is iterated. Items are (image, label) pairs or batches.
    if isinstance(source, Dataset) and hasattr(source, "__len__"):
        items: Iterable[Any] = (source[i] for i in range(len(source)))
    else:
        items = source
    pending: list[torch.Tensor] = []
    for item in items:
        image = _image_of(item)
        if image.dim() == 4:  # already a batch
            yield from _stack(pending)
            pending = []
            _check_images(image)
            yield image
            continue
        pending.append(image)
        if len(pending) == batch_size:
            yield from _stack(pending)
            pending = []
    yield from _stack(pending)


def _image_of(item: Any) -> torch.Tensor:
    image = item[0] if isinstance(item, tuple | list) else item
    if not isinstance(image, torch.Tensor):
        image = TF.pil_to_tensor(image)  # PIL -> uint8 CHW
    return image.as_subclass(torch.Tensor)


def _stack(images: list[torch.Tensor]) -> Iterator[torch.Tensor]:
    if not images:
        return
    for image in images:
        _check_images(image.unsqueeze(0))
    if all(image.shape == images[0].shape for image in images):
        yield torch.stack(images)
    else:  # images of different sizes cannot share a tensor; each is its own batch
        for image in images:
            yield image.unsqueeze(0)


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(
            f"expected images shaped (N, C, H, W) or (C, H, W), got shape {tuple(images.shape)}"
        )
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(
            f"expected uint8 (0..255) or float (0..1) images, got dtype {images.dtype}"
        )


def _to_unit_float64(batch: torch.Tensor) -> torch.Tensor:
    _check_images(batch)
    x = batch.to(torch.float64)
    return x / 255.0 if batch.dtype == torch.uint8 else x


def _float64_chunks(batch: torch.Tensor, max_values: int = 1 << 24) -> Iterator[torch.Tensor]:
    # float64 takes 8 bytes a value: convert at most ~16M values (128 MB) at a time, so a
    # 1000-image batch at 224 px does not need 1.2 GB.
    per_image = max(1, batch[0].numel())
    step = max(1, max_values // per_image)
    for start in range(0, batch.shape[0], step):
        yield _to_unit_float64(batch[start : start + step])
