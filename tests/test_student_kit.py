"""The student kit: one zip with everything a student needs, and nothing instructor-only.

``python -m autograder student-kit OUT`` builds it; these tests build it once, open
it as a student would, install its wheel without dependencies into a fresh folder and
import the package from there.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.student_package import (
    KIT_NAME,
    KIT_PER_CLASS,
    PRETRAINED_FILES,
    STUDENT_PROJECT,
    cifar10_zips,
    course_package_files,
)
from course.sources.member import STAND_IN

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "course" / "lessons").glob("[0-9][0-9]_*.ipynb"))
# Strings that only instructor material holds: nbgrader's region markers, the packages
# with the answers and the hidden checks.
INSTRUCTOR_ONLY = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kit, built by the command instructors run, unpacked."""
    out = tmp_path_factory.mktemp("kit")
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "student-kit", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    archive = out / f"{KIT_NAME}.zip"
    assert archive.is_file(), done.stdout
    with zipfile.ZipFile(archive) as z:
        assert all(n.startswith(f"{KIT_NAME}/") for n in z.namelist()), "one top folder"
        z.extractall(out / "unpacked")
    return out / "unpacked" / KIT_NAME


def _wheel(kit: Path) -> Path:
    wheels = sorted(kit.glob("transfer_course_student-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in the kit, found {wheels}"
    return wheels[0]


def test_kit_holds_lessons_exercise_network_data_and_readme(kit: Path) -> None:
    assert LESSONS, "no executed lessons in course/lessons/"
    for lesson in LESSONS:
        shipped = kit / "lessons" / lesson.name
        assert shipped.read_bytes() == lesson.read_bytes(), f"{lesson.name} differs from the repo"
    # Lesson 7's image: CIFAR-10's train/horse/0000.jpg, written from the training zip
    # (the repository never holds it), with the README that says so.
    with zipfile.ZipFile(cifar10_zips()[0]) as archive:
        horse = archive.read(STAND_IN)
    assert (kit / "lessons" / "assets" / "my_image.jpg").read_bytes() == horse
    assert "never committed" in (kit / "lessons" / "assets" / "README.md").read_text()
    for name in PRETRAINED_FILES:
        assert (kit / "pretrained" / name).stat().st_size > 0, name
    assert "Apache License" in (kit / "pretrained" / "LICENSE").read_text()
    student_notes = (kit / "pretrained" / "README.md").read_text()
    assert "{{" not in student_notes and "Apache License 2.0" in student_notes
    assert "not project code" not in student_notes, "the data folder's developer notes shipped"
    marker = json.loads((kit / "transfer-course-kit.json").read_text())
    assert marker["data"] == "data/cifar10-subset" and marker["pretrained"] == "pretrained"
    readme = (kit / "README.md").read_text()
    wheel = _wheel(kit).name
    for step in (
        f"pip install {wheel}",
        "--index-url https://download.pytorch.org/whl/cpu",
        f".venv\\Scripts\\python -m pip install {wheel}",
        "python -m course doctor",
        "jupyter lab",
        "python -m course.check",
        "Python 3.10",
    ):
        assert step in readme, f"the kit's README does not say {step!r}"
    # Windows commands that fail in one of its shells, and a wildcard pip cannot expand there.
    for wrong in ("set COURSE", "COURSE_QUICK=1 jupyter", "*.whl", "export COURSE"):
        assert wrong not in readme, f"the kit's README still says {wrong!r}"
    modes = (ROOT / "docs" / "snippets" / "modes.md").read_text().strip()
    assert modes in readme, "the kit README's modes text is not the site's one statement"


def test_kit_data_is_a_real_cifar10_subset_with_provenance(kit: Path) -> None:
    from course.sources import CLASSES

    data = kit / "data" / "cifar10-subset"
    for split, count in KIT_PER_CLASS.items():
        for cls in CLASSES:
            assert len(list((data / split / cls).glob("*.jpg"))) == count, (split, cls)
    readme = (kit / "data" / "README.md").read_text()
    for fact in ("Krizhevsky", "JPEG copy", "sha256", "1,000", "seeded with"):
        assert fact in readme, fact
    sums = (kit / "data" / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 10 * sum(KIT_PER_CLASS.values())
    digest, name = sums[0].split("  ")
    assert hashlib.sha256((kit / "data" / name).read_bytes()).hexdigest() == digest


def test_exercise_is_the_released_notebook(kit: Path) -> None:
    notebook = kit / "exercise" / "transfer_learning.ipynb"
    text = notebook.read_text(encoding="utf-8")
    assert not [m for m in INSTRUCTOR_ONLY if m in text], "nbgrader markers in the release"
    cells = json.loads(text)["cells"]
    answers = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    assert answers, "the released notebook has no answer cells"
    code = [c for c in answers if c["cell_type"] == "code"]
    assert code and all("NotImplementedError" in "".join(c["source"]) for c in code)


def test_wheel_holds_only_the_course_package(kit: Path) -> None:
    with zipfile.ZipFile(_wheel(kit)) as z:
        names = z.namelist()
        texts = {n: z.read(n).decode("utf-8", errors="replace") for n in names}
    top = {name.split("/")[0] for name in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"course"}, f"the wheel holds more than course/: {sorted(top)}"
    package = ROOT / "course"
    expected = {
        f"course/{p.relative_to(package).as_posix()}" for p in course_package_files(package)
    }
    assert {n for n in names if n.startswith("course/")} == expected
    leaks = [n for n, text in texts.items() for m in INSTRUCTOR_ONLY if m in text]
    assert not leaks, f"instructor-only markers in the wheel: {leaks}"
    assert not [n for n in names if "exercise" in n or n.endswith(".ipynb")]
    metadata = next(text for n, text in texts.items() if n.endswith("/METADATA"))
    assert "Name: transfer-course-student" in metadata
    for requirement in ("torch", "torchvision", "jupyterlab", "nbclient"):
        assert f"Requires-Dist: {requirement}" in metadata, requirement
    # No CUDA package is forced: which torch build arrives is pip's index's choice.
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert not [r for r in requires if "nvidia" in r.lower() or "cuda" in r.lower()], requires


def test_student_pyproject_is_a_real_project_file() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((STUDENT_PROJECT / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert project["project"]["name"] == "transfer-course-student"
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["course", "course.*"]


def test_wheel_installs_and_imports_without_the_repository(kit: Path, tmp_path: Path) -> None:
    target = tmp_path / "site-packages"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q"]
        + ["--target", str(target), str(_wheel(kit))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")) == [
        "course"
    ]
    # The installed copy, not the checkout: first on sys.path, run from elsewhere.
    probe = (
        f"import sys; sys.path.insert(0, {str(target)!r}); import course, course.check, "
        "course.models; print(course.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(target)), done.stdout
