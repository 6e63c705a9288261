"""Jupyter's everyday edits cost nothing, and course.check predicts what the grader does.

Fast tests (no kernel): ``python -m course.check --no-run`` on each edit, and the grader's own
preparation (:func:`course.notebooks.review`, then nbgrader's preprocessors) accepts it. The
slow batch in ``test_hostile_batch.py`` grades the same files through the CLI.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from hostile_files import deeply_nested, edits
from notebook_edits import grade_id
from test_pipeline import make_tiny_course, reference

from autograder.coursedir import CourseDir
from autograder.prepare import prepare_notebook
from autograder.submission import restore_cells
from course.check import main as check_main
from course.notebooks import CHECK_KEY, readability_problem, review


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> CourseDir:
    return make_tiny_course(tmp_path_factory.mktemp("edits"))


def run_check(path: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    status = check_main([str(path), "--no-run"])
    return status, capsys.readouterr().out


@pytest.mark.parametrize(
    "case", ["answercopy", "answeredcopy", "testcopy", "addedcell", "attachments"]
)
def test_everyday_edit_is_ready_and_prepares(
    course: CourseDir, tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    released = nbformat.read(course.release_notebook, 4)
    nb = edits(reference(course), released)[case]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    status, out = run_check(path, capsys)
    assert status == 0 and "Ready to submit" in out, out
    # The grader's preparation: the same review, then nbgrader's preprocessors accept it.
    submitted = nbformat.read(path, 4)
    reviewed = review(released.metadata[CHECK_KEY], submitted)
    assert [c for c in reviewed.changes if c.change != "unanswered"] == []
    for fix in reviewed.fixes:
        assert f"NOTE  {fix.reason}" in out  # check prints exactly what the grader notes
    ids = [grade_id(c) for c in submitted.cells if grade_id(c)]
    assert len(ids) == len(set(ids))
    restore_cells(submitted, released)
    prepared = prepare_notebook(submitted, course.db_url, course.assignment, course.notebook)
    assert len(prepared.cells) == len(submitted.cells)
    if case in ("answercopy", "answeredcopy", "testcopy", "addedcell"):
        assert len(reviewed.fixes) == 1
        assert "nothing is lost" in reviewed.fixes[0].reason
    else:
        assert reviewed.fixes == []


def test_answered_copy_is_the_one_graded(course: CourseDir) -> None:
    released = nbformat.read(course.release_notebook, 4)
    nb = edits(reference(course), released)["answeredcopy"]
    (first, second) = [i for i, c in enumerate(nb.cells) if grade_id(c) == "square-answer"]
    fixes = review(released.metadata[CHECK_KEY], nb).fixes
    assert [f.position for f in fixes] == [first + 1]  # the stub is demoted
    assert (
        grade_id(nb.cells[second]) == "square-answer" and "nbgrader" not in nb.cells[first].metadata
    )


def test_edited_test_copy_keeps_the_unedited_original(course: CourseDir) -> None:
    released = nbformat.read(course.release_notebook, 4)
    nb = copy.deepcopy(reference(course))
    index = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "square-test")
    nb.cells.insert(index, copy.deepcopy(nb.cells[index]))
    nb.cells[index].source = "pass  # edited copy"
    reviewed = review(released.metadata[CHECK_KEY], nb)
    assert [f.position for f in reviewed.fixes] == [index + 1]
    assert not any(c.change == "edited" for c in reviewed.changes)


def test_deeply_nested_notebook_is_a_reason_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = deeply_nested()
    assert "nested too deeply" in (readability_problem(data) or "")
    path = tmp_path / "tiny.ipynb"
    path.write_bytes(data)
    status, out = run_check(path, capsys)
    assert status == 1 and "nested too deeply" in out


def test_an_executed_notebook_over_the_read_back_size_is_named_as_that(tmp_path: Path) -> None:
    from autograder.limits import Limits
    from autograder.sandbox_run import EXECUTED, MAX_NOTEBOOK_BYTES, RunOutcome
    from autograder.submission import outcome_reason

    with open(tmp_path / EXECUTED, "wb") as handle:  # sparse: no disk used
        handle.truncate(MAX_NOTEBOOK_BYTES + 5 * 2**20)
    status, reason = outcome_reason(RunOutcome("ok", None), Limits(), tmp_path) or ("", "")
    assert status == "crashed" and "over the 32 MB the grader reads back" in reason
    assert "memory cap" not in reason
    (tmp_path / EXECUTED).unlink()
    _, reason = outcome_reason(RunOutcome("ok", None), Limits(), tmp_path) or ("", "")
    assert "memory cap" in reason  # no notebook at all: the old reason stands
