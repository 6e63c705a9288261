"""Tiny CIFAR-10-shaped fixtures: image folders, zips and torchvision roots, made on the fly.

Every image is a flat colour that encodes its class in the red channel
(``class_colour``), so a test can check that labels survived loading
(``label_from_colour``) even after JPEG compression. Other test files may import these.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from course.data import CLASSES

TRAIN_ZIP = "cifar10-jpeg-train.zip"
TEST_ZIP = "cifar10-jpeg-test.zip"


def class_colour(label: int, index: int = 0) -> tuple[int, int, int]:
    """The RGB colour of image ``index`` of class ``label``: red is 25 * label + 10 (+0..8)."""
    return (25 * label + 10 + 2 * (index % 5), 200 - 15 * label, 40 + 7 * (index % 20))


def label_from_colour(image: torch.Tensor) -> int:
    """Recover the class of a fake uint8 ``(3, H, W)`` image from its mean red value."""
    return round((image[0].float().mean().item() - 14) / 25)


def _encode(colour: tuple[int, int, int], size: int, suffix: str) -> bytes:
    array = np.empty((size, size, 3), dtype=np.uint8)
    array[:] = colour
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    if suffix in (".jpg", ".jpeg"):
        image.save(buffer, format="JPEG", quality=95)
    else:
        image.save(buffer, format=suffix.lstrip(".").upper())
    return buffer.getvalue()


def _files(
    per_class: int,
    size: int,
    classes: Iterable[str],
    splits: Iterable[str],
    suffix: str,
    test_per_class: int | None,
) -> Iterator[tuple[str, bytes]]:
    """Yield ``("split/class/NNNN.jpg", bytes)`` for every fake image."""
    for split in splits:
        count = per_class if split != "test" or test_per_class is None else test_per_class
        for cls in classes:
            label = CLASSES.index(cls) if cls in CLASSES else 0
            for i in range(count):
                yield (
                    f"{split}/{cls}/{i:04d}{suffix}",
                    _encode(class_colour(label, i), size, suffix),
                )


def make_image_folder(
    root: Path,
    per_class: int = 4,
    size: int = 32,
    *,
    test_per_class: int | None = None,
    classes: Iterable[str] = CLASSES,
    splits: Iterable[str] = ("train", "test"),
    suffix: str = ".jpg",
) -> Path:
    """Write ``root/<split>/<class>/NNNN<suffix>`` images and return ``root``.

    Args:
        root: the folder to fill (created if needed).
        per_class: images of each class in each split.
        size: width and height in pixels (CIFAR-10 is 32).
        test_per_class: images of each class in ``test/`` when it should differ.
        classes: class folder names, CIFAR-10's ten by default.
        splits: split folders to write.
        suffix: file type, e.g. ``".jpg"`` or ``".png"``.
    """
    root = Path(root)
    for name, data in _files(per_class, size, classes, splits, suffix, test_per_class):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    root.mkdir(parents=True, exist_ok=True)
    return root


def make_image_zip(
    path: Path,
    per_class: int = 4,
    size: int = 32,
    *,
    top_folder: str | None = None,
    test_per_class: int | None = None,
    classes: Iterable[str] = CLASSES,
    splits: Iterable[str] = ("train", "test"),
    suffix: str = ".jpg",
) -> Path:
    """Write a zip of ``<split>/<class>/NNNN<suffix>`` images (stored, like the shared zips).

    Args:
        path: the zip file to write.
        top_folder: wrap everything in this folder (as zipping a ``cifar10/`` folder does).
        per_class, size, test_per_class, classes, splits, suffix: as in
            :func:`make_image_folder`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{top_folder}/" if top_folder else ""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in _files(per_class, size, classes, splits, suffix, test_per_class):
            archive.writestr(prefix + name, data)
    return path


def make_jpeg_zips(folder: Path, per_class: int = 4, *, test_per_class: int | None = None) -> Path:
    """Write ``cifar10-jpeg-train.zip`` and ``cifar10-jpeg-test.zip`` (the shared layout)."""
    folder = Path(folder)
    make_image_zip(folder / TRAIN_ZIP, per_class, splits=("train",))
    make_image_zip(
        folder / TEST_ZIP,
        per_class if test_per_class is None else test_per_class,
        splits=("test",),
    )
    return folder


def make_torchvision_root(root: Path, per_class: int = 4) -> Path:
    """Write a tiny ``root/cifar-10-batches-py`` in torchvision's pickle format."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for batch_index, name in enumerate(names):
        labels = [label for label in range(10) for _ in range(per_class)]
        data = np.empty((len(labels), 3, 32, 32), dtype=np.uint8)
        for i, label in enumerate(labels):
            data[i] = np.array(class_colour(label, i + batch_index), dtype=np.uint8)[:, None, None]
        batch = {b"data": data.reshape(len(labels), -1), b"labels": labels}
        (folder / name).write_bytes(pickle.dumps(batch))
    return Path(root)


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` down to its first ``keep`` fraction of bytes (an interrupted copy)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
