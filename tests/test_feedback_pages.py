"""Feedback pages through ``python -m autograder feedback``: one page at a time, all inert.

Hand-made autograded notebooks (no kernel runs) with pasted images, a remote tracking pixel, a
fake grader banner, a notebook too large to show and a damaged one: every student gets a page,
the good ones are unaffected, and no page loads or runs anything.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from hostile_files import with_attachments
from nbgrader.api import Gradebook
from test_pipeline import make_tiny_course, reference
from test_report import audit

from autograder import feedback_page
from autograder.__main__ import main
from autograder.coursedir import COURSE_ID, CourseDir
from autograder.grade import Result
from autograder.report import feedback


class Structure(HTMLParser):
    """Where the grader's banner and the student's frame are, and what is inside the frame."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.depth = 0  # > 0 inside student content (nbconvert's rendered_html blocks)
        self.frame_attrs: set[str] = set()  # attribute names anywhere in the frame
        self.student_attrs: set[str] = set()  # attribute names inside student content
        self.in_frame = False
        self.img_src: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if "ag-grader" in classes or "ag-student" in classes:
            self.order.append(next(c for c in classes if c.startswith("ag-")))
        if self.in_frame:
            self.frame_attrs |= {name for name, _ in attrs}
        self.in_frame = self.in_frame or "ag-student" in classes
        if self.depth and tag not in ("img", "br", "hr", "col"):
            self.depth += 1
        if self.depth:
            self.student_attrs |= {name for name, _ in attrs}
        elif "rendered_html" in classes:
            self.depth = 1
        if tag == "img":
            self.img_src.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1


def structure(page: str) -> Structure:
    parser = Structure()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> CourseDir:
    course = make_tiny_course(tmp_path_factory.mktemp("pages"))
    good = reference(course)
    notebooks = {"ada": good, "pics": with_attachments(good), "huge": good, "broken": None}
    with Gradebook(course.db_url, COURSE_ID) as gb:
        for student, nb in notebooks.items():
            target = course.autograded(student)
            target.parent.mkdir(parents=True)
            if nb is None:
                target.write_text('{"cells": [', encoding="utf-8")
            else:
                nbformat.write(nb, target)
            gb.update_or_create_student(student)
            sub = gb.add_submission(course.assignment, student)
            for nb_sub in sub.notebooks:
                for grade in nb_sub.grades:
                    grade.auto_score = grade.max_score
            gb.db.commit()
            Result(student, "graded", reasons=[f"note for {student}"]).save(course)
    # Padding a cell makes "huge" larger than a page may show.
    big = nbformat.read(course.autograded("huge"), 4)
    big.cells[0].source += "\n" + "x" * 300_000
    nbformat.write(big, course.autograded("huge"))
    return course


@pytest.fixture(scope="module")
def pages(course: CourseDir) -> dict[str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feedback_page, "MAX_NOTEBOOK_BYTES", 200_000)
        assert main(["--course-dir", str(course.root), "--assignment", "tiny", "feedback"]) == 0
    return {
        s: course.feedback(s).read_text(encoding="utf-8") for s in ("ada", "pics", "huge", "broken")
    }


def test_every_page_is_inert_and_loads_nothing(pages: dict[str, str]) -> None:
    for student, page in pages.items():
        assert audit(page).found == [], student
        assert "<script" not in page and "mathjax" not in page.lower(), student
        assert "default-src 'none'" in page, student
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.split("<body")[0])
        assert f"note for {student}" in page and "Score: 4 / 4 (graded)" in page


def test_banner_is_the_graders_and_outside_the_student_frame(pages: dict[str, str]) -> None:
    for student in ("ada", "pics"):
        found = structure(pages[student])
        assert found.order == ["ag-grader", "ag-student"], student
        assert not found.frame_attrs & {"id", "style", "name"}, student
        assert "class" not in found.student_attrs, student
    assert "Score: 20 / 20" in pages["pics"]  # the student's text is shown, as text in the frame
    assert 'id="autograder-summary"' not in pages["pics"]


def test_pasted_images_stay_inert_and_remote_ones_load_nothing(pages: dict[str, str]) -> None:
    found = structure(pages["pics"])
    assert any(src.startswith("data:image/png;base64,") for src in found.img_src)
    assert all(src == "" or src.startswith("data:image/png") for src in found.img_src)
    body = pages["pics"].partition("<body>")[2]
    assert "tracker.example" not in pages["pics"] and "svg+xml" not in body
    assert "onload" not in body and "alert" not in body
    assert "My plot" in pages["pics"]


def test_a_page_that_cannot_be_built_says_so_and_harms_no_other(pages: dict[str, str]) -> None:
    assert 'class="ag-student"' not in pages["huge"] and "too large to show here" in pages["huge"]
    assert 'class="ag-student"' not in pages["broken"]
    assert "could not be turned into a page" in pages["broken"]
    assert "Tiny exercise" in pages["ada"]  # the good page has the notebook


def test_feedback_leaves_nothing_in_the_course_work_folder(course: CourseDir, pages) -> None:
    assert not course.work.exists() or not any(course.work.iterdir())


def test_a_page_over_its_time_limit_is_stopped(course: CourseDir) -> None:
    paths = feedback(course, seconds=0.001)
    page = Path(next(p for p in paths if "ada" in p.parts)).read_text(encoding="utf-8")
    assert "took longer than 0.001 s" in page and "Score: 4 / 4" in page
    assert audit(page).found == []
