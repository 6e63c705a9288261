"""No solution and no hidden test reaches what students get: the release and the wheel.

The real exercise (``autograder/exercise/transfer_learning.py``) is released with nbgrader into a
temporary course directory and scanned line by line; the wheel students install
(``python -m autograder student-package``: ``course`` only) is built and scanned the same
way. (The site has its own leak test.)
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.coursedir import CourseDir
from autograder.release import exercise_source, find_leaks, release, secret_lines, setup
from autograder.student_package import build_student_wheel

ROOT = Path(__file__).resolve().parent.parent
SOURCE = exercise_source("transfer_learning")

pytestmark = pytest.mark.skipif(not SOURCE.is_file(), reason=f"{SOURCE} not written yet")


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> CourseDir:
    course = CourseDir(tmp_path_factory.mktemp("release") / "grading")
    setup(course)
    release(course)
    return course


@pytest.fixture(scope="module")
def secrets(released: CourseDir) -> list:
    found = secret_lines(nbformat.read(released.source_notebook, 4))
    # The scan can only fail if there is something to look for.
    assert {s.kind for s in found} == {"solution", "hidden test"}
    return found


def test_release_holds_only_the_notebook(released: CourseDir) -> None:
    files = sorted(p.name for p in released.release_notebook.parent.rglob("*"))
    assert files == ["transfer_learning.ipynb"]


def test_no_solution_or_hidden_test_line_in_the_release(released: CourseDir, secrets) -> None:
    assert find_leaks(nbformat.read(released.source_notebook, 4), released.release_notebook) == []
    text = released.release_notebook.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text


def test_release_is_not_paired_with_jupytext(released: CourseDir) -> None:
    nb = nbformat.read(released.release_notebook, 4)
    assert "jupytext" not in nb.metadata
    for cell in nb.cells:
        assert set(cell.metadata) <= {"nbgrader", "tags", "deletable", "editable"}, cell.metadata


def test_every_answer_is_a_stub_and_every_test_is_visible(released: CourseDir) -> None:
    nb = nbformat.read(released.release_notebook, 4)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert answers, "the exercise has answer cells"
    for cell in answers:
        stub = (
            'raise NotImplementedError("Not done yet'
            if cell.cell_type == "code"
            else "YOUR ANSWER HERE"
        )
        assert stub in cell.source, cell.metadata.nbgrader["grade_id"]


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    wheel = build_student_wheel(tmp_path_factory.mktemp("wheel"))
    with zipfile.ZipFile(wheel) as z:
        return {n: z.read(n).decode("utf-8", errors="replace") for n in z.namelist()}


@pytest.mark.slow
def test_wheel_has_no_exercise_source(wheel_files: dict[str, str]) -> None:
    assert not [n for n in wheel_files if "exercises/" in n or n.endswith(".ipynb")]


@pytest.mark.slow
def test_no_hidden_test_line_in_the_wheel(wheel_files: dict[str, str], secrets) -> None:
    hidden = {s.text for s in secrets if s.kind == "hidden test"}
    leaks = [
        (name, line.strip())
        for name, text in wheel_files.items()
        for line in text.splitlines()
        if line.strip() in hidden
    ]
    assert leaks == []


@pytest.mark.slow
def test_no_solution_in_the_course_package(wheel_files: dict[str, str], secrets) -> None:
    """The helper package students import must not contain an answer.

    A single short line (``model.eval()``) is ordinary library code; an answer leaks when two
    distinct lines of one answer cell, or one long line, turn up in the same file.
    """
    by_cell: dict[str, set[str]] = {}
    for s in secrets:
        if s.kind == "solution":
            by_cell.setdefault(s.cell, set()).add(s.text)
    leaks = []
    for name, text in wheel_files.items():
        if not name.startswith("course/"):
            continue
        lines = {line.strip() for line in text.splitlines()}
        for cell, answer in by_cell.items():
            hits = answer & lines
            if len(hits) >= 2 or any(len(h) >= 40 for h in hits):
                leaks.append((name, cell, sorted(hits)))
    assert leaks == []


@pytest.mark.slow
def test_student_wheel_carries_only_the_course_package(wheel_files: dict[str, str]) -> None:
    packages = {n.split("/")[0] for n in wheel_files if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"course"}
    assert "course/check.py" in wheel_files and "course/training.py" in wheel_files
    assert not [n for n in wheel_files if "lessons/" in n]
