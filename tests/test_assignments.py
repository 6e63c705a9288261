"""Instructors pick one or both exercises: ``--assignment NAME`` (repeatable, or ``all``).

No kernel runs here: setup, release (nbgrader, with the leak check), reference and collect for
both exercises in one course directory, the first exercise keeping today's layout.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.__main__ import main
from autograder.coursedir import ASSIGNMENT, ASSIGNMENTS, CourseDir, resolve_assignments
from autograder.release import find_leaks, secret_lines

SECOND = "fine_tuning_in_stages"


def test_resolve_assignments() -> None:
    assert resolve_assignments(None) == [ASSIGNMENT] == ["transfer_learning"]
    assert resolve_assignments(["all"]) == list(ASSIGNMENTS) == [ASSIGNMENT, SECOND]
    assert resolve_assignments([SECOND, "all", SECOND]) == [SECOND, ASSIGNMENT]
    assert resolve_assignments(["tiny"]) == ["tiny"]  # an exercise of one's own


def test_first_exercise_keeps_todays_layout(tmp_path: Path) -> None:
    first, second = CourseDir(tmp_path), CourseDir(tmp_path, SECOND, SECOND)
    assert first.own == tmp_path and first.grades_csv == tmp_path / "grades.csv"
    assert first.originals("ada") == tmp_path / "originals" / "ada"
    own = tmp_path / "assignments" / SECOND
    assert second.own == own and second.grades_csv == own / "grades.csv"
    assert second.result("ada") == own / "results" / "ada.json"
    assert second.work == own / "work" and second.originals("ada") == own / "originals" / "ada"
    assert second.gradebook == first.gradebook  # one gradebook, nbgrader's own layout
    assert second.submitted("ada") == tmp_path / "submitted" / "ada" / SECOND / f"{SECOND}.ipynb"


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course directory with both exercises set up and released, by one command each."""
    root = tmp_path_factory.mktemp("both") / "grading"
    base = ["--course-dir", str(root), "--assignment", "all"]
    assert main([*base, "setup"]) == 0
    assert main([*base, "release"]) == 0
    return root


def test_all_sets_up_and_releases_both_without_leaks(both: Path) -> None:
    for name in ASSIGNMENTS:
        course = CourseDir(both, name, name)
        source = nbformat.read(course.source_notebook, 4)
        secrets = secret_lines(source)
        assert {s.kind for s in secrets} == {"solution", "hidden test"}
        assert find_leaks(source, course.release_notebook.parent) == []
        files = sorted(p.name for p in course.release_notebook.parent.rglob("*"))
        assert files == [f"{name}.ipynb"]


def test_leak_check_catches_a_planted_exercise2_answer(both: Path, tmp_path: Path) -> None:
    course = CourseDir(both, SECOND, SECOND)
    source = nbformat.read(course.source_notebook, 4)
    leaked = nbformat.read(course.release_notebook, 4)
    leaked.cells[-1].source += "\nbest_state = copy.deepcopy(model.state_dict())"
    nbformat.write(leaked, tmp_path / f"{SECOND}.ipynb")
    leaks = find_leaks(source, tmp_path / f"{SECOND}.ipynb")
    assert any("copy.deepcopy(model.state_dict())" in leak for leak in leaks)


def test_reference_and_collect_take_one_inbox_per_assignment(
    both: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--course-dir", str(both)]
    refs = tmp_path / "refs"
    assert main([*base, "reference", "--assignment", "all", str(refs)]) == 0
    assert sorted(p.name for p in refs.iterdir()) == sorted(f"{n}.ipynb" for n in ASSIGNMENTS)
    inbox = tmp_path / "inbox"
    for name in ASSIGNMENTS:
        (inbox / name / "ada").mkdir(parents=True)
        (refs / f"{name}.ipynb").rename(inbox / name / "ada" / f"{name}.ipynb")
    capsys.readouterr()
    assert main([*base, "--assignment", "all", "collect", str(inbox)]) == 0
    out = capsys.readouterr().out
    assert f"== {ASSIGNMENT} ==" in out and f"== {SECOND} ==" in out
    for name in ASSIGNMENTS:
        course = CourseDir(both, name, name)
        assert course.students() == ["ada"]
        assert course.submitted("ada").is_file()
    # Several assignments need INBOX/<assignment>/; one folder of notebooks is refused.
    assert main([*base, "--assignment", "all", "collect", str(inbox / ASSIGNMENT)]) == 1
    assert "No inbox for transfer_learning" in capsys.readouterr().err
    # --source names one exercise's source.
    assert main([*base, "--assignment", "all", "setup", "--source", "x.py"]) == 1
    assert "pick one --assignment" in capsys.readouterr().err


def test_default_is_the_first_exercise_only(tmp_path: Path) -> None:
    root = tmp_path / "grading"
    assert main(["--course-dir", str(root), "setup"]) == 0
    assert sorted(p.name for p in (root / "source").iterdir()) == [ASSIGNMENT]
    assert not (root / "assignments").exists()


def test_student_kit_can_release_the_second_exercise(tmp_path: Path) -> None:
    """The kit makes each picked exercise's student notebook with the CLI, in its own dir."""
    from autograder.student_package import released_notebook

    released = released_notebook(tmp_path, SECOND)
    assert released.name == f"{SECOND}.ipynb"
    text = "\n".join(c.source for c in nbformat.read(released, 4).cells)
    assert "raise NotImplementedError" in text and "BEGIN SOLUTION" not in text


def test_exercise2_page_holds_no_answer_or_hidden_test() -> None:
    """The site's exercise pages are written by hand: none may repeat a secret line."""
    import jupytext

    from autograder.release import exercise_source

    secrets = secret_lines(jupytext.read(exercise_source(SECOND)))
    docs = Path(__file__).resolve().parent.parent / "docs"
    pages = {p: p.read_text(encoding="utf-8") for p in docs.rglob("*.md")}
    found = [
        f"{p.name}: {s.text}"
        for p, text in pages.items()
        for s in secrets
        if s.text in {line.strip() for line in text.splitlines()}
    ]
    assert found == []
    assert "fine_tuning_in_stages" in pages[docs / "exercise" / "fine_tuning_in_stages.md"]
