"""The layout a CIFAR-10 image source must have, and the messages that explain it.

A folder or zip holds ``train/<class>/<image>`` and ``test/<class>/<image>``, one folder per
CIFAR-10 class. :func:`check_layout` sorts a listing of relative file names into splits and
labels, or raises a :class:`~course.errors.DataError` that says what is wrong and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from course.errors import DataError

CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

SPLITS = ("train", "test")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})

#: How a source must be laid out, for error messages.
LAYOUT_HELP = (
    "Lay the images out as train/<class>/<image> and test/<class>/<image>, one folder per "
    "CIFAR-10 class (" + ", ".join(CLASSES) + "), or pass a torchvision root."
)


def is_junk(name: str) -> bool:
    """Files that operating systems and zip tools leave behind, never part of a data set."""
    parts = name.split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1] in (
        "Thumbs.db",
        "desktop.ini",
    )


def strip_common_folder(names: list[str]) -> tuple[str, list[str]]:
    """Drop one top-level folder that wraps everything (a zipped ``cifar10/`` folder)."""
    firsts = {n.split("/", 1)[0] for n in names}
    if len(firsts) == 1 and all("/" in n for n in names):
        (top,) = firsts
        if top not in SPLITS:
            return top + "/", [n.split("/", 1)[1] for n in names]
    return "", names


def check_layout(names: Iterable[str], where: str) -> dict[str, list[tuple[str, int]]]:
    """Sort relative file names into ``{"train": [(name, label)], "test": [...]}``.

    Args:
        names: file paths relative to the source's root, with ``/`` separators
            (folder entries and hidden files are ignored).
        where: the folder or zip they came from, for error messages.

    Raises:
        DataError: nothing there, images outside their class folders, a missing split,
            classes other than CIFAR-10's ten, or a file that is not an image.
    """
    names = sorted(n for n in names if not n.endswith("/") and not is_junk(n))
    if not names:
        raise DataError(f"{where} is empty: it holds no image files.", LAYOUT_HELP)
    found: dict[str, list[tuple[str, int]]] = {split: [] for split in SPLITS}
    extra: dict[str, set[str]] = {split: set() for split in SPLITS}
    for name in names:
        parts = name.split("/")
        suffix = Path(parts[-1]).suffix.lower()
        if len(parts) == 1:
            if suffix in IMAGE_SUFFIXES:
                raise DataError(
                    f"{where} has images directly in it (e.g. {name}), outside any split folder.",
                    LAYOUT_HELP,
                )
            continue  # a README or licence file beside the splits is fine
        if parts[0] in CLASSES:
            raise DataError(
                f"{where} has class folders ({parts[0]}/, ...) directly in it.",
                "Put them under train/ (and the test images under test/): "
                "train/<class>/<image>, test/<class>/<image>.",
            )
        if parts[0] not in SPLITS:
            raise DataError(
                f"{where} has a folder {parts[0]}/ that is not train/ or test/.",
                "Keep only train/ and test/ (the validation split is carved out of train/ "
                "automatically); move other folders elsewhere.",
            )
        if len(parts) != 3:
            raise DataError(
                f"{where}/{name} is not in a class folder of its split "
                f"(expected {parts[0]}/<class>/<image>).",
                LAYOUT_HELP,
            )
        split, cls, _ = parts
        if cls not in CLASSES:
            extra[split].add(cls)
            continue
        if suffix not in IMAGE_SUFFIXES:
            raise DataError(
                f"{where}/{name} is not an image file (images end in "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}).",
                "Move this file out of the image folders.",
            )
        found[split].append((name, CLASSES.index(cls)))
    for split in SPLITS:
        if extra[split]:
            raise DataError(
                f"{where}/{split}/ has folders that are not CIFAR-10 classes: "
                f"{', '.join(sorted(extra[split]))}.",
                f"CIFAR-10 has exactly these ten classes: {', '.join(CLASSES)}. "
                "Rename or remove the other folders.",
            )
        if not found[split]:
            raise DataError(f"{where} has no {split}/ images.", LAYOUT_HELP)
        missing = sorted(set(CLASSES) - {CLASSES[label] for _, label in found[split]})
        if missing:
            raise DataError(
                f"{where}/{split}/ has no images of {', '.join(missing)}.",
                f"CIFAR-10 needs all ten classes in each split: {', '.join(CLASSES)}.",
            )
    return found
