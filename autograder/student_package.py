"""Build what students get: the ``course`` wheel, and the kit an instructor hands out.

The project's own ``pyproject.toml`` installs ``course``, ``solutions`` and
``autograder`` together, which is what instructors and graders want. Students must
not get ``solutions`` (every answer) or ``autograder`` (the hidden checks), so their
wheel has its own metadata, ``packaging/student/pyproject.toml``, a real file built by
setuptools like any other project: it is copied into a staging folder with the
``course`` package, and ``pip wheel --no-build-isolation`` builds it with the setuptools
installed here (no download).

The kit (``python -m autograder student-kit OUT``) is one zip with the wheel, the
executed lessons, the released exercise notebook (made by ``python -m autograder
setup`` and ``release`` in a temporary course dir) and the offline pretrained network
with its license.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import course
from course.errors import CourseError

ROOT = Path(__file__).resolve().parents[1]
STUDENT_PROJECT = ROOT / "packaging" / "student"
DIST_NAME = "transfer-course-student"
KIT_NAME = "transfer-course-student-kit"
_PROJECT = "transfer-course"
_STUDENT_EXTRAS = ("notebook",)  # enough to open the notebooks and run `python -m course.check`
#: The files of the offline pretrained network that the kit ships (license included).
PRETRAINED_FILES = (
    "mobilenet_v2_1.0_224_quant.tflite",
    "imagenet_labels.txt",
    "LICENSE",
    "README.md",
)


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
    from course.paths import shared_data_dir

    shared = shared_data_dir()
    folder = shared / "mobilenet-v2-imagenet" if shared else None
    missing = [n for n in PRETRAINED_FILES if folder is None or not (folder / n).is_file()]
    if missing:
        raise CourseError(
            f"the offline pretrained network is incomplete: missing {', '.join(missing)} "
            f"(looked in {folder or '../shared/data/mobilenet-v2-imagenet'})",
            "put mobilenet_v2_1.0_224_quant.tflite, imagenet_labels.txt, LICENSE and README.md "
            "in ../shared/data/mobilenet-v2-imagenet/ beside the checkout",
        )
    return folder


def lesson_notebooks() -> list[Path]:
    """The executed lesson notebooks, as committed in ``course/lessons/``."""
    lessons = sorted((ROOT / "course" / "lessons").glob("[0-9][0-9]_*.ipynb"))
    if not lessons:
        raise CourseError(
            "no executed lesson notebook in course/lessons/",
            "run `python scripts/execute_lessons.py` first",
        )
    return lessons


def build_student_kit(out_dir: str | Path, assignments: list[str] | None = None) -> Path:
    """Build ``OUT/transfer-course-student-kit.zip`` and return its path.

    Inside, under one folder: the wheel, ``lessons/``, ``exercise/`` (the released notebook
    of each of ``assignments``; default: the first exercise only),
    ``pretrained/mobilenet-v2-imagenet/`` and a README with the steps.
    """
    assignments = list(assignments or ["transfer_learning"])
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    lessons, pretrained = lesson_notebooks(), pretrained_dir()  # fail early, before building
    kit = out_dir / f"{KIT_NAME}.zip"
    with tempfile.TemporaryDirectory(prefix="student-kit-") as tmp:
        work = Path(tmp)
        wheel = build_student_wheel(work / "wheel")
        exercises = [released_notebook(work, name) for name in assignments]
        members = {wheel.name: wheel, "README.md": STUDENT_PROJECT / "README.md"}
        members |= {f"lessons/{p.name}": p for p in lessons}
        members |= {f"exercise/{exercise.name}": exercise for exercise in exercises}
        members |= {
            f"pretrained/mobilenet-v2-imagenet/{n}": pretrained / n for n in PRETRAINED_FILES
        }
        partial = kit.with_suffix(".zip.part")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, source in sorted(members.items()):
                archive.write(source, f"{KIT_NAME}/{name}")
        partial.replace(kit)
    return kit
