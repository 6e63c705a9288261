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

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms.v2 import functional as F

from course.paths import cache_dir
from course.training import frozen_batchnorm

__all__ = [
    "FORMAT_VERSION",
    "STORAGE",
    "FeatureCache",
    "SplitModel",
    "cache_key",
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

FORMAT_VERSION = 2  # 2: frozen BatchNorm may sit inside the prefix; hooks in the fingerprint

#: storage dtype name -> (torch dtype in memory, numpy dtype on disk)
STORAGE: dict[str, tuple[torch.dtype, Any]] = {
    "float32": (torch.float32, np.float32),
    "float16": (torch.float16, np.float16),
    "bfloat16": (torch.bfloat16, np.uint16),  # numpy has no bf16: keep the raw bits
}

Triple = Sequence[float]


@dataclass(frozen=True)
class SplitModel:
    """A model cut in two: ``tail(prefix(x)) == model(x)`` in eval mode and in the train mode
    of ``course.training.train`` (frozen BatchNorm in eval mode)."""

    prefix: nn.Sequential  # frozen and mode-independent: its output can be cached
    tail: nn.Sequential  # shares its modules (and parameters) with the model
    cut: str  # where the cut is, e.g. "classifier[2]" (the cache is the input of this module)


def chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model as a named chain of modules, in forward order (VGG-like or MobileNetV2)."""
    from torchvision.models import MobileNetV2

    if isinstance(model, MobileNetV2):
        # torchvision's forward: features, adaptive_avg_pool2d(1), flatten, classifier.
        pool: nn.Module = nn.AdaptiveAvgPool2d((1, 1))
    elif all(hasattr(model, name) for name in ("features", "avgpool", "classifier")):
        pool = model.avgpool
    else:
        raise ValueError(
            f"{type(model).__name__} is neither VGG-like (features, avgpool, classifier) nor a "
            "MobileNetV2: feature caching cannot tell where to cut it; train it without the cache."
        )
    layers: list[tuple[str, nn.Module]] = []
    layers += [(f"features[{i}]", m) for i, m in enumerate(model.features)]
    layers.append(("avgpool", pool))
    layers.append(("flatten", nn.Flatten(1)))
    classifier = model.classifier
    if isinstance(classifier, nn.Sequential):
        layers += [(f"classifier[{i}]", m) for i, m in enumerate(classifier)]
    else:
        layers.append(("classifier", classifier))
    return layers


def _mode_independent(module: nn.Module) -> bool:
    for m in module.modules():
        if isinstance(m, (nn.modules.dropout._DropoutNd, nn.AlphaDropout)):
            return False
        if isinstance(m, nn.modules.batchnorm._NormBase) and not frozen_batchnorm(m):
            return False
    return True


def _cacheable_module(module: nn.Module) -> bool:
    if any(p.requires_grad for p in module.parameters()):
        return False
    return _mode_independent(module)


def split_model(model: nn.Module, at: str | None = None) -> SplitModel | None:
    """Cut ``model`` into a frozen prefix (cacheable) and the tail that trains.

    Args:
        model: set up for training already (backbone frozen, head replaced, the layers to
            train unfrozen). VGG-like models and MobileNetV2 (see :func:`chain`).
        at: cut just before this module (a name from :func:`chain`, e.g. ``"features[17]"``)
            instead of at the deepest exact point; it must not lie past that point.

    Returns:
        The two halves, or ``None`` when nothing is cacheable (the very first layer trains,
        e.g. the scratch protocol) or nothing trains at all.

    Raises:
        ValueError: an unknown model layout, or ``at`` is unknown or past the deepest exact cut.
    """
    layers = chain(model)
    cut = 0
    while cut < len(layers) and _cacheable_module(layers[cut][1]):
        cut += 1
    if at is not None:
        names = [name for name, _ in layers]
        if at not in names:
            raise ValueError(f"no module called {at!r}; the chain is {', '.join(names)}")
        wanted = names.index(at)
        if wanted > cut:
            deepest = names[cut] if cut < len(names) else "the end"
            raise ValueError(
                f"cannot cut at {at!r}: {deepest} comes first and trains or depends on the "
                "mode, so a cache past it would not be exact"
            )
        cut = wanted
    if cut == 0 or cut == len(layers):
        # cut == len: nothing trains at all, so there is nothing to train on a cache either.
        return None
    return SplitModel(
        prefix=nn.Sequential(*(m for _, m in layers[:cut])),
        tail=nn.Sequential(*(m for _, m in layers[cut:])),
        cut=layers[cut][0],
    )


def weights_fingerprint(module: nn.Module) -> str:
    """Hash of a module's architecture (repr and forward hooks) and every tensor, bit for bit.

    Hooks count: the offline MobileNetV2 pads its stride-2 convolutions TensorFlow's way with a
    forward pre-hook, which its repr does not show but its output does.
    """
    digest = hashlib.blake2b(repr(module).encode(), digest_size=16)
    for name, sub in module.named_modules():
        for hooks in (sub._forward_pre_hooks, sub._forward_hooks):
            for hook in hooks.values():
                digest.update(f"{name}:{getattr(hook, '__qualname__', type(hook))}".encode())
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def data_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """A short hash of a split's images and labels (about 0.4 s for all of CIFAR-10)."""
    hasher = hashlib.blake2b(digest_size=8)
    for tensor in (images, labels):
        hasher.update(tensor.detach().cpu().contiguous().numpy())
    return hasher.hexdigest()


def resize_normalize(
    images: torch.Tensor,
    size: int,
    mean: Triple,
    std: Triple,
    *,
    channels_last: bool = False,
) -> torch.Tensor:
    """The eval transform on a uint8 batch ``(N, 3, H, W)``: Resize(size), scale, Normalize.

    The same torchvision functions as the per-image transform of the lessons
    (``Resize(size, antialias=True)``, ``ToDtype(float32, scale=True)``, ``Normalize``).
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected a uint8 (N, 3, H, W) batch, got {images.dtype} {images.shape}")
    if images.shape[-2:] != (size, size):
        images = F.resize(images, [size, size], antialias=True)
    out = F.normalize(F.to_dtype(images, torch.float32, scale=True), list(mean), list(std))
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


@dataclass(frozen=True)
class FeatureCache:
    """A cached feature matrix, memory-mapped from disk."""

    features: torch.Tensor  # (N, *item_shape): (N, D) or (N, C, H, W); memory-mapped (CPU)
    labels: torch.Tensor  # (N,) int64
    path: Path  # the cache's folder
    header: dict[str, Any]
    built: bool  # True when this call computed it, False when it was found on disk


def cache_key(fields: dict[str, Any]) -> str:
    """A short, stable name for a cache from everything that determines its content."""
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_features(
    prefix: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    split: str,
    size: int,
    normalization: str,
    mean: Triple,
    std: Triple,
    data_fingerprint: str,
    dtype: str = "bfloat16",
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    bf16_autocast: bool = True,
    root: Path | None = None,
    prefix_fingerprint: str | None = None,
) -> FeatureCache:
    """Return ``prefix``'s output for every image of a split, from disk or computed now.

    Images go through the eval transform (:func:`resize_normalize`) on ``device`` in batches
    of ``batch_size``; the prefix runs in eval mode (it is mode-independent by construction,
    see :func:`split_model`) under ``inference_mode``, with bf16 autocast on CUDA when
    ``bf16_autocast``. Peak memory follows ``batch_size``: one batch of inputs and activations
    at a time, features written straight to a memory-mapped file.

    Args:
        prefix: the frozen part, ``split_model(model).prefix``.
        images: uint8 ``(N, 3, 32, 32)``.
        labels: int64 ``(N,)``.
        split: the split's name (part of the cache key, as are the next five).
        size: input side in pixels.
        normalization: the name of the normalization.
        mean: the per-channel mean it subtracts.
        std: the per-channel std it divides by.
        data_fingerprint: a hash of the data (``CIFAR10Splits.fingerprint``).
        dtype: ``"bfloat16"`` (on a GPU the tail runs in bf16 autocast anyway, and bf16
            cannot overflow), ``"float16"`` or ``"float32"`` (exact).
        device: where the prefix runs.
        batch_size: images per forward pass of the build (memory grows with it).
        root: folder for caches; ``course.paths.cache_dir() / "features"`` by default.
        prefix_fingerprint: :func:`weights_fingerprint` of ``prefix`` when the caller has it
            (hashing VGG16's frozen part reads ~0.5 GB: do it once for the three splits).
    """
    if dtype not in STORAGE:
        raise ValueError(f"cache dtype {dtype!r}: choose one of {', '.join(STORAGE)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    device = torch.device(device)
    autocast = bf16_autocast and device.type == "cuda"
    fields = {
        "format": FORMAT_VERSION,
        "split": split,
        "size": size,
        "normalization": [normalization, [float(m) for m in mean], [float(s) for s in std]],
        "weights": prefix_fingerprint or weights_fingerprint(prefix),
        "data": data_fingerprint,
        "n": len(images),
        "dtype": dtype,
        "autocast": "bf16" if autocast else "off",
    }
    folder = (root or cache_dir() / "features") / cache_key(fields)
    if (folder / "header.json").is_file():
        return _open(folder, built=False)

    modes = {m: m.training for m in prefix.modules()}
    prefix.eval().to(device)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    out: np.memmap | None = None
    torch_dtype, np_dtype = STORAGE[dtype]
    dim = 0
    item_shape: list[int] = []
    try:
        with torch.inference_mode():
            for lo in range(0, len(images), batch_size):
                batch = resize_normalize(
                    images[lo : lo + batch_size].to(device),
                    size,
                    mean,
                    std,
                    channels_last=device.type == "cuda",
                )
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                    raw = prefix(batch).float()
                # Rows on disk; the shape of one item (e.g. 160 x 3 x 3 when the cut lies
                # inside the convolutional part) is kept in the header for the tail.
                item_shape = [int(d) for d in raw.shape[1:]]
                feats = raw.reshape(len(batch), -1)
                if out is None:
                    dim = int(feats.shape[1])
                    out = np.memmap(
                        tmp / "features.bin", dtype=np_dtype, mode="w+", shape=(len(images), dim)
                    )
                stored = feats.to(torch_dtype).cpu()
                if dtype == "bfloat16":
                    stored = stored.view(torch.int16)  # same bits; numpy reads them as uint16
                out[lo : lo + len(batch)] = stored.numpy().view(np_dtype)
    finally:
        for module, mode in modes.items():
            module.training = mode
    if out is None:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"split {split!r} has no images to cache")
    out.flush()
    del out
    labels.to(torch.int64).cpu().numpy().tofile(tmp / "labels.bin")
    header = {
        **fields,
        "shape": [len(images), dim],
        "item_shape": item_shape,
        "seconds": round(time.perf_counter() - start, 3),
        "batch_size": batch_size,
        "device": str(device),
        "torch": torch.__version__,
    }
    (tmp / "header.json").write_text(json.dumps(header, indent=2))
    try:
        tmp.rename(folder)
    except OSError:
        # Another process finished the same cache first: theirs is as good as ours.
        shutil.rmtree(tmp, ignore_errors=True)
        return _open(folder, built=False)
    return _open(folder, built=True)


def _open(folder: Path, *, built: bool) -> FeatureCache:
    header = json.loads((folder / "header.json").read_text())
    _, np_dtype = STORAGE[header["dtype"]]
    n, dim = header["shape"]
    # Copy-on-write mapping: pages load on demand and torch gets a writable array.
    mapped = np.memmap(folder / "features.bin", dtype=np_dtype, mode="c", shape=(n, dim))
    features = torch.from_numpy(mapped)
    if header["dtype"] == "bfloat16":
        features = features.view(torch.bfloat16)
    item_shape = header.get("item_shape") or [dim]
    features = features.view(n, *item_shape)  # (N, D), or (N, C, H, W) inside the backbone
    labels = torch.from_numpy(np.fromfile(folder / "labels.bin", dtype=np.int64))
    return FeatureCache(features, labels, folder, header, built)


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
    fingerprint = weights_fingerprint(trunk)
    loaders = {}
    for offset, name in enumerate(("train", "valid", "test")):
        split = getattr(splits, name)
        cache = cached_features(
            trunk,
            split.images,
            split.labels,
            split=name,
            size=size,
            normalization=_normalization_name(mean, std, normalization),
            mean=mean,
            std=std,
            data_fingerprint=getattr(splits, "fingerprint", None)
            or data_fingerprint(split.images, split.labels),
            dtype=dtype,
            device=device,
            batch_size=batch_size,
            root=root,
            prefix_fingerprint=fingerprint,
        )
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
