"""The real exercise through the whole pipeline, driven by its command line.

Three submissions are built from the student release: the reference solutions, the lecture's
freezing code, and the untouched stubs. The written answer (task 8) is graded by hand: the
autograder leaves it pending (``needs_manual_grade``), the summary and the CSV report its
points as ``manual_pending``, and "full marks" below means every autograded point.
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.__main__ import main
from autograder.coursedir import COURSE_ID, CourseDir
from autograder.grade import Result
from autograder.intake import verify_originals
from autograder.release import exercise_source, fill_from_source

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not exercise_source("transfer_learning").is_file(), reason="exercise source not written yet"
    ),
]

#: What the lecture's notebooks ran to "unfreeze the last 3 layers" (DESIGN.md).
LECTURE_FREEZING = '''\
def freeze_and_unfreeze(model):
    """The lecture's code, bug included."""
    for param in model.parameters():
        param.requires_grad = False
    model.classifier[1].requires_grad = True
    model.classifier[3].requires_grad = True
    return model
'''


def _gid(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[CourseDir, dict[str, Result]]:
    root = tmp_path_factory.mktemp("e2e")
    course = CourseDir(root / "grading")
    base = ["--course-dir", str(course.root)]
    assert main([*base, "setup"]) == 0
    assert main([*base, "release"]) == 0
    released = nbformat.read(course.release_notebook, 4)
    ref = fill_from_source(released, nbformat.read(course.source_notebook, 4))
    lecture = copy.deepcopy(ref)
    for cell in lecture.cells:
        if _gid(cell) == "task2-answer":
            cell.source = LECTURE_FREEZING
    inbox = root / "inbox"
    inbox.mkdir()
    for student, nb in (("reference", ref), ("lecture", lecture), ("stubs", released)):
        nbformat.write(nb, inbox / f"{student}_100_200_transfer_learning.ipynb")
    assert main([*base, "collect", str(inbox)]) == 0
    assert main([*base, "autograde", "--workers", "2", "--no-progress"]) == 0
    assert main([*base, "feedback"]) == 0
    assert main([*base, "export"]) == 0
    results = {s: Result.load(course, s) for s in ("reference", "lecture", "stubs")}
    return course, results


def _points(course: CourseDir, grade_id: str) -> float:
    with Gradebook(course.db_url, COURSE_ID) as gb:
        return float(gb.find_graded_cell(grade_id, course.notebook, course.assignment).max_score)


def test_reference_gets_every_autograded_point(graded) -> None:
    course, results = graded
    r = results["reference"]
    assert r.status == "graded" and r.failed_tests == {}, r.failed_tests
    assert r.manual_pending == _points(course, "task8-answer") == 2
    assert r.score == r.max_score - r.manual_pending == 18
    with Gradebook(course.db_url, COURSE_ID) as gb:
        written = gb.find_grade("task8-answer", course.notebook, course.assignment, "reference")
        assert written.needs_manual_grade and written.auto_score is None


def test_lecture_freezing_loses_exactly_the_freezing_points(graded) -> None:
    course, results = graded
    r = results["lecture"]
    assert sorted(r.failed_tests) == ["task2-test"]
    assert r.score == results["reference"].score - _points(course, "task2-test")
    message = r.failed_tests["task2-test"]
    # The feedback names the bug: `requires_grad` set on a module, as in the lecture.
    assert "lecture's freezing bug" in message and "requires_grad" in message


def test_untouched_stubs_get_zero(graded) -> None:
    _, results = graded
    r = results["stubs"]
    assert r.score == 0 and r.manual_pending == 0
    assert all("NotImplementedError" in m for m in r.failed_tests.values())
    assert "task1-answer is still the released stub" in r.reason


def test_gradebook_csv_and_feedback_agree(graded) -> None:
    course, results = graded
    with Gradebook(course.db_url, COURSE_ID) as gb:
        scores = {s.student.id: s.score for s in gb.find_assignment(course.assignment).submissions}
    assert scores == pytest.approx({s: r.score for s, r in results.items()})
    with open(course.grades_csv, newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    for student, r in results.items():
        assert float(rows[student]["score"]) == r.score
        assert float(rows[student]["manual_pending"]) == r.manual_pending
    assert rows["reference"]["autograded_max"] == rows["reference"]["score"]
    for student, r in results.items():
        page = Path(course.feedback(student)).read_text(encoding="utf-8")
        assert f"Score: {r.score:g} / {r.max_score:g}" in page
    assert "task2-test" in course.feedback("lecture").read_text(encoding="utf-8")
    assert verify_originals(course) == []


def test_student_check_passes_the_reference(graded, capsys: pytest.CaptureFixture[str]) -> None:
    from course.check import main as check

    course, _ = graded
    assert check([str(course.submitted("reference"))]) == 0
    out = capsys.readouterr().out
    assert "Ready to submit" in out and "FAIL" not in out
