"""The exercise source: well-formed nbgrader metadata, honest points, and it passes its own tests.

Executing the source with its solutions (the slow test below) and running the checks against
``solutions.transfer`` (tests/test_checks.py) together keep the exercise's solution cells,
the hidden checks and ``solutions/`` from drifting apart silently.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest

from autograder import checks
from autograder.exercise import exercise_source
from course.grading_record import RECORDERS

EXERCISE = exercise_source("transfer_learning")
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS\n?", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION\n?", re.S)
#: Points per task as the tasks' headings state them; task 8 is the written answer.
TASK_POINTS = {1: 1, 2: 3, 3: 3, 4: 3, 5: 2, 6: 3, 7: 3, 8: 2}


@pytest.fixture(scope="module")
def notebook() -> nbformat.NotebookNode:
    import jupytext

    return jupytext.read(EXERCISE)


def nbgrader(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def graded(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in notebook.cells if nbgrader(c).get("grade")]


def test_metadata_is_valid_nbgrader(notebook: nbformat.NotebookNode) -> None:
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(notebook)  # raises on bad or inconsistent metadata
    assert "formats" not in notebook.metadata.get("jupytext", {}), (
        "the source must not be paired: a paired file would travel into the release"
    )


def test_cells_carry_only_nbgrader_metadata(notebook: nbformat.NotebookNode) -> None:
    """Layout keys such as ``lines_to_next_cell`` would leak into the released notebook."""
    for cell in notebook.cells:
        assert nbgrader(cell), f"every cell has nbgrader metadata: {cell.source[:40]!r}"
        assert set(cell.metadata) <= {"nbgrader", "tags"}, dict(cell.metadata)


def test_grade_ids_are_unique_and_graded_cells_have_points(
    notebook: nbformat.NotebookNode,
) -> None:
    ids = [nbgrader(c)["grade_id"] for c in notebook.cells if nbgrader(c)]
    assert len(ids) == len(set(ids)), f"duplicate grade_id in {ids}"
    for cell in graded(notebook):
        points = nbgrader(cell).get("points")
        assert isinstance(points, int) and points > 0, nbgrader(cell)["grade_id"]
        assert nbgrader(cell)["locked"] is (cell.cell_type == "code"), (
            "test cells are locked; the written answer cell is the student's to edit"
        )


def test_points_match_the_stated_tasks_and_total(notebook: nbformat.NotebookNode) -> None:
    by_task = {
        int(re.match(r"task(\d+)-", nbgrader(c)["grade_id"]).group(1)): nbgrader(c)["points"]
        for c in graded(notebook)
    }
    assert by_task == TASK_POINTS
    headings = {
        int(m.group(1)): int(m.group(2))
        for c in notebook.cells
        if c.cell_type == "markdown"
        for m in re.finditer(r"^## Task (\d+):.*\((\d+) points?", c.source, re.M)
    }
    assert headings == TASK_POINTS, "each task's heading must state its points"
    intro = notebook.cells[0].source
    total = int(re.search(r"\*\*total\*\* \| \*\*(\d+)\*\*", intro).group(1))
    assert total == sum(TASK_POINTS.values())
    for task, points in TASK_POINTS.items():
        assert re.search(rf"^\| {task} \| .* \| {points}\b", intro, re.M), f"task {task} in table"


def test_every_task_links_back_to_a_lesson(notebook: nbformat.NotebookNode) -> None:
    texts = [c.source for c in notebook.cells if re.match(r"## Task \d", c.source)]
    assert len(texts) == len(TASK_POINTS)
    for text in texts:
        assert re.search(r"\*Lesson \d:\s[^*]+\*", text), text.splitlines()[0]


def test_every_solution_cell_has_a_solution_region(notebook: nbformat.NotebookNode) -> None:
    solution_cells = [c for c in notebook.cells if nbgrader(c).get("solution")]
    assert len(solution_cells) == len(TASK_POINTS)
    for cell in solution_cells:
        assert SOLUTION.search(cell.source), nbgrader(cell)["grade_id"]
    for cell in notebook.cells:
        if not nbgrader(cell).get("solution"):
            assert "BEGIN SOLUTION" not in cell.source, nbgrader(cell).get("grade_id")


def test_every_autograded_test_cell_records_its_task(notebook: nbformat.NotebookNode) -> None:
    recorded = {}
    for cell in graded(notebook):
        if cell.cell_type == "markdown":
            continue  # the written answer, graded by hand
        hidden = HIDDEN.findall(cell.source)
        assert len(hidden) == 1, f"{nbgrader(cell)['grade_id']}: one hidden region"
        calls = re.findall(r'record_task\("(\w+)", (\w+)\)', hidden[0])
        assert len(calls) == 1, hidden[0]
        assert "autograder" not in hidden[0] and "solutions" not in hidden[0]
        recorded[nbgrader(cell)["grade_id"]] = calls[0][0]
    assert recorded == {task.grade_id: task.key for task in checks.TASKS}
    assert set(recorded.values()) <= set(RECORDERS)


def test_solution_regions_are_generated_from_solutions_exercise() -> None:
    from autograder.exercise.answers import ANSWERS, generated, main

    assert main([]) == 0, "run: python -m autograder.exercise.answers --write"
    source = EXERCISE.read_text(encoding="utf-8")
    drifted = ANSWERS.read_text(encoding="utf-8").replace(
        "model.requires_grad_(False)", "model.requires_grad_(True)"
    )
    assert generated(source, drifted) != source


def test_students_never_need_solutions_or_autograder(notebook: nbformat.NotebookNode) -> None:
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        visible = HIDDEN.sub("", cell.source)
        if nbgrader(cell).get("solution"):
            visible = SOLUTION.sub("", visible)
        assert not re.search(r"\b(solutions|autograder)\b", visible), (
            f"{nbgrader(cell).get('grade_id')}: students have neither package installed"
        )


def test_release_has_stubs_and_no_answers(notebook: nbformat.NotebookNode) -> None:
    """What nbgrader's own preprocessors make of the source: stubs, no solutions, no checks."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    release = ClearHiddenTests().preprocess(
        ClearSolutions().preprocess(nbformat.from_dict(notebook), {})[0], {}
    )[0]
    text = "\n".join(c.source for c in release.cells)
    code = "\n".join(c.source for c in release.cells if c.cell_type == "code")
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "Model answer"):
        assert secret not in text
    for secret in ("autograder", "solutions", "for index in (0, 3, 6)", "total_sq"):
        assert secret not in code
    stubs = [
        c
        for c in release.cells
        if c.cell_type == "code" and "raise NotImplementedError" in c.source
    ]
    assert len(stubs) == len(TASK_POINTS) - 1  # every function; task 8 is prose
    assert "YOUR ANSWER HERE" in text


@pytest.mark.slow
def test_source_with_solutions_passes_all_its_tests(
    notebook: nbformat.NotebookNode, tmp_path: Path
) -> None:
    """Run top to bottom with solutions and hidden tests, as the autograder would."""
    from nbclient import NotebookClient

    start = time.perf_counter()
    executed = NotebookClient(
        nbformat.from_dict(notebook),
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    elapsed = time.perf_counter() - start
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{nbgrader(cell).get('grade_id')}: {errors[0].get('evalue')}"
        if nbgrader(cell).get("grade"):
            stderr = [o.text for o in cell.outputs if o.get("name") == "stderr"]
            assert not stderr, f"{nbgrader(cell)['grade_id']} wrote to stderr: {stderr}"
    print(f"executed the exercise with solutions in {elapsed:.1f} s")


def test_task_table_matches_the_source(notebook: nbformat.NotebookNode) -> None:
    """The table's grade_ids, numbers and points are the source's test cells'."""
    cells = {
        nbgrader(c)["grade_id"]: nbgrader(c)["points"]
        for c in graded(notebook)
        if c.cell_type == "code"
    }
    assert {t.grade_id: t.points for t in checks.TASKS} == cells
    for task in checks.TASKS:
        assert task.grade_id == f"task{task.number}-test"
        assert TASK_POINTS[task.number] == task.points
