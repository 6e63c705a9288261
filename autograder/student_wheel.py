"""Build the students' ``course`` wheel (the kit that ships it: :mod:`autograder.student_kit`).

The project's own ``pyproject.toml`` installs ``course``, ``solutions`` and
``autograder`` together, which is what instructors and graders want. Students must
not get ``solutions`` (every answer) or ``autograder`` (the hidden checks), so their
wheel has its own metadata, ``packaging/student/pyproject.toml``, a real file built by
setuptools like any other project: it is copied into a staging folder with the
``course`` package, and ``pip wheel --no-build-isolation`` builds it with the setuptools
installed here (no download).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import course
from course.errors import CourseError

ROOT = Path(__file__).resolve().parents[1]
STUDENT_PROJECT = ROOT / "packaging" / "student"
DIST_NAME = "transfer-course-student"
_PROJECT = "transfer-course"
_STUDENT_EXTRAS = ("notebook",)  # enough to open the notebooks and run `python -m course.check`


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
