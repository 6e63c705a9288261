"""Build the kit an instructor hands out (``python -m autograder student-kit OUT``, ``make kit``).

The kit is one zip with the students' wheel (:mod:`autograder.student_wheel`), the executed
lessons, the released exercise notebook (made by ``python -m autograder setup`` and
``release`` in a temporary course dir), a CIFAR-10 subset of the size the lessons use
(``data/``, with its provenance: :mod:`autograder.student_kit_data`), the offline pretrained
network with its license (``pretrained/``), a README rendered from
``packaging/student/KIT_README.md`` and the marker file ``transfer-course-kit.json`` by which
``course.paths.kit_dir`` finds the kit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import course
from autograder.student_kit_data import (
    KIT_PER_CLASS,
    LESSON_PER_CLASS,
    PRETRAINED_FILES,
    cifar10_subset,
    cifar10_zips,
    data_readme,
    lesson_assets,
    pretrained_dir,
    sha256_file,
)
from autograder.student_wheel import ROOT, STUDENT_PROJECT, build_student_wheel
from course import paths
from course.errors import CourseError

KIT_NAME = "transfer-course-student-kit"


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
