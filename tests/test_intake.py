"""Intake: the latest upload wins, odd names are graded or listed, the roster adds the missing."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.coursedir import CourseDir
from autograder.grade import Result
from autograder.intake import collect, load_intake, load_unmatched, parse_name, read_roster
from autograder.report import export_csv, summary_table


def notebook(marker: str) -> bytes:
    """A small valid notebook whose first cell says ``marker``."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(marker)])
    return nbformat.writes(nb).encode()


def zip_of(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def graded_marker(course: CourseDir, student: str) -> str:
    return nbformat.read(course.submitted(student), 4).cells[0].source


@pytest.mark.parametrize(
    ("names", "latest"),
    [
        # Canvas: a re-upload of the same name gets "-1", "-2"; the upload number grows.
        (
            [
                "ada_111_500_tiny.ipynb",
                "ada_111_501_tiny-1.ipynb",
                "ada_LATE_111_502_tiny-2.ipynb",
            ],
            "ada_LATE_111_502_tiny-2.ipynb",
        ),
        # "-1" sorts before the plain name alphabetically; it is still the later upload.
        (["ada/tiny.ipynb", "ada/tiny-1.ipynb"], "tiny-1.ipynb"),
        (["ada/tiny (2).ipynb", "ada/tiny (1).ipynb", "ada/tiny.ipynb"], "tiny (2).ipynb"),
        # A timestamp in the name beats everything else.
        (
            [
                "ada/tiny_2024-05-02T09-00-00.ipynb",
                "ada/tiny_2024-05-01T23-59-00.ipynb",
            ],
            "tiny_2024-05-02T09-00-00.ipynb",
        ),
    ],
)
def test_latest_upload_wins(tmp_path: Path, names: list[str], latest: str) -> None:
    course = CourseDir(tmp_path / "g", "tiny", "tiny")
    archive = zip_of(tmp_path / "in.zip", {n: notebook(f"upload {n}") for n in names})
    intakes, unmatched = collect(course, archive)
    assert unmatched == [] and [i.student for i in intakes] == ["ada"]
    received = next(n for n in names if Path(n).name == latest)
    assert graded_marker(course, "ada") == f"upload {received}"
    assert any(
        f"{len(names)} uploads; graded the latest" in n and latest in n for n in intakes[0].notes
    )


def test_expected_name_beats_a_later_scratch_notebook(tmp_path: Path) -> None:
    course = CourseDir(tmp_path / "g", "tiny", "tiny")
    inbox = zip_of(
        tmp_path / "in.zip",
        {"ada_1_10_tiny.ipynb": notebook("answer"), "ada_1_11_scratch.ipynb": notebook("x")},
    )
    intakes, _ = collect(course, inbox)
    assert graded_marker(course, "ada") == "answer"
    assert any("graded the latest named 'tiny.ipynb'" in n for n in intakes[0].notes)


def test_order_keys_from_names() -> None:
    plain, again = parse_name("jdoe_1_20_x.ipynb"), parse_name("jdoe_1_21_x-1.ipynb")
    assert plain and again and plain.order < again.order and again.file == "x.ipynb"
    tricky = parse_name("Jo_4711_assignsubmission_file_hw_1_2_x.ipynb")
    assert tricky is not None and tricky.student == "4711" and tricky.file == "hw_1_2_x.ipynb"
    moodle = parse_name("Zoë Ünal_4711_assignsubmission_file_transfer learning.ipynb")
    assert moodle is not None and moodle.student == "4711"
    assert moodle.file == "transfer learning.ipynb"


def test_odd_names_are_graded_or_listed(tmp_path: Path) -> None:
    course = CourseDir(tmp_path / "g", "tiny", "tiny")
    inbox = tmp_path / "inbox"
    files = {
        "Zoë Ünal/tiny.ipynb": "zoe",
        "Jan de Vries/tiny (1).ipynb": "jan",
        "müller_5_6_tiny.ipynb": "muller",
        "möller_7_8_tiny.ipynb": "moller",
        "my notebook.ipynb": "nobody",
    }
    for name, marker in files.items():
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_bytes(notebook(marker))
    intakes, unmatched = collect(course, inbox)
    students = sorted(i.student for i in intakes)
    assert students == sorted(["Zoë_Ünal", "Jan_de_Vries", "müller", "möller"])
    assert (
        graded_marker(course, "müller") == "muller" and graded_marker(course, "möller") == "moller"
    )
    assert graded_marker(course, "Jan_de_Vries") == "jan"
    assert unmatched == ["my notebook.ipynb"]
    assert load_unmatched(course) == ["my notebook.ipynb"]
    # Listed in the summary and the CSV, not only on stderr.
    results = [Result(s, "graded", 1, 1) for s in students]
    for r in results:
        r.save(course)
    assert "my notebook.ipynb" in summary_table(results, unmatched=load_unmatched(course))
    with open(export_csv(course), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    row = next(r for r in rows if r["status"] == "unmatched")
    assert row["student"] == "my notebook.ipynb" and "no student id" in row["reason"]
    assert {r["student"] for r in rows} >= set(students)


def test_roster_adds_missing_students(tmp_path: Path) -> None:
    course = CourseDir(tmp_path / "g", "tiny", "tiny")
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name\nada,Ada L\nbob,Bob M\n\nZoë Ünal,Zoë\n", encoding="utf-8")
    assert read_roster(roster) == ["ada", "bob", "Zoë_Ünal"]
    inbox = zip_of(
        tmp_path / "in.zip",
        {"ada_1_2_tiny.ipynb": notebook("a"), "eve_3_4_tiny.ipynb": notebook("e")},
    )
    intakes, _ = collect(course, inbox, roster=roster)
    by = {i.student: i for i in intakes}
    assert sorted(by) == ["Zoë_Ünal", "ada", "bob", "eve"]
    assert by["bob"].missing and "no submission received" in by["bob"].notes[0]
    assert "not on the roster" in by["eve"].notes
    assert course.students() == sorted(by)
    assert load_intake(course, "bob").missing
    manifest = json.loads((course.originals("bob") / "manifest.json").read_text("utf-8"))
    assert manifest["files"] == {}


def test_roster_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="one student id a line"):
        read_roster(tmp_path / "nope.csv")


def test_names_that_are_not_utf8_are_graded_or_listed(tmp_path: Path) -> None:
    import os

    course = CourseDir(tmp_path / "g", "tiny", "tiny")
    inbox = tmp_path / "inbox"
    (inbox / "ada").mkdir(parents=True)
    (inbox / "ada" / os.fsdecode(b"caf\xe9.ipynb")).write_bytes(notebook("latin-1 name"))
    (inbox / os.fsdecode(b"\xff.ipynb")).write_bytes(notebook("nobody"))
    intakes, unmatched = collect(course, inbox)
    assert [i.student for i in intakes] == ["ada"]
    assert graded_marker(course, "ada") == "latin-1 name"
    assert unmatched == ["\ufffd.ipynb"]
    with open(export_csv(course), newline="", encoding="utf-8") as handle:
        assert any(r["status"] == "unmatched" for r in csv.DictReader(handle))
