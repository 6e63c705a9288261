"""The grading course directory and the nbgrader configuration built for it, in code.

One course directory holds one or more assignments (:data:`ASSIGNMENTS`: the exercises this
course ships). nbgrader's folders are per assignment by themselves; ours (originals, results,
work, grades.csv, unmatched.json) are at the top for the first exercise, as they always
were, and under ``assignments/<name>/`` for every other one (:attr:`CourseDir.own`).

Layout (nbgrader's own, plus three folders of ours)::

    grading/
      gradebook.db                      nbgrader's SQLite gradebook (one writer: the parent)
      nbgrader_config.py                for `nbgrader formgrader` (manual grading), generated
      source/<assignment>/<nb>.ipynb    instructor version, built from the Jupytext source
      release/<assignment>/<nb>.ipynb   student version
      originals/<student>/...           submissions exactly as received, never modified
      submitted/<student>/<assignment>/<nb>.ipynb
      autograded/<student>/<assignment>/<nb>.ipynb
      feedback/<student>/<assignment>/<nb>.html
      results/<student>.json            status, reason and score of the last autograde
      work/                             per-submission scratch course folders (deleted after)
      grades.csv
      assignments/<name>/               originals/, results/, work/, grades.csv and
                                        unmatched.json of every other assignment
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

from autograder.limits import Limits

ASSIGNMENT = "transfer_learning"
NOTEBOOK = "transfer_learning"
#: The exercises this course ships, in order; ``--assignment all`` picks every one.
ASSIGNMENTS = ("transfer_learning", "fine_tuning_in_stages")
COURSE_ID = "transfer-course"

#: What replaces each solution region in the release: a kind note saying what to do.
CODE_STUB = (
    "# YOUR CODE HERE\n"
    'raise NotImplementedError("Not done yet: replace this line with your code, '
    'then run the test cell below.")'
)

#: Environment of the grading kernel: quiet libraries, offline. Scores come from the trusted
#: comparison, not from the notebook's outputs, so nothing here is needed for a fair score;
#: it keeps the feedback pages readable.
KERNEL_ENV = {
    "PYTHONWARNINGS": "ignore",
    "TQDM_DISABLE": "1",
    "COURSE_OFFLINE": "1",
    "COURSE_QUICK": "1",
    "MPLBACKEND": "Agg",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def resolve_assignments(names: list[str] | None) -> list[str]:
    """The assignments an instructor picked: none given, the first exercise; ``all``, every
    one of :data:`ASSIGNMENTS`; otherwise the names, in order, each once.

    A name outside :data:`ASSIGNMENTS` is kept (an exercise of your own, set up with
    ``--source``).
    """
    if not names:
        return [ASSIGNMENT]
    picked: list[str] = []
    for name in names:
        for one in ASSIGNMENTS if name == "all" else (name,):
            if one not in picked:
                picked.append(one)
    return picked


@dataclass(frozen=True)
class CourseDir:
    """Paths of a grading course directory (see the module docstring)."""

    root: Path
    assignment: str = ASSIGNMENT
    notebook: str = NOTEBOOK

    @property
    def own(self) -> Path:
        """This assignment's own pipeline files: the course root for the first exercise
        (today's layout), ``assignments/<name>/`` under it for any other."""
        if self.assignment == ASSIGNMENT:
            return self.root
        return self.root / "assignments" / self.assignment

    @property
    def gradebook(self) -> Path:
        """The nbgrader gradebook file."""
        return self.root / "gradebook.db"

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the gradebook (every gradebook access goes through it)."""
        _console_scripts_on_path()
        return f"sqlite:///{self.gradebook.resolve()}"

    @property
    def source_notebook(self) -> Path:
        """The instructor notebook nbgrader generates the release from."""
        return self.root / "source" / self.assignment / f"{self.notebook}.ipynb"

    @property
    def release_notebook(self) -> Path:
        """The student notebook."""
        return self.root / "release" / self.assignment / f"{self.notebook}.ipynb"

    def submitted(self, student: str) -> Path:
        """Where ``student``'s submission is graded from."""
        return self.root / "submitted" / student / self.assignment / f"{self.notebook}.ipynb"

    def autograded(self, student: str) -> Path:
        """The executed, scored copy of ``student``'s submission."""
        return self.root / "autograded" / student / self.assignment / f"{self.notebook}.ipynb"

    def feedback(self, student: str) -> Path:
        """The HTML feedback for ``student``."""
        return self.root / "feedback" / student / self.assignment / f"{self.notebook}.html"

    def originals(self, student: str) -> Path:
        """Folder with ``student``'s submission exactly as received."""
        return self.own / "originals" / student

    def result(self, student: str) -> Path:
        """JSON record of ``student``'s last autograde."""
        return self.own / "results" / f"{student}.json"

    @property
    def work(self) -> Path:
        """Scratch folders for graders running in parallel."""
        return self.own / "work"

    @property
    def grades_csv(self) -> Path:
        """The exported grades."""
        return self.own / "grades.csv"

    def students(self) -> list[str]:
        """Students with a collected submission (a folder under ``originals/``), sorted."""
        base = self.own / "originals"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def _console_scripts_on_path() -> None:
    """Put this Python's scripts folder on ``PATH`` for nbgrader's subprocesses.

    nbgrader stamps a new gradebook by running the ``alembic`` command, found through
    ``PATH``. Called as ``.venv/bin/python -m autograder`` without activating the virtual
    environment, that command is not found and the release fails; the scripts installed
    next to the running interpreter are the right ones.
    """
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if scripts not in path.split(os.pathsep):
        os.environ["PATH"] = scripts + (os.pathsep + path if path else "")


def nbgrader_config(course: CourseDir, limits: Limits | None = None) -> Config:
    """The nbgrader configuration of ``release``, ``feedback`` and formgrader, built in code.

    Autograding does not run nbgrader's converter: :mod:`autograder.submission` prepares,
    runs and scores each notebook itself (see ``autograder/README.md``).

    Args:
        course: the course directory (its ``root`` becomes ``CourseDirectory.root``).
        limits: the per-cell timeout written for formgrader; defaults to :class:`Limits`'s.
    """
    limits = limits or Limits()
    c = Config()
    c.CourseDirectory.root = str(course.root.resolve())
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = course.db_url
    # Nothing but notebooks may travel from source/ to the release: a Jupytext .py copy there
    # would hand the solutions to every student (DESIGN.md, "Known traps").
    c.CourseDirectory.ignore = [
        ".ipynb_checkpoints",
        "*.pyc",
        "__pycache__",
        "*.py",
        "*.md",
        "jupytext.toml",
        "feedback",
    ]
    c.GenerateAssignment.create_assignment = True
    c.ClearSolutions.code_stub = {"python": CODE_STUB}
    c.Execute.timeout = limits.cell_timeout
    c.OverwriteCells.add_missing_cells = True
    return c


CONFIG_FILE_TEXT = '''\
"""nbgrader configuration for this grading folder, written by `python -m autograder setup`.

The pipeline (`python -m autograder ...`) builds its configuration in code and does not read
this file; it is here so that `nbgrader formgrader` (manual grading of the written answer)
works in this folder with the same gradebook and the same timeouts.
"""

c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.db_url = {db_url!r}
c.CourseDirectory.ignore = {ignore!r}
c.Execute.timeout = {timeout!r}
c.OverwriteCells.add_missing_cells = True
'''


def write_config_file(course: CourseDir, limits: Limits | None = None) -> Path:
    """Write ``nbgrader_config.py`` for nbgrader's own apps (formgrader) into the course dir."""
    config = nbgrader_config(course, limits)
    path = course.root / "nbgrader_config.py"
    path.write_text(
        CONFIG_FILE_TEXT.format(
            root=config.CourseDirectory.root,
            course_id=config.CourseDirectory.course_id,
            db_url=config.CourseDirectory.db_url,
            ignore=list(config.CourseDirectory.ignore),
            timeout=config.Execute.timeout,
        ),
        encoding="utf-8",
    )
    return path
