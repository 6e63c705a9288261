"""Feature caching: run the frozen part of a VGG-like network once, train its tail many times.

With the backbone frozen and no random augmentation, the frozen layers map each image to the
same output in every epoch. Computing that output once per split and training only the
layers after it gives the same training run, for a fraction of the work.

Where to cut. The model (anything laid out like torchvision's VGG: ``features``, ``avgpool``,
``classifier``) is read as the chain ``features..., avgpool, flatten, classifier...``. The cache
holds the output of the longest prefix whose modules (1) have no trainable parameter and
(2) behave the same in train and eval mode. Rule (2) is what keeps the cache exact: in the
lecture's training loop the model is in train mode, so the frozen classifier's two Dropout
layers still drop activations at random. fc7's output depends on the random mask drawn in
``classifier[2]`` *before* fc7, so caching fc7 (after classifier[:6], as an eval-mode forward
would give) would silently turn dropout off for fc7's input: a different training run. So:

- head-only protocols (``lecture-small``/``-large``, ``linear-probe``): cache fc6 after its
  ReLU, ``classifier[:2]``, 4096 numbers per image; the tail is
  ``Dropout, fc7 (frozen), ReLU, Dropout, head``: the dropout masks are drawn as before.
- ``corrected`` (fc6, fc7, head train): cache the flattened pool5 output, 25,088 numbers.
- A frozen BatchNorm in train mode normalizes with batch statistics, so the cut also stops
  before one (``vgg16_bn``): the prefix stays exact, just shorter.

Cache key: split name, input size, normalization, a hash of the prefix's architecture and
weights, the data fingerprint (``CIFAR10Splits.fingerprint``), the number of images, the
storage dtype and this format's version. On disk under ``course.paths.cache_dir()/features/
<key>/``: ``features.bin`` (raw, row-major, memory-mappable), ``labels.bin`` (int64) and
``header.json`` (shape, dtype, key fields), written last so a half-written cache is never used.
bf16 is stored as its raw 16 bits and viewed back as ``torch.bfloat16`` after mapping.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course.paths import cache_dir
from solutions.fast.gpu_data import BatchTransform

FORMAT_VERSION = 1

#: storage dtype name -> (torch dtype in memory, numpy dtype on disk)
STORAGE: dict[str, tuple[torch.dtype, Any]] = {
    "float32": (torch.float32, np.float32),
    "float16": (torch.float16, np.float16),
    "bfloat16": (torch.bfloat16, np.uint16),  # numpy has no bf16: keep the raw bits
}

# Modules whose output differs between train and eval mode: never cache past one.
_MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.AlphaDropout, nn.modules.batchnorm._NormBase)


@dataclass(frozen=True)
class SplitModel:
    """A model cut in two: ``tail(prefix(x)) == model(x)`` in both train and eval mode."""

    prefix: nn.Sequential  # frozen and mode-independent: its output can be cached
    tail: nn.Sequential  # shares its modules (and parameters) with the model
    cut: str  # where the cut is, e.g. "classifier[2]" (the cache is the input of this module)


def chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The VGG-like model as a named chain of modules, in forward order."""
    for name in ("features", "avgpool", "classifier"):
        if not hasattr(model, name):
            raise ValueError(
                f"{type(model).__name__} has no .{name}: feature caching needs a VGG-like model "
                "(features, avgpool, classifier); train it without the cache."
            )
    layers: list[tuple[str, nn.Module]] = []
    layers += [(f"features[{i}]", m) for i, m in enumerate(model.features)]
    layers.append(("avgpool", model.avgpool))
    layers.append(("flatten", nn.Flatten(1)))
    layers += [(f"classifier[{i}]", m) for i, m in enumerate(model.classifier)]
    return layers


def _cacheable_module(module: nn.Module) -> bool:
    if any(p.requires_grad for p in module.parameters()):
        return False
    return not any(isinstance(m, _MODE_DEPENDENT) for m in module.modules())


def split_model(model: nn.Module) -> SplitModel | None:
    """Cut ``model`` at the deepest exact caching point, or ``None`` if nothing is cacheable.

    See the module docstring for the rule. ``None`` means the very first layer trains (or is
    mode-dependent), e.g. the scratch protocol.
    """
    layers = chain(model)
    cut = 0
    while cut < len(layers) and _cacheable_module(layers[cut][1]):
        cut += 1
    if cut == 0 or cut == len(layers):
        # cut == len: nothing trains at all, so there is nothing to train on a cache either.
        return None
    return SplitModel(
        prefix=nn.Sequential(*(m for _, m in layers[:cut])),
        tail=nn.Sequential(*(m for _, m in layers[cut:])),
        cut=layers[cut][0],
    )


def weights_fingerprint(module: nn.Module) -> str:
    """Hash of a module's architecture (its repr) and every parameter and buffer, bit for bit."""
    digest = hashlib.blake2b(repr(module).encode(), digest_size=16)
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class FeatureCache:
    """A cached feature matrix, memory-mapped from disk."""

    features: torch.Tensor  # (N, D), storage dtype, memory-mapped (CPU)
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
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    data_fingerprint: str,
    dtype: str = "bfloat16",
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    bf16_autocast: bool = True,
    root: Path | None = None,
    prefix_fingerprint: str | None = None,
) -> FeatureCache:
    """Return ``prefix``'s output for every image of a split, from disk or computed now.

    Images go through the eval transform (``Resize(size)`` and ``Normalize(mean, std)``, no
    augmentation) on ``device`` in batches; the prefix runs in eval mode (it is
    mode-independent by construction, see :func:`split_model`) under ``inference_mode``, with
    bf16 autocast on CUDA when ``bf16_autocast``.

    Args:
        prefix: the frozen part, ``split_model(model).prefix``.
        images: uint8 ``(N, 3, 32, 32)``.
        labels: int64 ``(N,)``.
        split: the split's name (part of the cache key, as are the next five).
        size: input side in pixels.
        normalization: the name of the normalization.
        mean: the per-channel mean it subtracts.
        std: the per-channel std it divides by.
        data_fingerprint: ``CIFAR10Splits.fingerprint`` of the data.
        dtype: ``"bfloat16"`` (default: on a GPU the tail runs in bf16 autocast anyway, and
            bf16 cannot overflow), ``"float16"`` or ``"float32"`` (exact, for tests).
        root: folder for caches; ``course.paths.cache_dir() / "features"`` by default.
        prefix_fingerprint: :func:`weights_fingerprint` of ``prefix`` when the caller has it
            (hashing VGG16's frozen part reads ~0.5 GB: do it once for the three splits).
    """
    if dtype not in STORAGE:
        raise ValueError(f"cache dtype {dtype!r}: choose one of {', '.join(STORAGE)}")
    device = torch.device(device)
    autocast = bf16_autocast and device.type == "cuda"
    fields = {
        "format": FORMAT_VERSION,
        "split": split,
        "size": size,
        "normalization": [normalization, list(mean), list(std)],
        "weights": prefix_fingerprint or weights_fingerprint(prefix),
        "data": data_fingerprint,
        "n": len(images),
        "dtype": dtype,
        "autocast": "bf16" if autocast else "off",
    }
    folder = (root or cache_dir() / "features") / cache_key(fields)
    if (folder / "header.json").is_file():
        return _open(folder, built=False)

    transform = BatchTransform(size, mean, std, channels_last=device.type == "cuda")
    was_training = prefix.training
    prefix.eval().to(device)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    out: np.memmap | None = None
    torch_dtype, np_dtype = STORAGE[dtype]
    with torch.inference_mode():
        for lo in range(0, len(images), batch_size):
            batch = transform(images[lo : lo + batch_size].to(device))
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                feats = prefix(batch).float().reshape(len(batch), -1)
            if out is None:
                shape = (len(images), feats.shape[1])
                out = np.memmap(tmp / "features.bin", dtype=np_dtype, mode="w+", shape=shape)
            stored = feats.to(torch_dtype).cpu()
            if dtype == "bfloat16":
                stored = stored.view(torch.int16)  # same bits; numpy reads them as uint16
            out[lo : lo + len(batch)] = stored.numpy().view(np_dtype)
    prefix.train(was_training)
    if out is None:
        raise ValueError(f"split {split!r} has no images to cache")
    out.flush()
    del out
    labels.to(torch.int64).cpu().numpy().tofile(tmp / "labels.bin")
    header = {
        **fields,
        "shape": [len(images), int(feats.shape[1])],
        "seconds": round(time.perf_counter() - start, 3),
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
    torch_dtype, np_dtype = STORAGE[header["dtype"]]
    n, dim = header["shape"]
    # Copy-on-write mapping: pages load on demand and torch gets a writable array.
    mapped = np.memmap(folder / "features.bin", dtype=np_dtype, mode="c", shape=(n, dim))
    features = torch.from_numpy(mapped)
    if header["dtype"] == "bfloat16":
        features = features.view(torch.bfloat16)
    labels = torch.from_numpy(np.fromfile(folder / "labels.bin", dtype=np.int64))
    return FeatureCache(features, labels, folder, header, built)
