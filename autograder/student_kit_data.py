"""The student kit's data and network: a CIFAR-10 subset and the offline MobileNetV2.

The subset comes with its provenance (``data/README.md``) and checksums; both come from
``../shared/data`` beside the checkout, and nothing of them is committed. Used by
:func:`autograder.student_kit.build_student_kit`.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from autograder.student_wheel import ROOT
from course import paths
from course.errors import CourseError
from course.sources import CLASSES, TEST_ZIP, TRAIN_ZIP
from course.sources.member import STAND_IN

#: The files of the offline pretrained network that the kit ships (license included); its
#: README for students is ``packaging/student/PRETRAINED_README.md``, not the data's notes.
PRETRAINED_FILES = (
    "mobilenet_v2_1.0_224_quant.tflite",
    "imagenet_labels.txt",
    "LICENSE",
)
#: The kit's CIFAR-10 subset, per class: ``train`` images (``load_cifar10`` holds 10% of them
#: out for validation) and ``test`` images. Lessons 4 and later take ``subset=100``: 100 train, 100
#: valid and 100 test images a class, which 1,000 train images a class provide (1,000 - 100).
KIT_PER_CLASS = {"train": 1000, "test": 100}
#: Seeds the choice of the kit's images among each class's files (sorted by name).
KIT_SEED = 123
#: The lessons' laptop-mode subset, per class and split (scripts/execute_lessons.py, lessons 4 on).
LESSON_PER_CLASS = 100


def pretrained_dir() -> Path:
    """The offline MobileNetV2 folder (``../shared/data/mobilenet-v2-imagenet``)."""
    shared = paths.shared_data_dir()
    folder = shared / "mobilenet-v2-imagenet" if shared else None
    missing = [n for n in PRETRAINED_FILES if folder is None or not (folder / n).is_file()]
    if missing:
        raise CourseError(
            f"the offline pretrained network is incomplete: missing {', '.join(missing)} "
            f"(looked in {folder or '../shared/data/mobilenet-v2-imagenet'})",
            "put mobilenet_v2_1.0_224_quant.tflite, imagenet_labels.txt and LICENSE "
            "in ../shared/data/mobilenet-v2-imagenet/ beside the checkout",
        )
    return folder


def cifar10_zips() -> tuple[Path, Path]:
    """The full CIFAR-10 JPEG zips in ``../shared/data`` (the kit's subset is cut from them)."""
    shared = paths.shared_data_dir()
    zips = tuple(
        (shared / name) if shared else Path("../shared/data") / name
        for name in (TRAIN_ZIP, TEST_ZIP)
    )
    missing = [str(z) for z in zips if not z.is_file()]
    if missing:
        raise CourseError(
            f"the CIFAR-10 JPEG zips are missing: {', '.join(missing)}",
            f"put {TRAIN_ZIP} and {TEST_ZIP} in ../shared/data/ beside the checkout "
            "(see that folder's README)",
        )
    return zips[0], zips[1]


def sha256_file(path: Path) -> str:
    """The file's sha256 as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cifar10_subset(zips: tuple[Path, Path]) -> dict[str, bytes]:
    """The kit's subset: ``{"train/<class>/<file>.jpg": JPEG bytes, ...}``, copied unchanged.

    Each class's files are sorted by name and a seeded permutation (numpy, seed
    :data:`KIT_SEED`) picks :data:`KIT_PER_CLASS` of them, so two builds ship the same images.
    """
    chosen: dict[str, bytes] = {}
    for split, path in zip(("train", "test"), zips, strict=True):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            for label, cls in enumerate(CLASSES):
                members = sorted(n for n in names if n.startswith(f"{split}/{cls}/"))
                rng = np.random.default_rng([KIT_SEED, label, split == "test"])
                count = KIT_PER_CLASS[split]
                if len(members) < count:
                    raise CourseError(
                        f"{path} has {len(members)} {split} images of {cls}; the kit needs {count}",
                        "use the full CIFAR-10 JPEG zips of ../shared/data",
                    )
                for index in sorted(rng.permutation(len(members))[:count]):
                    chosen[members[index]] = archive.read(members[index])
    return chosen


#: The lessons' assets folder; lesson 7 reads ``assets/my_image.jpg`` (never committed).
LESSON_ASSETS = ROOT / "course" / "lessons" / "assets"
#: The image lesson 7 predicts, relative to the kit's ``lessons/`` folder.
MY_IMAGE = "assets/my_image.jpg"


def lesson_assets(train_zip: Path) -> dict[str, Path | bytes]:
    """The kit's ``lessons/assets/``: the committed files (its README) and ``my_image.jpg``.

    ``my_image.jpg`` is CIFAR-10's ``train/horse/0000.jpg``
    (:data:`course.sources.member.STAND_IN`), copied unchanged from ``train_zip``: no CIFAR-10
    image is committed, and a copy a lesson run left in the checkout (or a photo of one's own
    put there) is not shipped.
    """
    files: dict[str, Path | bytes] = {
        f"lessons/assets/{p.name}": p
        for p in sorted(LESSON_ASSETS.iterdir())
        if p.is_file() and p.name != Path(MY_IMAGE).name and not p.name.startswith(".")
    }
    with zipfile.ZipFile(train_zip) as archive:
        try:
            files[f"lessons/{MY_IMAGE}"] = archive.read(STAND_IN)
        except KeyError:
            raise CourseError(
                f"{train_zip} has no {STAND_IN}, the image lesson 7 predicts",
                "use the full CIFAR-10 JPEG zips of ../shared/data",
            ) from None
    return files


def data_readme(zips: tuple[Path, Path], subset: dict[str, bytes], sums_sha256: str) -> str:
    """``data/README.md``: what the subset is, where it comes from, counts and checksums."""
    train, test = KIT_PER_CLASS["train"], KIT_PER_CLASS["test"]
    valid = round(train * 0.1)
    lines = [
        "# A CIFAR-10 subset for the lessons",
        "",
        f"`cifar10-subset/` holds {len(subset):,} real CIFAR-10 images: {train:,} training "
        f"and {test:,} test images of each of the ten classes, in folders "
        "`train/<class>/NNNN.jpg` and `test/<class>/NNNN.jpg`. The lessons find it by "
        "themselves when they run inside the kit.",
        "",
        f"Lessons 4 and later, in laptop mode, use {LESSON_PER_CLASS} images a class in each "
        "split: "
        f"`load_cifar10` holds {valid} of each class's {train:,} training images out for "
        f"validation, then keeps {LESSON_PER_CLASS} train, {LESSON_PER_CLASS} validation and "
        f"{LESSON_PER_CLASS} test images a class. Real mode needs the full CIFAR-10 "
        "(60,000 images), which torchvision downloads on a machine with network.",
        "",
        "| split | images a class | images |",
        "| --- | ---: | ---: |",
        f"| train | {train:,} | {10 * train:,} |",
        f"| test | {test:,} | {10 * test:,} |",
        "",
        "## Where the images come from",
        "",
        'CIFAR-10 (Alex Krizhevsky, 2009, "Learning Multiple Layers of Features from Tiny '
        'Images"; https://www.cs.toronto.edu/~kriz/cifar.html). Its authors publish it '
        "without a formal licence, and it is used freely in research and teaching; cite the "
        "report above when you use it.",
        "",
        "These files are a JPEG copy: every 32x32 image was stored as a quality-75 JPEG, so "
        "pixels differ slightly from the original binary release and accuracies can differ "
        "from published ones by about a point. The kit's files are copied byte for byte from "
        "the course's full JPEG copy:",
        "",
        "| full copy | sha256 |",
        "| --- | --- |",
    ]
    lines += [f"| `{z.name}` | `{sha256_file(z)}` |" for z in zips]
    lines += [
        "",
        f"Each class's files were sorted by name and {train:,} (train) or {test:,} (test) "
        f"chosen with a numpy random permutation seeded with {KIT_SEED}. `SHA256SUMS` lists "
        f"the sha256 of every image (check them with `sha256sum -c SHA256SUMS` in this "
        f"folder); its own sha256 is `{sums_sha256}`.",
        "",
    ]
    return "\n".join(lines)
