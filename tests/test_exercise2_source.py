"""The source of exercise 2, "Fine-tuning in stages": nbgrader metadata, points, regions, drift.

Mirrors ``tests/test_exercise_source.py`` for the second exercise; the slow test executes the
source with its solutions top to bottom as the autograder would.
"""

from __future__ import annotations

import inspect
import re
import time
from pathlib import Path

import nbformat
import pytest

from autograder.checks.staged import CHECKS
from autograder.exercise import checks_for, exercise_source
from autograder.tasks import tasks_for
from course.grading_staged import RECORDERS
from solutions import staged

ASSIGNMENT = "fine_tuning_in_stages"
EXERCISE = exercise_source(ASSIGNMENT)
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS\n?", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION\n?", re.S)
#: Points per task as the headings state them; task 5 is the written answer.
TASK_POINTS = {1: 3, 2: 3, 3: 3, 4: 3, 5: 2}


@pytest.fixture(scope="module")
def notebook() -> nbformat.NotebookNode:
    import jupytext

    return jupytext.read(EXERCISE)


def nbgrader(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def test_metadata_is_valid_and_only_nbgrader(notebook: nbformat.NotebookNode) -> None:
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(notebook)
    assert "formats" not in notebook.metadata.get("jupytext", {})
    ids = [nbgrader(c)["grade_id"] for c in notebook.cells]
    assert len(ids) == len(set(ids)), ids
    for cell in notebook.cells:
        assert set(cell.metadata) <= {"nbgrader", "tags"}, dict(cell.metadata)


def test_points_match_headings_and_table(notebook: nbformat.NotebookNode) -> None:
    graded = [c for c in notebook.cells if nbgrader(c).get("grade")]
    by_task = {
        int(re.match(r"task(\d+)-", nbgrader(c)["grade_id"]).group(1)): nbgrader(c)["points"]
        for c in graded
    }
    assert by_task == TASK_POINTS
    headings = {
        int(m.group(1)): int(m.group(2))
        for c in notebook.cells
        if c.cell_type == "markdown"
        for m in re.finditer(r"^## Task (\d+):.*\((\d+) points?", c.source, re.M)
    }
    assert headings == TASK_POINTS
    intro = notebook.cells[0].source
    total = int(re.search(r"\*\*total\*\* \| \*\*(\d+)\*\*", intro).group(1))
    assert total == sum(TASK_POINTS.values())
    for task, points in TASK_POINTS.items():
        assert re.search(rf"^\| {task} \| .* \| {points}\b", intro, re.M), f"task {task}"
    for cell in notebook.cells:
        if re.match(r"## Task \d", cell.source):
            assert re.search(r"\*Lesson \d:\s[^*]+\*", cell.source), cell.source[:40]


def test_every_test_cell_records_its_task_and_has_a_check(
    notebook: nbformat.NotebookNode,
) -> None:
    recorded = {}
    for cell in notebook.cells:
        if not nbgrader(cell).get("grade") or cell.cell_type == "markdown":
            continue
        hidden = HIDDEN.findall(cell.source)
        assert len(hidden) == 1, nbgrader(cell)["grade_id"]
        calls = re.findall(r'record_task\("(\w+)", (\w+)\)', hidden[0])
        assert len(calls) == 1 and "solutions" not in hidden[0] and "autograder" not in hidden[0]
        recorded[nbgrader(cell)["grade_id"]] = calls[0][0]
    assert recorded == {gid: check.record for gid, check in CHECKS.items()}
    assert set(recorded.values()) == set(RECORDERS)
    assert {gid: c.record for gid, c in checks_for(ASSIGNMENT).items()} == recorded
    assert {t.grade_id: t.points for t in tasks_for(ASSIGNMENT)} == {
        f"task{n}-test": p for n, p in TASK_POINTS.items() if n < 5
    }


def test_solution_regions_are_generated_from_solutions_staged() -> None:
    from autograder.exercise.answers import generated, main

    assert main(["--assignment", ASSIGNMENT]) == 0, (
        "run: python -m autograder.exercise.answers --write"
    )
    source = EXERCISE.read_text(encoding="utf-8")
    answers = Path(staged.__file__).read_text(encoding="utf-8")
    drifted = answers.replace("copy.deepcopy(model.state_dict())", "model.state_dict()")
    assert drifted != answers and generated(source, drifted) != source


def test_setup_cell_defines_the_reference_head_of(notebook: nbformat.NotebookNode) -> None:
    """Students' ``head_of`` (locked setup cell) is the reference's, character for character."""
    setup = next(c for c in notebook.cells if nbgrader(c).get("grade_id") == "setup")
    assert inspect.getsource(staged.head_of).strip() in setup.source


def test_students_never_need_solutions_or_autograder(notebook: nbformat.NotebookNode) -> None:
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        visible = SOLUTION.sub("", HIDDEN.sub("", cell.source))
        assert not re.search(r"\b(solutions|autograder)\b", visible), nbgrader(cell)["grade_id"]


def test_release_has_stubs_and_no_answers(notebook: nbformat.NotebookNode) -> None:
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    release = ClearHiddenTests().preprocess(
        ClearSolutions().preprocess(nbformat.from_dict(notebook), {})[0], {}
    )[0]
    text = "\n".join(c.source for c in release.cells)
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "Model answer", "record_task"):
        assert secret not in text
    for secret in ("best_state = copy.deepcopy", "T.CenterCrop(crop),", "id(p) not in head"):
        assert secret not in text
    stubs = [
        c
        for c in release.cells
        if c.cell_type == "code" and "raise NotImplementedError" in c.source
    ]
    assert len(stubs) == len(TASK_POINTS) - 1
    assert "YOUR ANSWER HERE" in text


@pytest.mark.slow
def test_source_with_solutions_passes_all_its_tests(
    notebook: nbformat.NotebookNode, tmp_path: Path
) -> None:
    """Run top to bottom with solutions and hidden tests (recording is off outside grading)."""
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
    print(f"executed exercise 2 with solutions in {elapsed:.1f} s")
