"""The grading pipeline's parts that need no kernel: intake, config, leaks, reports, check.

A tiny nbgrader assignment (``TINY_SOURCE``) stands in for the real exercise where the point
is the pipeline, not the exercise; ``tests/test_grading_e2e.py`` grades the real one.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import re
import stat
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import pytest

from autograder import limits as limits_module
from autograder.coursedir import CourseDir, nbgrader_config
from autograder.exercise import register
from autograder.feedback import fail, fail_from_error
from autograder.grade import Result
from autograder.intake import collect, load_intake, match_name, sha256, verify_originals
from autograder.limits import Limits, make_sandbox
from autograder.release import fill_from_source, find_leaks, release, secret_lines, setup
from autograder.report import export_csv, summary_table
from autograder.scoring import Check

#: A two-task exercise in the same format as autograder/exercise/transfer_learning.py: an answer
#: cell, a test cell with hidden tests, and a written answer graded by hand.
_TINY_TEMPLATE = '''\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] <<locked intro>>
# # Tiny exercise

# %% <<locked setup>>
import math

# %% <<answer square-answer>>
def square(x):
    """Return x squared."""
    ### BEGIN SOLUTION
    result_of_squaring = x * x
    return result_of_squaring
    ### END SOLUTION

# %% <<test square-test, 2>>
### BEGIN HIDDEN TESTS
from course.grading_record import record_calls

record_calls("square", square, [(3,), (-4,)])  # hidden check: negatives
### END HIDDEN TESTS
assert square(3) == 9, "square(3) should be 9"

# %% <<answer cube-answer>>
def cube(x):
    """Return x cubed."""
    ### BEGIN SOLUTION
    return square(x) * x  # the cube, via the square
    ### END SOLUTION

# %% <<test cube-test, 1>>
### BEGIN HIDDEN TESTS
record_calls("cube", cube, [(2,), (0.5,)])  # hidden check: cube works for floats
### END HIDDEN TESTS
assert cube(2) == 8, "cube(2) should be 8"

# %% [markdown] <<answer written-answer, 1>>
# ### BEGIN SOLUTION
# Squaring loses the sign, so a model answer mentions absolute values here.
# ### END SOLUTION
'''


def _header(match: re.Match) -> str:
    kind, grade_id, points = match.group(1), match.group(2), match.group(3)
    meta = {
        "grade": kind == "test" or points is not None,
        "grade_id": grade_id,
        "locked": kind != "answer",
        "schema_version": 3,
        "solution": kind == "answer",
        "task": False,
    }
    if points is not None:
        meta["points"] = int(points)
    return "nbgrader=" + json.dumps(meta)


TINY_SOURCE = re.sub(r"<<(\w+) ([\w-]+)(?:, (\d+))?>>", _header, _TINY_TEMPLATE)


def _calls(record: Any, expected: list[tuple[str, float]], task: str) -> None:
    """Compare what ``record_calls`` saved with the expected values, in order."""
    for (call, want), found in zip(expected, record["calls"], strict=True):
        if "error" in found:
            fail_from_error(task, call, found["error"])
        if not (isinstance(found.get("value"), int | float) and math.isclose(found["value"], want)):
            fail(
                task,
                f"{call} should be {want:g}",
                expected=want,
                found=found.get("value"),
                hint="see the task",
            )


#: The tiny exercise's checks: recorded calls against the right values.
TINY_CHECKS = {
    "square-test": Check(
        "square", lambda r, seed: _calls(r, [("square(3)", 9), ("square(-4)", 16)], "Square")
    ),
    "cube-test": Check(
        "cube", lambda r, seed: _calls(r, [("cube(2)", 8), ("cube(0.5)", 0.125)], "Cube")
    ),
}
register("tiny", TINY_CHECKS)


def make_tiny_course(root: Path) -> CourseDir:
    """Set up and release the tiny exercise in ``root``; return its course directory."""
    source = root / "tiny.py"
    source.write_text(TINY_SOURCE, encoding="utf-8")
    course = CourseDir(root / "grading", "tiny", "tiny")
    setup(course, source)
    release(course)
    return course


def reference(course: CourseDir) -> nbformat.NotebookNode:
    """The released notebook with every answer filled from the source's solution regions."""
    return fill_from_source(
        nbformat.read(course.release_notebook, 4), nbformat.read(course.source_notebook, 4)
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> CourseDir:
    return make_tiny_course(tmp_path_factory.mktemp("tiny"))


# --- release -----------------------------------------------------------------------------


def test_release_stubs_solutions_and_drops_hidden_tests(tiny: CourseDir) -> None:
    nb = nbformat.read(tiny.release_notebook, 4)
    text = "\n".join(c.source for c in nb.cells)
    assert 'raise NotImplementedError("Not done yet' in text
    assert "result_of_squaring" not in text
    assert "hidden check" not in text
    assert "YOUR ANSWER HERE" in text
    assert "jupytext" not in nb.metadata
    assert not any("lines_to_next_cell" in c.metadata for c in nb.cells)
    assert sorted(p.name for p in tiny.release_notebook.parent.iterdir()) == ["tiny.ipynb"]
    manifest = nb.metadata["course_check"]
    assert manifest["notebook"] == "tiny.ipynb"
    kinds = {c["grade_id"]: c["kind"] for c in manifest["cells"]}
    assert kinds["square-test"] == "test" and kinds["square-answer"] == "answer"


def test_find_leaks_catches_a_solution_line(tiny: CourseDir, tmp_path: Path) -> None:
    source = nbformat.read(tiny.source_notebook, 4)
    assert find_leaks(source, tiny.release_notebook) == []
    leaked = nbformat.read(tiny.release_notebook, 4)
    leaked.cells[2].source += "\n    result_of_squaring = x * x"
    nbformat.write(leaked, tmp_path / "tiny.ipynb")
    leaks = find_leaks(source, tmp_path / "tiny.ipynb")
    assert len(leaks) == 1 and "result_of_squaring" in leaks[0]


def test_secret_lines_cover_solutions_hidden_tests_and_written_answers(tiny: CourseDir) -> None:
    kinds = {s.kind for s in secret_lines(nbformat.read(tiny.source_notebook, 4))}
    texts = {s.text for s in secret_lines(nbformat.read(tiny.source_notebook, 4))}
    assert kinds == {"solution", "hidden test"}
    hidden = 'record_calls("square", square, [(3,), (-4,)])  # hidden check: negatives'
    assert hidden in texts
    assert any("absolute values" in t for t in texts)


def test_setup_refuses_stray_files_in_source_folder(tiny: CourseDir, tmp_path: Path) -> None:
    course = CourseDir(tmp_path / "grading", "tiny", "tiny")
    (tmp_path / "tiny.py").write_text(TINY_SOURCE, encoding="utf-8")
    course.source_notebook.parent.mkdir(parents=True)
    (course.source_notebook.parent / "tiny.py").write_text("secret", encoding="utf-8")
    with pytest.raises(RuntimeError, match="leaks the solutions"):
        setup(course, tmp_path / "tiny.py")


def test_fill_from_source_answers_every_cell(tiny: CourseDir) -> None:
    nb = reference(tiny)
    answers = {
        c.metadata.nbgrader["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata
    }
    assert "return result_of_squaring" in answers["square-answer"]
    assert "BEGIN SOLUTION" not in answers["square-answer"]
    assert "hidden check" not in answers["square-test"]


# --- configuration and limits -------------------------------------------------------------


def test_config_restores_deleted_cells_for_formgrader() -> None:
    c = nbgrader_config(CourseDir(Path("grading")), Limits(cell_timeout=7))
    assert c.OverwriteCells.add_missing_cells is True
    assert c.Execute.timeout == 7
    assert "*.py" in c.CourseDirectory.ignore


def test_sandbox_notes_when_network_cannot_be_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits_module, "network_namespace_available", lambda: False)
    box = make_sandbox(Limits(sandbox="off"))
    assert box.prefix == [] and any("NOT cut" in n for n in box.notes)
    assert any("NOT sandboxed" in n for n in box.notes)
    with pytest.raises(RuntimeError, match="Cannot cut the network"):
        make_sandbox(Limits(network="off", sandbox="off"))


def test_sandbox_cuts_network_where_possible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits_module, "network_namespace_available", lambda: True)
    box = make_sandbox(Limits(memory_mb=1000, sandbox="off"))
    assert box.prefix[0] == "unshare" and "--net" in box.prefix
    assert any("RLIMIT_AS" in e or "memory 1000 MiB" in e for e in box.enforced)


# --- intake -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("jdoe_12345_67890_transfer_learning.ipynb", ("jdoe", "transfer_learning.ipynb")),
        ("jdoe_LATE_12345_67890_transfer_learning-1.ipynb", ("jdoe", "transfer_learning.ipynb")),
        (
            "Jane Doe_4711_assignsubmission_file_transfer_learning.ipynb",
            ("4711", "transfer_learning.ipynb"),
        ),
        ("jdoe/transfer_learning (2).ipynb", ("jdoe", "transfer_learning.ipynb")),
        ("notes.txt", None),
    ],
)
def test_lms_name_patterns(name: str, expected: tuple[str, str] | None) -> None:
    assert match_name(name) == expected


def test_custom_pattern() -> None:
    assert match_name("hw3-s1234.ipynb", r"hw3-(?P<student>s\d+)\.ipynb") == (
        "s1234",
        "hw3-s1234.ipynb",
    )


def test_collect_zip_keeps_original_bytes(tiny: CourseDir, tmp_path: Path) -> None:
    course = CourseDir(tmp_path / "g", "tiny", "tiny")
    good = nbformat.writes(reference(tiny)).encode()
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ada_1_2_tiny.ipynb", good)
        z.writestr("bob_3_4_Untitled.ipynb", good)
        z.writestr("cy_5_6_tiny.py", b"print('no notebook')")
        z.writestr("__MACOSX/._ada_1_2_tiny.ipynb", b"junk")
        z.writestr("readme.txt", b"not a submission")
    intakes, unmatched = collect(course, archive)
    assert [i.student for i in intakes] == ["ada", "bob", "cy"]
    assert unmatched == ["readme.txt"]
    assert course.submitted("ada").read_bytes() == good
    original = course.originals("ada") / "tiny.ipynb"
    assert sha256(original) == load_intake(course, "ada").files["tiny.ipynb"]
    assert not original.stat().st_mode & stat.S_IWUSR
    assert "wrong file name" in intakes[1].notes[0]
    assert intakes[2].missing and "no notebook" in intakes[2].notes[0]
    # Collecting again changes nothing and loses nothing.
    collect(course, archive)
    assert sorted(p.name for p in course.originals("ada").iterdir()) == [
        "manifest.json",
        "tiny.ipynb",
    ]
    assert verify_originals(course) == []


def test_collect_folder_keeps_earlier_originals(tiny: CourseDir, tmp_path: Path) -> None:
    course = CourseDir(tmp_path / "g", "tiny", "tiny")
    inbox = tmp_path / "in" / "ada"
    inbox.mkdir(parents=True)
    first = nbformat.read(tiny.release_notebook, 4)
    nbformat.write(first, inbox / "tiny.ipynb")
    collect(course, tmp_path / "in")
    second = copy.deepcopy(first)
    second.cells[0].source += "\n(resubmitted)"
    nbformat.write(second, inbox / "tiny.ipynb")
    collect(course, tmp_path / "in")
    files = load_intake(course, "ada").files
    assert len(files) == 2
    assert "(resubmitted)" in course.submitted("ada").read_text(encoding="utf-8")
    assert verify_originals(course) == []


def test_verify_originals_detects_a_changed_file(tiny: CourseDir, tmp_path: Path) -> None:
    course = CourseDir(tmp_path / "g", "tiny", "tiny")
    (tmp_path / "in").mkdir()
    nbformat.write(nbformat.read(tiny.release_notebook, 4), tmp_path / "in" / "x_1_2_tiny.ipynb")
    collect(course, tmp_path / "in")
    stored = course.originals("x") / "tiny.ipynb"
    stored.chmod(0o644)
    stored.write_bytes(b"{}")
    assert verify_originals(course) == ["x/tiny.ipynb"]


# --- reports ------------------------------------------------------------------------------


def test_summary_and_csv(tmp_path: Path) -> None:
    course = CourseDir(tmp_path)
    results = [
        Result("ada", "graded", 18, 20, 2, [], {}),
        Result("bob", "invalid", 0, 20, 0, ["the notebook is not valid JSON"], {}),
        Result("cy", "graded", 15, 20, 2, [], {"task2-test": "AssertionError: frozen"}),
    ]
    for r in results:
        r.save(course)
    table = summary_table(results)
    assert (
        "18/20 (2 pending)" in table
        and "not valid JSON" in table
        and "failed tests: task2-test" in table
    )
    with open(export_csv(course), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student"] for r in rows] == ["ada", "bob", "cy"]
    assert rows[0]["autograded_max"] == "18" and rows[0]["manual_pending"] == "2"
    assert rows[1]["reason"] == "the notebook is not valid JSON"
    assert rows[2]["reason"] == "failed tests: task2-test"


def test_reference_command_fills_every_answer(tiny: CourseDir, tmp_path: Path, capsys) -> None:
    from autograder.__main__ import main
    from course.check import check_structure

    out = tmp_path / "ref" / "tiny.ipynb"
    assert (
        main(["--course-dir", str(tiny.root), "--assignment", "tiny", "reference", str(out)]) == 0
    )
    assert str(out) in capsys.readouterr().out
    report, nb = check_structure(out)
    assert report.problems == [] and not any("stub" in w for w in report.warnings)
    text = "\n".join(c.source for c in nb.cells)
    assert "return result_of_squaring" in text and "hidden check" not in text
    missing = tmp_path / "nothing"
    assert main(["--course-dir", str(missing), "--assignment", "tiny", "reference", str(out)]) == 1
    assert "autograder setup" in capsys.readouterr().err


def test_cli_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from autograder.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    commands = (
        "setup",
        "release",
        "collect",
        "autograde",
        "feedback",
        "export",
        "all",
        "reference",
    )
    for command in commands:
        assert command in out


# --- the student's check ------------------------------------------------------------------


def _write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_check_finds_edited_deleted_and_unanswered_cells(tiny: CourseDir, tmp_path: Path) -> None:
    from course.check import check_structure

    nb = nbformat.read(tiny.release_notebook, 4)
    report, _ = check_structure(_write(nb, tmp_path / "a" / "tiny.ipynb"))
    assert report.problems == []
    assert any("square-answer" in w and "stub" in w for w in report.warnings)

    edited = copy.deepcopy(nb)
    for cell in edited.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "square-test":
            cell.source = "pass"
    report, _ = check_structure(_write(edited, tmp_path / "b" / "tiny.ipynb"))
    assert any("'square-test' was edited" in p for p in report.problems)

    deleted = copy.deepcopy(nb)
    deleted.cells = [
        c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "cube-test"
    ]
    report, _ = check_structure(_write(deleted, tmp_path / "c" / "tiny.ipynb"))
    assert any("'cube-test' was deleted" in p for p in report.problems)

    report, _ = check_structure(_write(nb, tmp_path / "d" / "Untitled.ipynb"))
    assert any("grader expects 'tiny.ipynb'" in p for p in report.problems)


def test_check_rejects_broken_files(tmp_path: Path) -> None:
    from course.check import check_structure

    (tmp_path / "transfer_learning.ipynb").write_text('{"cells": [', encoding="utf-8")
    report, nb = check_structure(tmp_path / "transfer_learning.ipynb")
    assert nb is None and "not valid JSON" in report.problems[0]  # the grader's words
    (tmp_path / "transfer_learning.ipynb").write_text("", encoding="utf-8")
    report, _ = check_structure(tmp_path / "transfer_learning.ipynb")
    assert "empty" in report.problems[0]
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    report, _ = check_structure(_write(bare, tmp_path / "x" / "transfer_learning.ipynb"))
    assert "no grading metadata" in report.problems[0]


def test_check_checksum_matches_nbgrader(tiny: CourseDir) -> None:
    from nbgrader.utils import compute_checksum

    from course.notebooks import cell_checksum

    for cell in nbformat.read(tiny.release_notebook, 4).cells:
        if "grade_id" in cell.metadata.get("nbgrader", {}):
            assert cell_checksum(cell) == compute_checksum(cell)


def test_check_does_not_need_grading_packages() -> None:
    import ast

    check = Path(__file__).resolve().parent.parent / "course" / "check.py"
    tree = ast.parse(check.read_text(encoding="utf-8"))
    imported = {
        (n.module or "").split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert not imported & {"nbgrader", "autograder", "solutions", "jupytext"}


@pytest.mark.slow
def test_check_runs_the_notebook(tiny: CourseDir, tmp_path: Path, capsys) -> None:
    from course.check import main

    path = _write(reference(tiny), tmp_path / "tiny.ipynb")
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 cells pass" in out and "Ready to submit" in out
    wrong = reference(tiny)
    for cell in wrong.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "cube-answer":
            cell.source = "def cube(x):\n    return x * 3"
    path = _write(wrong, tmp_path / "w" / "tiny.ipynb")
    before = path.read_bytes()
    assert main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  'cube-test': AssertionError: cube(2) should be 8" in out
    assert path.read_bytes() == before  # the check never writes the student's file


@pytest.mark.slow
def test_cli_all_runs_every_step(tiny: CourseDir, tmp_path: Path, capsys) -> None:
    from autograder.__main__ import main

    (tmp_path / "tiny.py").write_text(TINY_SOURCE, encoding="utf-8")
    inbox = tmp_path / "inbox"
    ref = ["--course-dir", str(tiny.root), "--assignment", "tiny", "reference"]
    assert main([*ref, str(inbox / "ada" / "tiny.ipynb")]) == 0
    root = tmp_path / "grading"
    args = ["--course-dir", str(root), "--assignment", "tiny", "all", str(inbox)]
    assert main([*args, "--source", str(tmp_path / "tiny.py"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ada" in out and "3/4 (1 pending)" in out and "all tests passed" in out
    assert "edited" not in out and "stub" not in out
    course = CourseDir(root, "tiny", "tiny")
    assert course.feedback("ada").is_file() and course.grades_csv.is_file()
