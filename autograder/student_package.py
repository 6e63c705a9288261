"""Build the wheel students install: the ``course`` package and nothing else.

The project's own ``pyproject.toml`` installs ``course``, ``solutions`` and
``autograder`` together, which is what instructors and graders want. Students
must not get ``solutions`` (it holds every answer) or ``autograder`` (it holds
the hidden checks), so their wheel is built from a staged copy that holds only
``course``'s modules: no lessons, no exercise source, no reference code.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import course

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


def _stage(root: Path) -> None:
    package = Path(course.__file__).resolve().parent
    target = root / "course"
    target.mkdir(parents=True)
    # Only the package's own modules: course/lessons and course/exercises are not packages,
    # and the exercise source holds the solutions.
    for module in sorted(package.glob("*.py")):
        shutil.copy2(module, target / module.name)
    # ... and its subpackages (folders with an __init__.py, e.g. course/models/).
    subpackages = ["course"]
    for init in sorted(package.glob("*/__init__.py")):
        folder = init.parent
        (target / folder.name).mkdir()
        for module in sorted(folder.glob("*.py")):
            shutil.copy2(module, target / folder.name / module.name)
        subpackages.append(f"course.{folder.name}")
    package_list = ", ".join(f'"{p}"' for p in subpackages)
    requirements = ",\n".join(f'    "{r}"' for r in student_requirements())
    (root / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST_NAME}"
version = "{course.__version__}"
description = "The helper package for the transfer-learning course (students' part)"
requires-python = ">=3.10"
dependencies = [
{requirements}
]

[tool.setuptools]
packages = [{package_list}]
"""
    )


def build_student_wheel(out_dir: str | Path) -> Path:
    """Build the students' wheel into ``out_dir`` and return its path.

    Nothing is downloaded: the build uses the setuptools already installed here.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="student-wheel-") as tmp:
        stage = Path(tmp)
        _stage(stage)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
            + [str(stage), "-w", str(out_dir)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"Building the student wheel failed:\n{result.stderr[-2000:]}")
    wheels = sorted(out_dir.glob(f"{DIST_NAME.replace('-', '_')}-{course.__version__}-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip reported success but wrote no wheel into {out_dir}")
    return wheels[-1]
