"""The class-wide similarity report: copied answers and grading-internal code are listed,
honest different answers are not, and everything a student wrote is escaped."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

from autograder.similarity import (
    FLAG_SIMILARITY,
    csv_cell,
    find_internals,
    find_similar,
    fingerprints,
    jaccard,
    normalise,
    write_report,
    written_code,
)

VOCABULARY = frozenset({"torch", "nn", "model", "loader", "channel_stats", "DataLoader"})

ORIGINAL = """\
def channel_stats(loader):
    count = 0
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    for images, _ in loader:
        pixels = images.to(torch.float64)
        count += pixels.numel() // pixels.shape[1]
        total += pixels.sum(dim=(0, 2, 3))
        total_sq += (pixels * pixels).sum(dim=(0, 2, 3))
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
"""
#: The same code with comments added, names changed and blank lines: a disguised copy.
DISGUISED = """\
def channel_stats(loader):
    # my own work
    n = 0
    s1 = torch.zeros(3, dtype=torch.float64)

    s2 = torch.zeros(3, dtype=torch.float64)
    for batch, _ in loader:
        x = batch.to(torch.float64)   # to double
        n += x.numel() // x.shape[1]
        s1 += x.sum(dim=(0, 2, 3))
        s2 += (x * x).sum(dim=(0, 2, 3))
    m = s1 / n
    sd = (s2 / n - m**2).clamp_min(0).sqrt()
    return tuple(m.tolist()), tuple(sd.tolist())
"""
#: A different correct answer (two passes with torch's own functions).
DIFFERENT = """\
def channel_stats(loader):
    images = torch.cat([batch for batch, _ in loader])
    flat = images.transpose(0, 1).reshape(3, -1).double()
    return tuple(flat.mean(dim=1).tolist()), tuple(flat.std(dim=1, unbiased=False).tolist())
"""


def test_normalising_removes_comments_layout_and_own_names() -> None:
    assert normalise(ORIGINAL, VOCABULARY) == normalise(DISGUISED, VOCABULARY)
    assert normalise(ORIGINAL, VOCABULARY) != normalise(DIFFERENT, VOCABULARY)
    assert "zeros" in normalise(ORIGINAL, VOCABULARY)  # attribute names are the API: kept
    assert normalise("def (", VOCABULARY)  # code that does not tokenize still gives words


def test_fingerprints_separate_copies_from_other_answers() -> None:
    a, b, c = (fingerprints(normalise(x, VOCABULARY)) for x in (ORIGINAL, DISGUISED, DIFFERENT))
    assert jaccard(a, b) == 1.0
    assert jaccard(a, c) < 0.3
    tweaked = ORIGINAL.replace("clamp_min(0).", "")
    assert FLAG_SIMILARITY <= jaccard(a, fingerprints(normalise(tweaked, VOCABULARY))) < 1


def test_find_similar_lists_copies_only() -> None:
    answers = {
        "ann": {"task6-answer": ORIGINAL},
        "bob": {"task6-answer": DISGUISED},
        "cy": {"task6-answer": DIFFERENT},
        "dee": {"task6-answer": "def channel_stats(loader):\n    return (0,) * 3, (1,) * 3\n"},
        "eve": {"task6-answer": "def channel_stats(loader):\n    return (0,) * 3, (1,) * 3\n"},
    }
    findings = find_similar(answers, VOCABULARY)
    assert [(f.kind, f.student_a, f.student_b) for f in findings] == [("identical", "ann", "bob")]


def test_stub_lines_are_not_the_students_code() -> None:
    stub = 'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError()\n'
    answered = 'def f(x):\n    """Doc."""\n    return x + 1\n'
    assert written_code(stub, stub) == ""
    assert written_code(answered, stub) == "    return x + 1"


def test_grading_internals_are_listed_wherever_they_run() -> None:
    runs = {
        "honest": [("task1-answer", "return load_model('vgg16', weights=weights)")],
        "forger": [
            ("task1-answer", "import course.grading_record as g\ng.record_task = lambda *a: 0"),
            ("(added cell)", "open(os.environ['COURSE_RECORD_DIR'] + '/freeze.pt', 'wb')"),
        ],
    }
    findings = find_internals(runs)
    assert {(f.student_a, f.task) for f in findings} == {
        ("forger", "task1-answer"),
        ("forger", "(added cell)"),
    }
    assert all(f.kind == "grading internals" for f in findings)


def test_report_escapes_what_students_control(tmp_path: Path) -> None:
    from autograder.similarity import Finding

    evil = Finding(
        "grading internals", "(added cell)", "=HYPERLINK(1)", "", None, 1, "<script>x</script>"
    )
    csv_path, html_path = write_report([evil], tmp_path)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["student_a"] == "'=HYPERLINK(1)"
    page = html_path.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert csv_cell("-1") == "'-1" and csv_cell("ok") == "ok"


@pytest.mark.slow
def test_autograde_writes_the_report(tmp_path: Path) -> None:
    """Through the CLI on the tiny exercise: two students with one copied answer."""
    from test_pipeline import make_tiny_course

    from autograder.__main__ import main

    course = make_tiny_course(tmp_path)
    released = nbformat.read(course.release_notebook, 4)
    body = (
        "def square(x):\n    result = 0\n    for _ in range(abs(int(x))):\n"
        "        result = result + abs(x)\n    return result if x == int(x) else x * x\n"
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for student, code in (("ann", body), ("bob", body.replace("result", "total"))):
        nb = nbformat.from_dict(released)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "square-answer":
                cell.source = code
        nbformat.write(nb, inbox / f"{student}_1_2_tiny.ipynb")
    base = ["--course-dir", str(course.root), "--assignment", "tiny"]
    assert main([*base, "collect", str(inbox)]) == 0
    assert main([*base, "autograde", "--no-progress", "--sandbox", "off"]) == 0
    with open(course.own / "similarity.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["kind"], r["task"], r["student_a"], r["student_b"]) for r in rows] == [
        ("identical", "square-answer", "ann", "bob")
    ]
