"""Frozen features, computed once and cached on disk: train only what trains, many times.

With the backbone frozen and no random augmentation, the frozen layers map each image to the
same output in every epoch. Computing that output once per split and training only the
layers after it is the same training run for a fraction of the work: on a laptop CPU a
linear probe on a pretrained network takes seconds per epoch instead of minutes.

For lessons (three calls)::

    parts = split_model(model)                      # frozen prefix + trainable tail
    feats = extract_features(parts.prefix, splits.train, size=96, mean=mean, std=std)
    loaders = cached_loaders(parts.prefix, splits, size=96, mean=mean, std=std, batch_size=64)
    train(parts.tail, None, loaders, config)        # course.training.train, unchanged

Two modules do the work: ``course.model_split`` (where to cut a model) and
``course.feature_cache`` (the disk cache). This module holds the lessons' wrappers and
re-exports both, so ``from course.features import ...`` keeps working.

Where to cut. The model is read as a chain of modules in forward order: VGG-like models
(torchvision's VGG, MobileNetV3, EfficientNet, the lecture's own VGG16: ``features``,
``avgpool``, ``flatten``, ``classifier``) and MobileNetV2 (``features``, a global average
pool, ``flatten``, ``classifier``). The cache holds the output of the longest prefix whose
modules (1) have no trainable parameter and (2) compute the same in ``course.training``'s
train mode as in eval mode. Rule (2) keeps the cache exact:

- Dropout ends the prefix. In VGG16 the frozen classifier's Dropout layers still drop
  activations at random during training, so a head-only VGG16 is cut after fc6's ReLU
  (``classifier[2]`` is the first module of the tail) and dropout acts as before.
- A BatchNorm layer whose parameters are all frozen stays in eval mode during training
  (``course.training.train_mode``), so it is mode-independent and the prefix goes through it:
  MobileNetV2's whole frozen backbone is cached. A BatchNorm that trains ends the prefix.

``split_model(model, at="features[17]")`` cuts earlier, at a named module: two runs that
train different tails (a linear probe, the last block) then share one cache.

Cache key: split name, input size, normalization, a hash of the prefix (architecture, hooks,
weights), the data fingerprint, the number of images, the storage dtype and this format's
version. On disk under ``course.paths.cache_dir()/features/<key>/``: ``features.bin`` (raw,
row-major, memory-mappable), ``labels.bin`` (int64) and ``header.json`` (shape, dtype, key
fields), written last so a half-written cache is never used. The build runs in batches of
``batch_size`` images: its memory follows the batch size, whatever the split's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course.feature_cache import (
    FORMAT_VERSION,
    STORAGE,
    FeatureCache,
    cache_key,
    cache_splits,
    cached_features,
    data_fingerprint,
    resize_normalize,
    weights_fingerprint,
)
from course.model_split import SplitModel, chain, split_model

__all__ = [
    "FORMAT_VERSION",
    "STORAGE",
    "FeatureCache",
    "SplitModel",
    "cache_key",
    "cache_splits",
    "cached_features",
    "cached_loaders",
    "chain",
    "data_fingerprint",
    "estimate_batchnorm_statistics",
    "extract_features",
    "resize_normalize",
    "split_model",
    "weights_fingerprint",
]

Triple = Sequence[float]


def _normalization_name(mean: Triple, std: Triple, name: str | None) -> str:
    return name or "mean=" + ",".join(f"{m:g}" for m in mean) + ";std=" + ",".join(
        f"{s:g}" for s in std
    )


def extract_features(
    trunk: nn.Module,
    split: Any,
    *,
    size: int,
    mean: Triple,
    std: Triple,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    dtype: str = "float32",
    normalization: str | None = None,
    root: Path | None = None,
) -> torch.Tensor:
    """The frozen ``trunk``'s output for every image of ``split``, cached on disk.

    The first call computes it (batches of ``batch_size``; memory follows the batch size);
    later calls with the same trunk weights, size, normalization and images read it back.

    Args:
        trunk: a frozen, mode-independent module, e.g. ``split_model(model).prefix``.
        split: a ``course.data.ImageSplit`` (uint8 ``images``, ``labels``, ``name``).
        size: input side in pixels.
        mean: per-channel mean of the normalization (e.g. the weights' own preprocessing).
        std: per-channel std of the normalization.
        batch_size: images per forward pass.
        device: where the trunk runs.
        dtype: storage dtype (``"float32"``: exact; ``"bfloat16"``: half the disk).
        normalization: a name for the normalization in the cache header (optional).
        root: cache folder; ``course.paths.cache_dir() / "features"`` by default.

    Returns:
        float32 features on the CPU, ``(N, D)`` (or ``(N, C, H, W)`` for a cut inside the
        backbone), in the split's order (labels: ``split.labels``).
    """
    cache = cached_features(
        trunk,
        split.images,
        split.labels,
        split=str(getattr(split, "name", "split")),
        size=size,
        normalization=_normalization_name(mean, std, normalization),
        mean=mean,
        std=std,
        data_fingerprint=data_fingerprint(split.images, split.labels),
        dtype=dtype,
        device=device,
        batch_size=batch_size,
        root=root,
    )
    return cache.features if cache.features.dtype == torch.float32 else cache.features.float()


def cached_loaders(
    trunk: nn.Module,
    splits: Any,
    *,
    size: int,
    mean: Triple,
    std: Triple,
    batch_size: int = 64,
    seed: int = 123,
    device: torch.device | str = "cpu",
    dtype: str = "float32",
    normalization: str | None = None,
    root: Path | None = None,
) -> dict[str, DataLoader]:
    """``"train"``, ``"valid"`` and ``"test"`` loaders of cached features for ``course.training``.

    Shuffled and seeded as ``course.data.make_loaders`` shuffles images (a generator seeded
    with ``seed`` for the training loader), so with the same seed and batch size the tail sees
    the same images in the same batches as the whole model would on the plain path.

    Args:
        trunk: the frozen prefix, ``split_model(model).prefix``.
        splits: a ``course.data.CIFAR10Splits``.
        size: input side in pixels.
        mean: per-channel mean of the normalization.
        std: per-channel std of the normalization.
        batch_size: images per forward pass of the build, and the loaders' batch size.
        seed: seeds the training loader's shuffle.
        device: where the trunk runs.
        dtype: storage dtype (see :func:`extract_features`).
        normalization: a name for the normalization in the cache header (optional).
        root: cache folder; ``course.paths.cache_dir() / "features"`` by default.
    """
    caches = cache_splits(
        trunk,
        splits,
        size=size,
        normalization=_normalization_name(mean, std, normalization),
        mean=mean,
        std=std,
        dtype=dtype,
        device=device,
        batch_size=batch_size,
        root=root,
    )
    loaders = {}
    for offset, (name, cache) in enumerate(caches.items()):
        features = cache.features if dtype == "float32" else cache.features.float()
        loaders[name] = DataLoader(
            TensorDataset(features, cache.labels),
            batch_size=batch_size,
            shuffle=name == "train",
            generator=torch.Generator().manual_seed(seed + offset),
        )
    return loaders


def estimate_batchnorm_statistics(
    model: nn.Module,
    images: torch.Tensor,
    *,
    size: int,
    mean: Triple,
    std: Triple,
    batch_size: int = 64,
) -> nn.Module:
    """Set every BatchNorm's running statistics to those of ``images`` (for random weights).

    Why: a randomly initialized network's BatchNorm layers hold mean 0 and variance 1, which
    normalize nothing; in eval mode (where frozen BatchNorm stays, see
    ``course.training.train_mode``) activations then shrink or blow up layer after layer and
    "random features" are near-constant, a straw man. Random features worth comparing with
    pretrained ones use statistics measured on data, as training mode would: this runs the
    images through the model in training mode, without gradients, averaging each layer's batch
    statistics over all batches (layer after layer, each normalized as the next one sees it).
    Weights and affine parameters are untouched; the model's modes are restored.

    Not for pretrained networks whose BatchNorm is folded (the offline MobileNetV2): there,
    use ``course.models.calibrate_batchnorm``, which keeps what the network computes.

    Args:
        model: the network (on the CPU or its device).
        images: uint8 ``(N, 3, H, W)`` training images; a few hundred are plenty.
        size: input side in pixels (the eval transform, :func:`resize_normalize`).
        mean: per-channel mean of the normalization.
        std: per-channel std of the normalization.
        batch_size: images per forward pass.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers or len(images) == 0:
        return model
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in layers}
    try:
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over every batch seen
        model.train()
        with torch.no_grad():
            for lo in range(0, len(images), batch_size):
                model(resize_normalize(images[lo : lo + batch_size].to(device), size, mean, std))
    finally:
        for layer, momentum in momenta.items():
            layer.momentum = momentum
        for module, mode in modes.items():
            module.training = mode
    return model
