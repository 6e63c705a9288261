"""One batch holding all the bad files grades the good submissions in it exactly as alone.

A class's LMS zip with everyday Jupyter edits (copied answer and test cells, a student-added
graded cell, pasted images), identity tricks (``jdoe`` and ``jdoe.``, a classmate's name as a
subfolder, a 300-character name, an upload called ``.``) and bad files (a lying zip header, a
zip bomb, a notebook nested 100,000 deep, control characters and formulas in names) goes
through ``python -m autograder collect / autograde / feedback / export``. The good
submissions are then graded alone in a second course: same status, score and failed tests.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from hostile_files import deeply_nested, edits, lying_zip
from notebook_edits import with_source
from test_pipeline import make_tiny_course, reference

from autograder import intake as intake_module
from autograder.__main__ import main
from autograder.coursedir import CourseDir
from autograder.grade import Result
from course.check import main as check_main

pytestmark = pytest.mark.slow

WRONG_SQUARE = "def square(x):\n    return 0\n"
NAME = "{}_1001_2002_tiny.ipynb".format


def _sandbox_args() -> list[str]:
    from autograder.sandbox import sandbox_available

    return [] if sandbox_available()[0] else ["--sandbox", "off"]


def _good_files(course: CourseDir) -> dict[str, bytes]:
    good = reference(course)
    released = nbformat.read(course.release_notebook, 4)
    files = {NAME("good"): good, NAME("wrong"): with_source(good, "square-answer", WRONG_SQUARE)}
    files.update({NAME(case): nb for case, nb in edits(good, released).items()})
    # json.dumps, not nbformat.write: a Jupyter copy keeps its cell id, and nbformat would fix it.
    return {name: json.dumps(nb).encode() for name, nb in files.items()}


def _bad_files(course: CourseDir) -> dict[str, bytes]:
    good = json.dumps(reference(course)).encode()
    return {
        NAME("deep"): deeply_nested(),
        NAME("malformed"): good[:-100],
        NAME("empty"): b"",
        NAME("liar"): good * 20,  # its size header is made to lie below
        NAME("bomb"): bytes(3 << 20),  # zeros: more than the 1 MiB allowed in this test
        NAME("jdoe"): good,
        # (Empty notebooks where only the identity matters: no kernel to wait for.)
        NAME("jdoe."): b"",
        "eve/bob/tiny.ipynb": b"",  # Eve's upload, a folder named after a classmate
        NAME("z" * 300): b"",
        "longfile_1001_2002_" + "x" * 300 + ".ipynb": b"",
        "dot_1001_2002_.": b"a file called .",
        "x\nmallory  20 of 20  graded\x1b]0;pwned\x07.ipynb": good,
        "=HYPERLINK(1).ipynb": good,
        "@SUM(1)_1001_2002_tiny.ipynb": good,
    }


def _steady(reasons: list[str]) -> list[str]:
    """The reasons that depend only on the file, not on how a run's output came out."""
    return [x for x in reasons if not x.startswith("output of ")]


def _run(course: CourseDir, inbox: Path, capsys: pytest.CaptureFixture) -> str:
    base = ["--course-dir", str(course.root), "--assignment", "tiny"]
    # Generous limits: the shared test machine may be loaded (a timeout is not what is tested).
    limits = ["--cell-timeout", "120", "--submission-timeout", "600", *_sandbox_args()]
    out = []
    for command in (
        ["collect", str(inbox)],
        ["autograde", "--workers", "2", "--no-progress", *limits],
        ["feedback"],
        ["export"],
    ):
        assert main([*base, *command]) == 0, command
        out.append(capsys.readouterr().out)
    return "\n".join(out)


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("hostile")
    (root / "batch").mkdir()
    batch = make_tiny_course(root / "batch")
    alone = CourseDir(root / "alone" / "grading", "tiny", "tiny")
    shutil.copytree(batch.root, alone.root)
    good, bad = _good_files(batch), _bad_files(batch)
    return {
        "batch": batch,
        "alone": alone,
        "good": good,
        "batch_zip": lying_zip(root / "batch.zip", {**good, **bad}, NAME("liar")),
        "alone_zip": lying_zip(root / "alone.zip", good, "nothing"),
    }


def test_good_submissions_grade_the_same_in_a_hostile_batch(
    batches: dict, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake_module, "MAX_FILE_BYTES", 1 << 20)
    batch, alone = batches["batch"], batches["alone"]
    out = _run(batch, batches["batch_zip"], capsys)
    _run(alone, batches["alone_zip"], capsys)
    students = sorted(Path(n).name.split("_1001")[0] for n in batches["good"])
    for student in students:
        a, b = Result.load(alone, student), Result.load(batch, student)
        assert (b.status, b.score, b.failed_tests) == (a.status, a.score, a.failed_tests), student
        # Notes about the run's own output (a cut stream) vary from run to run, batch or not.
        assert _steady(b.reasons) == _steady(a.reasons), student
    # Everyday edits cost nothing: full marks but the hand-graded point, with a note.
    full = Result.load(alone, "good")
    assert full.status == "graded" and full.score == full.max_score - 1
    for case in ("answercopy", "answeredcopy", "testcopy", "addedcell", "attachments"):
        r = Result.load(alone, case)
        assert (r.status, r.score, r.failed_tests) == ("graded", full.score, {}), case
    # Bad files: each a status and a true reason.
    deep = Result.load(batch, "deep")
    assert deep.status == "invalid" and any("nested too deeply" in x for x in deep.reasons)
    liar = Result.load(batch, "liar")
    assert liar.status == "missing" and any(
        "could not be read from the zip" in x for x in liar.reasons
    )
    bomb = Result.load(batch, "bomb")
    assert bomb.status == "missing" and any("larger than 1 MB" in x for x in bomb.reasons)
    # Identities: jdoe and jdoe. apart, Eve's subfolder hers, long names graded.
    ids = batch.students()
    assert "jdoe" in ids and any(s.startswith("jdoe-") for s in ids)
    assert "eve" in ids and "bob" not in ids
    assert Result.load(batch, "eve").status == "invalid"
    assert any(s.startswith("zzzz") and len(s.encode()) <= 96 for s in ids)
    assert Result.load(batch, "longfile").status == "invalid"
    assert Result.load(batch, "jdoe").score == full.score
    assert "upload" in json.loads((batch.originals("dot") / "manifest.json").read_text())["files"]
    # Nothing raw reaches the terminal or the CSV.
    assert "\x1b" not in out and "\x07" not in out
    assert not any(line.startswith("mallory") for line in out.splitlines())
    with open(batch.grades_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for c in row)
    # Every student has a feedback page with the grader's banner.
    for student in ids:
        page = batch.feedback(student).read_text(encoding="utf-8")
        assert 'class="ag-grader"' in page and "<script" not in page


def test_course_check_predicts_the_graders_notes(batches: dict, tmp_path: Path, capsys) -> None:
    """Run after the batch: the grader's notes on each edit are exactly what check printed."""
    alone = batches["alone"]
    if not alone.result("answercopy").is_file():
        pytest.skip("needs the batch test to have run first")
    for case in ("answercopy", "answeredcopy", "testcopy", "addedcell"):
        path = tmp_path / case / "tiny.ipynb"
        path.parent.mkdir()
        path.write_bytes(batches["good"][NAME(case)])
        assert check_main([str(path), "--no-run"]) == 0
        printed = [
            line.strip()[len("NOTE  ") :]
            for line in capsys.readouterr().out.splitlines()
            if line.strip().startswith("NOTE  cell ")
        ]
        noted = [x for x in Result.load(alone, case).reasons if x.startswith("cell ")]
        assert printed == noted and printed, case
