"""What the sandbox shows of the grader's Python (``autograder/sandbox_paths.py``).

An ordinary user's ``sys.path`` can name a folder holding subfolders that user may not read
(``/tmp`` as the working folder, a shared home). Grading as that user crashed with a
PermissionError before any student ran; such folders are now skipped, since the sandbox could
not read them either. Root reads everything, so the refusal is simulated here; the suite run
as an ordinary user meets the real one.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest

from autograder import sandbox_paths


@pytest.fixture
def folder_with_a_private_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` on sys.path holding ``mine`` (a package), ``private/`` (unreadable) and
    ``autograder`` (a copy to mask); every look inside ``private`` is refused."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "private").mkdir()
    (tmp_path / "autograder").mkdir()
    (tmp_path / "autograder" / "__init__.py").write_text("", encoding="utf-8")
    private = tmp_path / "private"
    real_stat = Path.stat

    def stat(self: Path, *args: object, **kwargs: object):
        if self == private or private in self.parents:
            if self != private:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    return tmp_path


def test_an_unreadable_folder_on_sys_path_is_skipped_not_fatal(
    folder_with_a_private_part: Path,
) -> None:
    roots = sandbox_paths.python_roots()
    folder = folder_with_a_private_part.resolve()
    assert folder / "mine" in roots  # a readable package beside it is still bound
    assert folder / "private" not in roots
    assert folder / "autograder" not in roots
    assert folder / "autograder" in sandbox_paths.grading_package_copies()


def test_a_project_folder_shows_only_its_course_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("course", "solutions", "autograder", "grading"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    shown = {p for p in sandbox_paths.python_roots() if p.is_relative_to(tmp_path.resolve())}
    assert shown == {tmp_path.resolve() / "course", tmp_path.resolve() / "pyproject.toml"}
