"""CIFAR-10 for the course: load it once, split it, and serve it to a model.

``load_cifar10()`` finds the data (see :func:`search_locations`), decodes every image once
into a uint8 tensor, keeps the decoded arrays in ``course.paths.cache_dir()`` so the next
load takes about a second, and splits the 50,000 training images into 45,000 train and
5,000 validation images (500 of each class, seeded) as the lecture did. ``make_loaders()``
wraps the splits in ``DataLoader`` objects with the transforms of your choice (it and
``TransformedImages`` live in :mod:`course.loaders` and are re-exported here).

Without data, ``synthetic_cifar10()`` makes small, clearly labelled stand-in images whose
classes a network *can* learn, so code can be tried anywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from course import paths
from course.errors import DataError
from course.loaders import TransformedImages, make_loaders
from course.sources import CLASSES, RawCIFAR10, Source, detect, digest, load_decoded, open_source

__all__ = [
    "CLASSES",
    "LECTURE_TYPO_STD",
    "NORMALIZATIONS",
    "CIFAR10Splits",
    "ImageSplit",
    "TransformedImages",
    "find_cifar10",
    "load_cifar10",
    "make_loaders",
    "VALID_FRACTION",
    "search_locations",
    "split_indices",
    "synthetic_cifar10",
]

Stats = tuple[tuple[float, float, float], tuple[float, float, float]]

#: Per-channel (mean, std) for ``transforms.Normalize``, pixels scaled to [0, 1].
NORMALIZATIONS: dict[str, Stats] = {
    # What the ImageNet-pretrained torchvision weights were trained with.
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # Exact mean and population std of the 45,000 training images (seed 123) of the JPEG
    # copy in ../shared/data at 32 px: one float64 pass with numpy over load_cifar10().train.
    # Another seed's train split moves them by about 1e-4; tests/test_data.py re-derives them.
    "cifar10": ((0.49125, 0.48195, 0.44639), (0.24511, 0.24272, 0.26063)),
    # The lecture's from-scratch run: maps [0, 1] to [-1, 1].
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}

#: The lecture's test transform used 0.2255 for blue instead of ImageNet's 0.225 (a typo).
LECTURE_TYPO_STD = (0.229, 0.224, 0.2255)

#: The share of each class's training images held out for validation (500 of 5,000).
VALID_FRACTION = 0.1

_SYNTHETIC_PER_CLASS = 100


@dataclass(frozen=True)
class ImageSplit:
    """One split, decoded once and held in memory.

    Attributes:
        images: uint8 tensor ``(N, 3, 32, 32)``.
        labels: int64 tensor ``(N,)``, indices into :data:`CLASSES`.
        name: ``"train"``, ``"valid"`` or ``"test"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    name: str

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class CIFAR10Splits:
    """The train, validation and test splits and where they came from.

    Attributes:
        source: where the images came from, in words (starts with "synthetic" for
            stand-in data); never a build machine's path (``course.paths.display_path``).
        synthetic: ``True`` for :func:`synthetic_cifar10` images, which are not CIFAR-10.
        from_kit: ``True`` for the student kit's CIFAR-10 subset.
        fingerprint: a short hash of the images and labels in the three splits, so caches
            built from them (features, results) never mix up two different loads.
    """

    train: ImageSplit
    valid: ImageSplit
    test: ImageSplit
    source: str
    synthetic: bool
    fingerprint: str
    from_kit: bool = False

    @property
    def kind(self) -> str:
        """``"synthetic"``, ``"kit-subset"`` (the student kit's subset) or ``"cifar10"``."""
        if self.synthetic:
            return "synthetic"
        return "kit-subset" if self.from_kit else "cifar10"

    def describe(self) -> str:
        """One line: what the data is, where it came from, and the split sizes."""
        kind = "synthetic images (not CIFAR-10)" if self.synthetic else "CIFAR-10"
        sizes = " / ".join(f"{len(s):,}" for s in (self.train, self.valid, self.test))
        return f"{kind} from {self.source}: train / valid / test = {sizes}"


def search_locations() -> list[tuple[str, Path]]:
    """Where ``load_cifar10()`` looks when no source is given, in order, with a label each."""
    places = []
    if os.environ.get("COURSE_DATA"):
        places.append(("$COURSE_DATA", Path(os.environ["COURSE_DATA"]).expanduser()))
    places.append(("torchvision root ./data", Path("data").resolve()))
    places.append(("download folder", paths.cache_dir() / "torchvision"))
    places.append(("torchvision root ~/.cache", Path.home() / ".cache"))
    kit = paths.kit_data_dir()
    if kit is not None:
        places.append(("the CIFAR-10 subset shipped with the kit", kit))
    shared = paths.shared_data_dir()
    if shared is not None:
        places.append(("shared data beside the project", shared))
    return places


def find_cifar10() -> tuple[Source | None, list[str]]:
    """The CIFAR-10 source ``load_cifar10()`` would read (nothing is decoded), and the places
    searched before it, as ``"label (path)"`` lines.

    Raises:
        DataError: ``$COURSE_DATA`` is set but holds no CIFAR-10, or a source found is
            incomplete (e.g. one of the two zips).
    """
    return _search()


def load_cifar10(
    source: str | os.PathLike[str] | None = None,
    *,
    subset: int | None = None,
    seed: int = 123,
    download: bool = False,
    allow_synthetic: bool = False,
) -> CIFAR10Splits:
    """Load CIFAR-10 as train (45,000), valid (5,000) and test (10,000) uint8 splits.

    Args:
        source: ``None`` to search (see :func:`search_locations`); a folder with ``train/``
            and ``test/`` class folders; a zip of one; a folder holding
            ``cifar10-jpeg-train.zip`` and ``cifar10-jpeg-test.zip``; a torchvision root;
            or ``"synthetic"``.
        subset: keep at most this many images of each class in each split (seeded), for
            quick runs.
        seed: picks the validation images and the subset; the same seed gives the same splits.
        download: download through torchvision if nothing is found (never when
            ``course.paths.offline()``).
        allow_synthetic: fall back to :func:`synthetic_cifar10` (``subset`` or 100 images a
            class) when nothing is found; the result says ``synthetic=True``.

    Raises:
        DataError: the source is missing, damaged or laid out differently, or nothing was
            found (the message lists every place searched and how to get the data).
    """
    if subset is not None and (not isinstance(subset, int) or subset < 1):
        raise DataError(
            f"subset={subset!r} is not a positive whole number.", "Pass e.g. subset=100."
        )
    if source is not None and str(source) == "synthetic":
        return synthetic_cifar10(subset or _SYNTHETIC_PER_CLASS, seed=seed)
    if source is not None:
        path = Path(source).expanduser()
        found = detect(path) if download else open_source(path)
        if found is None:
            found = _download(path)
    else:
        found, searched = _search()
        if found is None and download and not paths.offline():
            found = _download(paths.cache_dir() / "torchvision")
        if found is None:
            if allow_synthetic:
                splits = synthetic_cifar10(subset or _SYNTHETIC_PER_CLASS, seed=seed)
                note = f"synthetic stand-in: no CIFAR-10 found ({'; '.join(searched)})"
                return dataclasses.replace(splits, source=note)
            raise _nothing_found(searched, download)
    raw, checksum = load_decoded(found)
    splits = _split(raw, checksum, seed=seed, subset=subset, source=found.describe())
    return dataclasses.replace(splits, from_kit=found.in_kit) if found.in_kit else splits


def _search() -> tuple[Source | None, list[str]]:
    searched = []
    for label, place in search_locations():
        # An explicit COURSE_DATA that is wrong must say so, not be skipped quietly.
        found = open_source(place) if label == "$COURSE_DATA" else detect(place)
        if found is not None:
            return found, searched
        searched.append(f"{label} ({paths.display_path(place)})")
    return None, searched


def _nothing_found(searched: list[str], download: bool) -> DataError:
    if "COURSE_DATA" not in os.environ:
        searched = ["$COURSE_DATA (not set)", *searched]
    note = ""
    if download:
        note = " download=True was ignored: the course is offline (COURSE_OFFLINE=1 or CI)."
    return DataError(
        "No CIFAR-10 found. Searched:\n    - " + "\n    - ".join(searched) + note,
        "Either call load_cifar10(download=True) on a machine with network (about 170 MB, "
        f"saved in {paths.cache_dir() / 'torchvision'}), or set COURSE_DATA to a folder with "
        "train/<class>/ and test/<class>/ images, a zip of one, a folder holding "
        "cifar10-jpeg-train.zip and cifar10-jpeg-test.zip, or a torchvision root. "
        "To try the code without data, pass source='synthetic'.",
    )


def _download(root: Path) -> Source:
    if paths.offline():
        raise DataError(
            f"No CIFAR-10 at {root}, and download=True cannot download: the course is offline "
            "(COURSE_OFFLINE=1 or CI is set).",
            "Unset COURSE_OFFLINE/CI on a machine with network, or point source / COURSE_DATA "
            "at a folder or zip of CIFAR-10.",
        )
    from torchvision.datasets import CIFAR10  # only needed here; keeps imports light

    try:
        for train in (True, False):
            CIFAR10(str(root), train=train, download=True)
    except Exception as error:  # network, disk and checksum errors all end the same way
        raise DataError(
            f"Downloading CIFAR-10 into {root} failed ({type(error).__name__}: {error}).",
            "Check the network connection and free disk space, or set COURSE_DATA to a "
            "local copy (a folder or zip of train/ and test/ class folders).",
        ) from None
    return open_source(root)


def split_indices(
    train_labels: torch.Tensor, test_labels: torch.Tensor, *, seed: int, subset: int | None = None
) -> dict[str, np.ndarray]:
    """Pick the images of each split, stratified by class and seeded.

    Each class's training images are shuffled with ``seed``; the first 10% (500 of 5,000,
    and at least one) become validation images, the rest training images. ``subset=N`` keeps
    the first N of each class in each split, so a subset's images are also in every larger
    one. Each split comes back in a seeded random order, so a first batch mixes the classes.
    """
    rng = np.random.default_rng(seed)
    test_rng = np.random.default_rng([seed, 1])  # own stream: test choice never moves train
    chosen: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    train_labels_np, test_labels_np = train_labels.numpy(), test_labels.numpy()
    for label in range(len(CLASSES)):
        members = rng.permutation(np.flatnonzero(train_labels_np == label))
        n_valid = math.floor(len(members) * VALID_FRACTION + 0.5)
        if len(members) > 1:  # a tiny source still gets something to validate on
            n_valid = min(len(members) - 1, max(1, n_valid))
        chosen["valid"].append(members[:n_valid][:subset])
        chosen["train"].append(members[n_valid:][:subset])
        chosen["test"].append(
            test_rng.permutation(np.flatnonzero(test_labels_np == label))[:subset]
        )
    return {
        name: (test_rng if name == "test" else rng).permutation(np.concatenate(parts))
        for name, parts in chosen.items()
    }


def _split(
    raw: RawCIFAR10, checksum: str, *, seed: int, subset: int | None, source: str
) -> CIFAR10Splits:
    indices = split_indices(raw.train_labels, raw.test_labels, seed=seed, subset=subset)
    hasher = hashlib.blake2b(checksum.encode(), digest_size=8)
    splits = {}
    for name, idx in indices.items():
        images, labels = (
            (raw.test_images, raw.test_labels)
            if name == "test"
            else (raw.train_images, raw.train_labels)
        )
        hasher.update(name.encode() + idx.astype(np.int64).tobytes())
        index = torch.from_numpy(idx)
        splits[name] = ImageSplit(images[index], labels[index], name)
    return CIFAR10Splits(**splits, source=source, synthetic=False, fingerprint=hasher.hexdigest())


# Ten well-separated hues, one per class; with a class-specific stripe angle on top, a
# small CNN separates the classes within a few dozen steps.
_HUES = torch.arange(10, dtype=torch.float32) / 10


def _palette() -> torch.Tensor:
    """RGB colours (10, 3) for the hues, at saturation 0.8 and value 0.9 (HSV to RGB)."""
    h = _HUES[:, None] * 6
    k = (torch.tensor([5.0, 3.0, 1.0]) + h) % 6
    return 0.9 - 0.9 * 0.8 * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def synthetic_cifar10(per_class: int = _SYNTHETIC_PER_CLASS, *, seed: int = 123) -> CIFAR10Splits:
    """Stand-in images for trying code without CIFAR-10: NOT real data, and labelled so.

    Each class has its own colour and stripe angle (class ``c``: hue ``c/10``, stripes at
    ``18 * c`` degrees); every image adds a random stripe phase, brightness and pixel noise.
    A small network learns the classes quickly, so a falling loss means the code works.

    Args:
        per_class: images of each class in each split (train, valid and test alike).
        seed: the same seed gives the same images.
    """
    if per_class < 1:
        raise DataError(f"per_class={per_class!r} must be at least 1.", "Pass e.g. per_class=100.")
    generator = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    palette = _palette()
    splits = {}
    for name in ("train", "valid", "test"):
        labels = torch.arange(10).repeat_interleave(per_class)
        labels = labels[torch.randperm(len(labels), generator=generator)]
        n = len(labels)
        angle = (labels.float() * math.pi / 10)[:, None, None]
        phase = torch.rand(n, 1, 1, generator=generator) * 2 * math.pi
        stripes = torch.sin(
            2 * math.pi / 8 * (xx * torch.cos(angle) + yy * torch.sin(angle)) + phase
        )
        brightness = 0.85 + 0.3 * torch.rand(n, 1, 1, 1, generator=generator)
        noise = 0.06 * torch.randn(n, 3, 32, 32, generator=generator)
        pixels = (
            palette[labels][:, :, None, None] * brightness * (0.75 + 0.25 * stripes[:, None])
            + noise
        )
        images = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)
        splits[name] = ImageSplit(images, labels, name)
    fingerprint = digest(*(t for s in splits.values() for t in (s.images, s.labels)))[:16]
    source = (
        f"synthetic: class patterns (colour + stripe angle), {per_class} a class per split, "
        f"seed {seed}"
    )
    return CIFAR10Splits(**splits, source=source, synthetic=True, fingerprint=fingerprint)
