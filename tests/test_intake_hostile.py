"""Hostile and odd inboxes through ``python -m autograder collect`` and ``export`` (no kernel).

One bad file never stops ``collect``; ids from LMS names are never merged and never a path;
a nested folder belongs to its top-level owner; nothing a student controls reaches the
terminal or the CSV raw.
"""

from __future__ import annotations

import csv
import json
import struct
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import intake as intake_module
from autograder.__main__ import main
from autograder.coursedir import CourseDir
from autograder.grade import Result
from autograder.lms_names import MAX_ID_BYTES, assign_ids, parse_name, safe_filename, safe_id
from autograder.report import csv_cell, printable


def notebook(marker: str) -> bytes:
    """A small valid notebook whose first cell says ``marker``."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(marker)])
    return nbformat.writes(nb).encode()


def collect_cli(tmp_path: Path, inbox: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    course = tmp_path / "g"
    status = main(["--course-dir", str(course), "--assignment", "tiny", "collect", str(inbox)])
    return status, capsys.readouterr().out


def course_of(tmp_path: Path) -> CourseDir:
    return CourseDir(tmp_path / "g", "tiny", "tiny")


def marker(course: CourseDir, student: str) -> str:
    return nbformat.read(course.submitted(student), 4).cells[0].source


def manifest(course: CourseDir, student: str) -> dict:
    return json.loads((course.originals(student) / "manifest.json").read_text("utf-8"))


def lie_about_size(path: Path, entry: str, size: int) -> None:
    """Rewrite the uncompressed size of ``entry`` in both its headers (a lying zip)."""
    data = bytearray(path.read_bytes())
    name = entry.encode()
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                data[start + offset : start + offset + 4] = struct.pack("<I", size)
            start += 4
    path.write_bytes(bytes(data))


def test_bad_zip_entries_are_refused_one_by_one(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake_module, "MAX_FILE_BYTES", 1 << 20)
    inbox = tmp_path / "in.zip"
    long_name = "x" * 300 + ".ipynb"
    with zipfile.ZipFile(inbox, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ada_1_2_tiny.ipynb", notebook("ada"))
        archive.writestr("liar_1_2_tiny.ipynb", notebook("liar") * 50)
        archive.writestr("liar_1_3_notes.txt", b"kept")
        # 64 MiB of zeros: about 64 KB compressed, refused after reading 1 MiB + 1 byte.
        info = zipfile.ZipInfo("bomb_1_2_tiny.ipynb")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as handle:
            for _ in range(64):
                handle.write(bytes(1 << 20))
        archive.writestr(f"longfile_1_2_{long_name}", notebook("long file"))
        archive.writestr("y" * 300 + "/tiny.ipynb", notebook("long id"))
        archive.writestr("jdoe_1_2_.", b"a file called .")
        archive.writestr("jdoe_1_3_manifest.json", b"{}")
        archive.writestr("jdoe_1_4_tiny.ipynb", notebook("jdoe"))
    lie_about_size(inbox, "liar_1_2_tiny.ipynb", 100)  # found only while inflating
    status, out = collect_cli(tmp_path, inbox, capsys)
    assert status == 0
    course = course_of(tmp_path)
    assert marker(course, "ada") == "ada" and marker(course, "jdoe") == "jdoe"
    liar = intake_module.load_intake(course, "liar")
    assert liar.missing and any("could not be read from the zip" in n for n in liar.notes)
    assert "notes.txt" in liar.files  # the student's other file is kept
    bomb = intake_module.load_intake(course, "bomb")
    assert bomb.missing and any("larger than 1 MB" in n for n in bomb.notes)
    assert marker(course, "longfile") == "long file"
    (stored,) = manifest(course, "longfile")["files"]
    assert len(stored.encode()) <= 160 and stored.endswith(".ipynb")
    long_id = next(s for s in course.students() if s.startswith("yyy"))
    assert len(long_id.encode()) <= MAX_ID_BYTES and marker(course, long_id) == "long id"
    # "." and "manifest.json" are stored under other names, inside the student's folder.
    files = manifest(course, "jdoe")["files"]
    assert set(files) == {"upload", "upload_manifest.json", "tiny.ipynb"}
    assert not (course.root / "originals" / "jdoe.1").exists()
    assert "liar: no notebook" in out


def test_ids_are_never_merged_and_never_a_path(tmp_path: Path, capsys) -> None:
    inbox = tmp_path / "inbox"
    files = {
        "jdoe/tiny.ipynb": "jdoe",
        "jdoe./tiny.ipynb": "jdoe-dot",
        "Jan de Vries/tiny.ipynb": "jan",
        "..hidden/tiny.ipynb": "dots",
        "x.y_1_2_tiny.ipynb": "canvas",
    }
    for name, text in files.items():
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_bytes(notebook(text))
    status, out = collect_cli(tmp_path, inbox, capsys)
    assert status == 0
    course = course_of(tmp_path)
    students = course.students()
    assert "jdoe" in students and "Jan_de_Vries" in students and "x.y" in students
    other = next(s for s in students if s.startswith("jdoe-"))
    assert marker(course, "jdoe") == "jdoe" and marker(course, other) == "jdoe-dot"
    assert any("kept apart" in n for n in intake_module.load_intake(course, other).notes)
    assert all("/" not in s and s not in (".", "..") and "\x00" not in s for s in students)
    assert marker(course, "hidden") == "dots"
    # Collected again, the same names get the same ids.
    main(["--course-dir", str(course.root), "--assignment", "tiny", "collect", str(inbox)])
    assert course.students() == students


def test_id_rules_keep_todays_names() -> None:
    assert safe_id("Jan de Vries") == "Jan_de_Vries" and safe_id("müller") == "müller"
    assert safe_id(".") == safe_id("..") == safe_id("/") == "unknown"
    assert safe_id("a\x00b/../c") == "a_b_.._c"
    # Ids are printed raw on the progress bar: they can hold no control character.
    nasty = "".join(chr(c) for c in range(0x250)) + "\u202e\u2066\ufeff"
    assert printable(safe_id(nasty)) == safe_id(nasty)
    ids = assign_ids(["jdoe", "jdoe.", ".jdoe"])
    assert ids["jdoe"] == "jdoe" and len(set(ids.values())) == 3
    # An id given to an earlier collect's student stays theirs.
    again = assign_ids(["jdoe"], owners={"jdoe": "jdoe."})
    assert again["jdoe"] != "jdoe"
    assert safe_filename("tiny.ipynb") == "tiny.ipynb" and safe_filename("..") == "upload"
    assert safe_filename("a/b\nc.ipynb") == "a_b_c.ipynb"
    canvas = parse_name("jdoe_LATE_12345_67890_transfer_learning-1.ipynb")
    assert canvas is not None and canvas.student == "jdoe"
    assert canvas.file == "transfer_learning.ipynb"


def test_nested_folder_belongs_to_its_top_level_owner(tmp_path: Path, capsys) -> None:
    inbox = tmp_path / "in.zip"
    with zipfile.ZipFile(inbox, "w") as archive:
        archive.writestr("Eve_666_assignsubmission_file_/bob/tiny.ipynb", notebook("eve's"))
        archive.writestr("bob/tiny.ipynb", notebook("bob's own"))
        archive.writestr("eve/4711/tiny.ipynb", notebook("eve again"))
    status, _ = collect_cli(tmp_path, inbox, capsys)
    assert status == 0
    course = course_of(tmp_path)
    assert marker(course, "bob") == "bob's own"
    assert "4711" not in course.students() and marker(course, "eve") == "eve again"
    assert "Eve_666_assignsubmission_file" in course.students()


def test_control_characters_and_formulas_reach_no_terminal_or_csv_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    forged = "x\nmallory  20 of 20  graded  all tests passed\x1b]0;pwned\x07\x1b[2J.ipynb"
    (inbox / forged).write_bytes(notebook("nobody"))
    (inbox / "=HYPERLINK(1).ipynb").write_bytes(notebook("nobody"))
    (inbox / "-jdoe_1_2_tiny.ipynb").write_bytes(notebook("minus"))
    status, out = collect_cli(tmp_path, inbox, capsys)
    assert status == 0
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;pwned" in out
    assert not any(line.startswith("mallory") for line in out.splitlines())
    course = course_of(tmp_path)
    Result("-jdoe", "graded", 1, 2, reasons=["+cmd|' /C calc'!A0"]).save(course)
    assert main(["--course-dir", str(course.root), "--assignment", "tiny", "export"]) == 0
    capsys.readouterr()
    with open(course.grades_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    cells = {cell for row in rows for cell in row}
    assert "'-jdoe" in cells and "'=HYPERLINK(1).ipynb" in cells
    assert csv_cell("\tx") == "'\tx" and csv_cell("3") == "3"
    assert printable("a\u202eb\r\n") == "a\\u202eb\\r\\n"
    from autograder.report import summary_table

    table = summary_table([Result("-jdoe", "graded", 1, 2, reasons=["a\nb"])], unmatched=[forged])
    assert "\x1b" not in table and "a\\nb" in table
    assert not any(line.startswith("mallory") for line in table.splitlines())
