"""The feature cache on disk: a frozen prefix's output per split, computed once.

Cache key: split name, input size, normalization, a hash of the prefix (architecture, hooks,
weights), the data fingerprint, the number of images, the storage dtype and this format's
version. On disk under ``course.paths.cache_dir()/features/<key>/``: ``features.bin`` (raw,
row-major, memory-mappable), ``labels.bin`` (int64) and ``header.json`` (shape, dtype, key
fields), written last so a half-written cache is never used. The build runs in batches of
``batch_size`` images: its memory follows the batch size, whatever the split's size.

:func:`cache_splits` is the one loop over a data set's three splits (the lessons'
``cached_loaders`` and the fast path's ``feature_loaders`` both use it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.transforms.v2 import functional as F

from course.paths import cache_dir

__all__ = [
    "FORMAT_VERSION",
    "SPLITS",
    "STORAGE",
    "FeatureCache",
    "cache_key",
    "cache_splits",
    "cached_features",
    "data_fingerprint",
    "resize_normalize",
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


#: The three splits of a data set, in the order their loaders are seeded.
SPLITS = ("train", "valid", "test")


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


def cache_splits(
    prefix: nn.Module,
    splits: Any,
    *,
    size: int,
    normalization: str,
    mean: Triple,
    std: Triple,
    dtype: str = "bfloat16",
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    bf16_autocast: bool = True,
    root: Path | None = None,
    guard: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
) -> dict[str, FeatureCache]:
    """:func:`cached_features` for each split of ``splits`` (train, valid, test), in order.

    The prefix is hashed once for the three. ``guard()`` wraps each split's build (the fast
    path's DDP ranks wait there for rank 0). ``splits``: a ``course.data.CIFAR10Splits``; its
    ``fingerprint`` keys the caches (the split's own hash when it has none).
    """
    fingerprint = weights_fingerprint(prefix)
    caches = {}
    for name in SPLITS:
        split = getattr(splits, name)
        with guard():
            caches[name] = cached_features(
                prefix,
                split.images,
                split.labels,
                split=name,
                size=size,
                normalization=normalization,
                mean=mean,
                std=std,
                data_fingerprint=getattr(splits, "fingerprint", None)
                or data_fingerprint(split.images, split.labels),
                dtype=dtype,
                device=device,
                batch_size=batch_size,
                bf16_autocast=bf16_autocast,
                root=root,
                prefix_fingerprint=fingerprint,
            )
    return caches
