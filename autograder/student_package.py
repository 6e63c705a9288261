"""Build what students get: the ``course`` wheel, and the kit an instructor hands out.

The project's own ``pyproject.toml`` installs ``course``, ``solutions`` and
``autograder`` together, which is what instructors and graders want. Students must
not get ``solutions`` (every answer) or ``autograder`` (the hidden checks), so their
wheel has its own metadata, ``packaging/student/pyproject.toml``, a real file built by
setuptools like any other project: it is copied into a staging folder with the
``course`` package, and ``pip wheel --no-build-isolation`` builds it with the setuptools
installed here (no download).

The kit (``python -m autograder student-kit OUT``, ``make kit``) is one zip with the wheel,
the executed lessons, the released exercise notebook (made by ``python -m autograder
setup`` and ``release`` in a temporary course dir), a CIFAR-10 subset of the size the lessons
use (``data/``, with its provenance), the offline pretrained network with its license
(``pretrained/``), a README rendered from ``packaging/student/KIT_README.md`` and the
marker file ``transfer-course-kit.json`` by which ``course.paths.kit_dir`` finds the kit.
Data and network come from ``../shared/data`` beside the checkout; nothing of them is
committed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

import course
from course import paths
from course.errors import CourseError
from course.sources import CLASSES, TEST_ZIP, TRAIN_ZIP
from course.sources.member import STAND_IN

ROOT = Path(__file__).resolve().parents[1]
STUDENT_PROJECT = ROOT / "packaging" / "student"
DIST_NAME = "transfer-course-student"
KIT_NAME = "transfer-course-student-kit"
_PROJECT = "transfer-course"
_STUDENT_EXTRAS = ("notebook",)  # enough to open the notebooks and run `python -m course.check`
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


def student_requirements() -> list[str]:
    """The installed project's runtime requirements plus its ``notebook`` extra.

    Read from the installed metadata, so there is one list of dependencies: pyproject.toml's.
    """
    wanted = []
    for requirement in metadata.requires(_PROJECT) or []:
        spec, _, marker = requirement.partition(";")
        if not marker:
            wanted.append(spec.strip())
        elif any(f'extra == "{extra}"' in marker for extra in _STUDENT_EXTRAS):
            wanted.append(spec.strip())
    return wanted


def course_package_files(package: Path) -> list[Path]:
    """The modules of ``course`` and its subpackages: folders with an ``__init__.py``.

    Lessons, Jupytext sources and anything else that is not a module stay behind.
    """
    files = []
    for init in sorted(package.rglob("__init__.py")):
        folder = init.parent
        parents = [folder, *folder.relative_to(package).parents]
        if all((package / p / "__init__.py").is_file() for p in parents if str(p) != "."):
            files += sorted(folder.glob("*.py"))
    return sorted(set(files))


def stage_student_project(stage: Path) -> Path:
    """Copy the student project (pyproject, README, LICENSE, ``course``'s modules) to ``stage``."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(STUDENT_PROJECT / name, stage / name)
    shutil.copy2(ROOT / "LICENSE", stage / "LICENSE")
    (stage / "requirements.txt").write_text("\n".join(student_requirements()) + "\n")
    package = Path(course.__file__).resolve().parent
    for module in course_package_files(package):
        target = stage / "course" / module.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, target)
    return stage


def build_student_wheel(out_dir: str | Path) -> Path:
    """Build the students' wheel into ``out_dir`` and return its path.

    Nothing is downloaded: the build uses the setuptools already installed here.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="student-wheel-") as tmp:
        stage = stage_student_project(Path(tmp))
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
            + [str(stage), "-w", str(out_dir)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise CourseError(
                f"building the student wheel failed:\n{result.stderr[-2000:]}",
                "install the build tools offline with `pip install -e .[grading]` "
                "(it brings setuptools), then run the command again",
            )
    wheels = sorted(out_dir.glob(f"{DIST_NAME.replace('-', '_')}-{course.__version__}-*.whl"))
    if not wheels:
        raise CourseError(
            f"pip reported success but wrote no wheel into {out_dir}",
            "run `pip wheel --no-deps --no-build-isolation` on packaging/student by hand "
            "to see what it did",
        )
    return wheels[-1]


def released_notebook(work: Path, assignment: str = "transfer_learning") -> Path:
    """Make ``assignment``'s student notebook with the grading CLI, in a throwaway course dir."""
    course_dir = work / f"course-dir-{assignment}"
    for command in ("setup", "release"):
        done = subprocess.run(
            [sys.executable, "-m", "autograder", "--course-dir", str(course_dir)]
            + ["--assignment", assignment, command],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if done.returncode != 0:
            raise CourseError(
                f"`python -m autograder {command}` failed while making the kit:\n"
                f"{(done.stdout + done.stderr)[-2000:]}",
                f"run `python -m autograder --course-dir /tmp/x {command}` to see the problem",
            )
    notebooks = sorted((course_dir / "release").glob("*/*.ipynb"))
    if len(notebooks) != 1:
        raise CourseError(
            f"expected one released notebook under {course_dir / 'release'}, found {notebooks}",
            "check `python -m autograder release`",
        )
    return notebooks[0]


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


def modes_text() -> str:
    """The one statement about laptop and real mode (``docs/snippets/modes.md``)."""
    return (ROOT / "docs" / "snippets" / "modes.md").read_text(encoding="utf-8").strip()


def human_size(size: int) -> str:
    """Bytes as "12.3 MB" (decimal units, as file managers show them)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


#: Install sizes, measured (see :func:`kit_readme`); the README says how each was measured.
INSTALL_SIZES = (
    "What the install adds depends on the PyTorch build. Measured on Linux, Python 3.11, "
    "torch 2.14.1: the default (CUDA) build from PyPI takes {cuda} in a virtual environment "
    "(torch {torch_cuda} plus NVIDIA's libraries {nvidia}); the rest of what the course "
    "installs (torchvision, numpy, matplotlib, JupyterLab and their dependencies) adds about "
    "{rest}. PyTorch's CPU-only Linux wheel is far smaller: {cpu}. macOS and Windows wheels "
    "are CPU builds of similar size. Plan for 1-2 GB with the CPU build, and the kit "
    "itself on top."
)


def kit_readme(wheel: Path, parts: dict[str, tuple[str, int]], on_disk: int = 0) -> str:
    """The kit's README: the template with the wheel's exact name, sizes and the modes text.

    Args:
        wheel: the wheel file shipped in the kit.
        parts: ``{file or folder: (what it is, bytes)}`` for the contents table.
        on_disk: the files' size rounded up to 4 KiB blocks each (0: not said).
    """
    template = (STUDENT_PROJECT / "KIT_README.md").read_text(encoding="utf-8")
    rows = "\n".join(
        f"| `{name}` | {what} | {human_size(size)} |" for name, (what, size) in parts.items()
    )
    total = human_size(sum(size for _, size in parts.values()))
    if on_disk:  # many small files: each takes at least one 4 KiB block on most disks
        total += f" of files (about {human_size(on_disk)} on disk, in 4 KiB blocks)"
    text = (
        template.replace("{{ contents }}", rows)
        .replace("{{ total }}", total)
        .replace("{{ wheel }}", wheel.name)
        .replace("{{ modes }}", "## Two modes\n\n" + modes_text())
        .replace("{{ sizes }}", (STUDENT_PROJECT / "SIZES.md").read_text(encoding="utf-8").strip())
    )
    if "{{" in text:
        raise CourseError(
            "packaging/student/KIT_README.md has a placeholder the builder does not fill",
            "use only {{ contents }}, {{ total }}, {{ wheel }}, {{ modes }} and {{ sizes }}",
        )
    return text


def kit_marker(wheel: Path) -> str:
    """``transfer-course-kit.json``: how ``course.paths`` finds the kit and what it holds."""
    train, test = KIT_PER_CLASS["train"], KIT_PER_CLASS["test"]
    return (
        json.dumps(
            {
                "kit": KIT_NAME,
                "version": course.__version__,
                "wheel": wheel.name,
                "data": paths.KIT_DATA,
                "pretrained": paths.KIT_PRETRAINED,
                "per_class": f"{LESSON_PER_CLASS} images a class per split in the lessons; "
                f"{train:,} train and {test:,} test images a class shipped",
            },
            indent=2,
        )
        + "\n"
    )


def lesson_notebooks() -> list[Path]:
    """The executed lesson notebooks, as committed in ``course/lessons/``."""
    lessons = sorted((ROOT / "course" / "lessons").glob("[0-9][0-9]_*.ipynb"))
    if not lessons:
        raise CourseError(
            "no executed lesson notebook in course/lessons/",
            "run `python scripts/execute_lessons.py` first",
        )
    return lessons


def _sizes(files: dict[str, Path | bytes | str]) -> list[int]:
    return [
        len(v.encode())
        if isinstance(v, str)
        else len(v)
        if isinstance(v, bytes)
        else v.stat().st_size
        for v in files.values()
    ]


def _on_disk(sizes: list[int], block: int = 4096) -> int:
    return sum(-(-size // block) * block for size in sizes)


def _tree_size(files: dict[str, Path | bytes | str]) -> int:
    return sum(_sizes(files))


def build_student_kit(out_dir: str | Path, assignments: list[str] | None = None) -> Path:
    """Build ``OUT/transfer-course-student-kit.zip`` and return its path.

    Inside, under one folder: the marker file, the wheel, ``lessons/``, ``exercise/`` (the
    released notebook of each of ``assignments``; default: the first exercise only),
    ``data/`` (the CIFAR-10 subset, its README and checksums), ``pretrained/`` (the offline
    MobileNetV2, its license and a README for students) and a README with the steps.
    JPEGs are stored as they are (they do not compress); everything else is deflated.
    """
    assignments = list(assignments or ["transfer_learning"])
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Fail early, before building anything.
    lessons, pretrained, zips = lesson_notebooks(), pretrained_dir(), cifar10_zips()
    kit = out_dir / f"{KIT_NAME}.zip"
    with tempfile.TemporaryDirectory(prefix="student-kit-") as tmp:
        work = Path(tmp)
        wheel = build_student_wheel(work / "wheel")
        exercises = [released_notebook(work, name) for name in assignments]
        subset = cifar10_subset(zips)
        sums = "".join(
            f"{hashlib.sha256(data).hexdigest()}  cifar10-subset/{name}\n"
            for name, data in sorted(subset.items())
        )
        data: dict[str, Path | bytes | str] = {
            f"data/{paths.KIT_DATA.split('/', 1)[1]}/{name}": blob for name, blob in subset.items()
        }
        data["data/SHA256SUMS"] = sums
        data["data/README.md"] = data_readme(
            zips, subset, hashlib.sha256(sums.encode()).hexdigest()
        )
        network: dict[str, Path | bytes | str] = {
            f"pretrained/{n}": pretrained / n for n in PRETRAINED_FILES
        }
        network["pretrained/README.md"] = (
            (STUDENT_PROJECT / "PRETRAINED_README.md")
            .read_text(encoding="utf-8")
            .replace("{{ sha256 }}", sha256_file(pretrained / PRETRAINED_FILES[0]))
        )
        lesson_files: dict[str, Path | bytes | str] = {f"lessons/{p.name}": p for p in lessons}
        lesson_files.update(lesson_assets(zips[0]))
        parts = {
            wheel.name: (
                "the `course` package the lessons and the exercise import",
                wheel.stat().st_size,
            ),
            "lessons/": (
                "the lessons, already run (outputs included)",
                _tree_size(lesson_files),
            ),
            **{
                f"exercise/{exercise.name}": (
                    "a graded exercise: fill it in and submit it",
                    exercise.stat().st_size,
                )
                for exercise in exercises
            },
            "data/": (
                "a CIFAR-10 subset (1,000 train and 100 test images a class), "
                "its provenance and checksums",
                _tree_size(data),
            ),
            "pretrained/": (
                "an ImageNet-pretrained MobileNetV2 that needs no download, "
                "with its license (Apache 2.0)",
                _tree_size(network),
            ),
        }
        members: dict[str, Path | bytes | str] = {
            wheel.name: wheel,
            paths.KIT_MARKER: kit_marker(wheel),
            "README.md": kit_readme(
                wheel,
                parts,
                _on_disk(
                    _sizes(lesson_files)
                    + _sizes(network)
                    + _sizes(data)
                    + [wheel.stat().st_size]
                    + [exercise.stat().st_size for exercise in exercises]
                ),
            ),
            **{f"exercise/{exercise.name}": exercise for exercise in exercises},
            **lesson_files,
            **network,
            **data,
        }
        partial = kit.with_suffix(".zip.part")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, source in sorted(members.items()):
                arcname = f"{KIT_NAME}/{name}"
                stored = zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED
                if isinstance(source, Path):
                    archive.write(source, arcname, compress_type=stored)
                else:  # readable by everyone once unzipped, like the files written from disk
                    info = zipfile.ZipInfo(arcname, date_time=(2026, 1, 1, 0, 0, 0))
                    info.external_attr = 0o644 << 16
                    archive.writestr(info, source, compress_type=stored)
        partial.replace(kit)
        # Each exercise alone, beside the kit: the site offers them (docs/hooks/downloads.py).
        for exercise in exercises:
            shutil.copy2(exercise, out_dir / exercise.name)
    return kit
