"""The decoded-image cache: decode a source once, reuse the tensors while the files are unchanged.

The cache lives in ``course.paths.cache_dir()/cifar10``, one file per source, keyed on the
source files' paths, sizes and modification times, with a checksum of its tensors: a damaged
cache is decoded again, never trusted.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch

from course import paths
from course.sources.decoding import RawCIFAR10
from course.sources.reading import Source

#: Bump when the cache file's contents change, so that old caches are ignored.
CACHE_VERSION = 1


def digest(*tensors: torch.Tensor) -> str:
    """A blake2b hex digest of the tensors' raw bytes (about 0.4 s for all of CIFAR-10)."""
    hasher = hashlib.blake2b(digest_size=16)
    for tensor in tensors:
        hasher.update(tensor.contiguous().numpy())
    return hasher.hexdigest()


def load_decoded(source: Source) -> tuple[RawCIFAR10, str]:
    """Return the decoded images of ``source`` and their digest, from the cache if it is intact.

    The cache lives in ``course.paths.cache_dir()/cifar10``, keyed on the source files'
    paths, sizes and modification times; a cache whose checksum fails is decoded again.
    """
    folder = paths.cache_dir() / "cifar10"
    where = hashlib.blake2b(str(source.path.resolve()).encode(), digest_size=6).hexdigest()
    stem = f"{source.kind}-{where}"
    cache = folder / f"{stem}-{source.identity()}-v{CACHE_VERSION}.pt"
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    raw = source.read()
    checksum = digest(raw.train_images, raw.train_labels, raw.test_images, raw.test_labels)
    _write_cache(cache, raw, checksum, stale=folder.glob(f"{stem}-*.pt"))
    return raw, checksum


def _read_cache(path: Path) -> tuple[RawCIFAR10, str] | None:
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, weights_only=True)
        raw = RawCIFAR10(
            *(stored[k] for k in ("train_images", "train_labels", "test_images", "test_labels"))
        )
        for images, labels in (
            (raw.train_images, raw.train_labels),
            (raw.test_images, raw.test_labels),
        ):
            if (
                images.dtype != torch.uint8
                or images.shape[1:] != (3, 32, 32)
                or labels.dtype != torch.int64
                or len(labels) != len(images)
            ):
                raise ValueError("unexpected shapes")
        # A flipped bit or a half-written file must not slip into training unnoticed.
        if (
            digest(raw.train_images, raw.train_labels, raw.test_images, raw.test_labels)
            != stored["digest"]
        ):
            raise ValueError("checksum mismatch")
        return raw, stored["digest"]
    except Exception as error:  # any unreadable cache is rebuilt, never trusted
        warnings.warn(
            f"Decoded-image cache {path} is damaged ({error}); decoding the images again.",
            RuntimeWarning,
            stacklevel=3,
        )
        path.unlink(missing_ok=True)
        return None


def _write_cache(path: Path, raw: RawCIFAR10, checksum: str, stale: Iterable[Path]) -> None:
    stale = list(stale)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({**raw.__dict__, "digest": checksum}, tmp)
        os.replace(tmp, path)  # atomic: a reader never sees a half-written cache
        for old in stale:
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        warnings.warn(
            f"Could not cache decoded images in {path.parent} ({error}); "
            "the next load decodes them again.",
            RuntimeWarning,
            stacklevel=3,
        )
