"""Feedback pages and the CSV: hostile student content is inert, paths and pending points right.

A tiny course is released, then a hand-made "autograded" notebook full of hostile markdown and
outputs is put where ``autograde`` would leave it, with its scores in the gradebook: no kernel
runs, so this stays fast. The page is checked with a real HTML parser.
"""

from __future__ import annotations

import csv
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from test_pipeline import make_tiny_course, reference

from autograder.coursedir import COURSE_ID, CourseDir
from autograder.grade import Result
from autograder.report import export_csv, feedback, summary_table
from autograder.safe_html import sanitize_fragment, sanitize_page

PROJECT = str(Path(__file__).resolve().parent.parent)

HOSTILE_MARKDOWN = """\
# My answer
<script>alert('md-script')</script>
<img src=x onerror="alert('md-onerror')">
[click](javascript:alert('md-link')) and <a href="javascript:alert('md-a')">this</a>
<iframe src="https://example.org/frame"></iframe>
<svg onload="alert('md-svg')"><circle r="4"/></svg>
<style>body { display: none }</style>
<object data="x.swf"></object><form action="https://example.org"><input name=q></form>
<b>bold and safe</b>
"""


def hostile_outputs(course: CourseDir) -> list[nbformat.NotebookNode]:
    new = nbformat.v4
    return [
        new.new_output("display_data", data={"application/javascript": "alert('js-output')"}),
        new.new_output(
            "display_data",
            data={
                "text/html": "<script>alert('html-script')</script>"
                "<b onmouseover=\"alert('html-handler')\">visible html</b>"
                "<a href=\"javascript:alert('html-link')\">l</a>"
                "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
                "text/plain": "<IPython.core.display.HTML object>",
            },
        ),
        new.new_output(
            "display_data",
            data={"image/svg+xml": "<svg onload=\"alert('svg-output')\"></svg>"},
        ),
        new.new_output(
            "stream", name="stdout", text=f"</pre><script>alert('stream')</script> {PROJECT}/x.py\n"
        ),
        new.new_output(
            "error",
            ename="ValueError",
            evalue="bad",
            traceback=[f'File "{course.root.resolve()}/work/ada/x.py", line 1', "ValueError: bad"],
        ),
    ]


class Audit(HTMLParser):
    """Collects what must never reach a feedback page's body."""

    def __init__(self) -> None:
        super().__init__()
        self.in_body = False
        self.in_script = False
        self.found: list[str] = []
        self.script_text: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.in_body = True
        if tag == "script":
            self.in_script = True
            if self.in_body:
                self.found.append("<script> in body")
        if tag in ("iframe", "object", "embed", "svg", "form", "frame", "base"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if value and value.strip().lower().startswith(("javascript:", "vbscript:")):
                self.found.append(f"{tag} {name}={value}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.script_text.append(data)
        elif self.in_body:
            self.text.append(data)


def audit(page: str) -> Audit:
    parser = Audit()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def hostile_course(tmp_path_factory: pytest.TempPathFactory) -> CourseDir:
    course = make_tiny_course(tmp_path_factory.mktemp("report"))
    nb = reference(course)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "written-answer":
            cell.source = HOSTILE_MARKDOWN
        if grade_id == "square-answer":
            cell.outputs = hostile_outputs(course)
            cell.execution_count = 1
    nb.cells.append(nbformat.v4.new_markdown_cell("<script>alert('extra-cell')</script>ok"))
    target = course.autograded("ada")
    target.parent.mkdir(parents=True)
    nbformat.write(nb, target)
    with Gradebook(course.db_url, COURSE_ID) as gb:
        gb.update_or_create_student("ada")
        sub = gb.add_submission(course.assignment, "ada")
        for nb_sub in sub.notebooks:
            for grade in nb_sub.grades:
                manual = grade.name == "written-answer"
                grade.auto_score = None if manual else grade.max_score
                grade.needs_manual_grade = manual
        gb.db.commit()
    Result(
        "ada",
        "graded",
        reasons=[f"log kept at {course.root.resolve()}/results/ada.log"],
        failed_tests={},
    ).save(course)
    return course


@pytest.fixture(scope="module")
def page(hostile_course: CourseDir) -> str:
    """The feedback page of the hostile submission (rendered once)."""
    (path,) = feedback(hostile_course)
    return path.read_text(encoding="utf-8")


def test_feedback_page_has_no_active_content(page: str) -> None:
    found = audit(page)
    assert found.found == []
    assert not any("alert" in s for s in found.script_text)
    assert "html-script" not in page and "md-script" not in page  # not even as text
    text = "".join(found.text)
    assert "bold and safe" in text and "visible html" in text and "My answer" in text
    assert "Score: 3 / 4 (graded)" in text


def test_feedback_shows_pending_not_zero(page: str) -> None:
    text = "".join(audit(page).text)
    assert "pending (1.0 points, graded by hand)" in text
    assert "Score: 0.0 / 1.0" not in text and "-1.0" not in text
    assert "1 of these points are graded by hand: pending" in text


def test_feedback_and_csv_hide_instructor_paths(hostile_course: CourseDir, page: str) -> None:
    for secret in (str(hostile_course.root.resolve()), PROJECT, sys.prefix):
        assert secret not in page
    assert "[course]/work/ada/x.py" in page and "[grader]/x.py" in page
    with open(export_csv(hostile_course), newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert str(hostile_course.root.resolve()) not in row["reason"]
    assert "[course]/results/ada.log" in row["reason"]
    assert row["sandbox"] == ""  # this hand-made result records no sandbox at all


def test_csv_says_when_a_result_was_not_sandboxed(tmp_path: Path) -> None:
    course = CourseDir(tmp_path)
    Result("ada", "graded", 1, 1, sandbox=["cell timeout 60 s", "NOT sandboxed: no bwrap"]).save(
        course
    )
    Result("bob", "graded", 1, 1, sandbox=["filesystem sandbox (bubblewrap): ..."]).save(course)
    with open(export_csv(course), newline="", encoding="utf-8") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    assert rows["ada"]["sandbox"] == "NOT sandboxed: no bwrap"
    assert rows["bob"]["sandbox"] == "bubblewrap"


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<IMG SRC=JaVaScRiPt:alert(1)>",
        "<a href=' javascript:alert(1)'>x</a>",
        "<a href='data:text/html,<script>alert(1)</script>'>x</a>",
        "<svg/onload=alert(1)>",
        "<body onload=alert(1)>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<scr<script>ipt>alert(1)</script>",
        '<div style="background:url(javascript:alert(1))">x</div>',
    ],
)
def test_fragment_sanitizer_stops_known_tricks(attack: str) -> None:
    clean = sanitize_fragment(attack)
    found = audit(f"<html><body>{clean}</body></html>")
    assert found.found == [] and "style=" not in clean
    assert "data:text" not in clean


def test_page_sanitizer_rebuilds_the_head_without_scripts() -> None:
    page = (
        "<!DOCTYPE html><html><head><script src='mathjax.js'></script>"
        "<style>@import url(https://cdn.example/x.css); p{background:url(https://t.example/p)}"
        "</style><meta http-equiv='refresh' content='0;url=https://example.org'></head>"
        "<body><p onclick='x()'>Score: -1.0 / 2.0</p><script>alert(1)</script></body></html>"
    )
    clean = sanitize_page(page, {"/home/prof": "~"})
    # The head is the grader's: the template's CSS without remote loads, a CSP, no script.
    assert "mathjax" not in clean and "<script" not in clean and "refresh" not in clean
    assert "https://" not in clean and "p{background:none}" in clean
    assert "Content-Security-Policy" in clean and "default-src 'none'" in clean
    assert audit(clean).found == []
    assert "Score: pending (2.0 points, graded by hand)" in clean


def test_summary_wraps_instead_of_cutting() -> None:
    long = "the kernel died while running the notebook " * 6 + "THE USEFUL END"
    table = summary_table(
        [Result("ada", "crashed", 0, 20, 0, [long], {"task2-test": "AssertionError"})], width=80
    )
    assert "THE USEFUL END" in " ".join(table.split()) and "..." not in table
    assert all(len(line) <= 80 for line in table.splitlines())
    assert "failed tests: task2-test" in table
