"""``setup`` and ``release``: from the Jupytext exercise source to the student notebook.

The source (``autograder/exercise/<assignment>.py``) is read with Jupytext and written as the one
notebook in ``source/<assignment>/``; the ``.py`` itself never goes there, because nbgrader
copies every other file of that folder into the release. nbgrader's ``GenerateAssignment``
then replaces solution regions with stubs and removes hidden tests. Before the release counts
as done, :func:`find_leaks` checks that no line of a solution region or a hidden test reached
it.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

from autograder.coursedir import CourseDir, nbgrader_config, write_config_file
from autograder.exercise import exercise_source
from autograder.limits import Limits
from course.errors import CourseError
from course.notebooks import CHECK_KEY

_REGIONS = {
    "solution": (re.compile(r"#+\s*BEGIN SOLUTION"), re.compile(r"#+\s*END SOLUTION")),
    "hidden test": (
        re.compile(r"#+\s*BEGIN HIDDEN TESTS"),
        re.compile(r"#+\s*END HIDDEN TESTS"),
    ),
    "mark scheme": (
        re.compile(r"=+\s*BEGIN MARK SCHEME\s*=+"),
        re.compile(r"=+\s*END MARK SCHEME\s*=+"),
    ),
}
#: Shorter lines (``return model``, ``loss.backward()``) carry no secret and appear everywhere.
_MIN_SECRET_CHARS = 17


class ReleaseError(CourseError):
    """The release could not be made, or it would leak; the message says which line."""


def setup(course: CourseDir, source: Path | None = None, limits: Limits | None = None) -> Path:
    """Create the course directory and write the instructor notebook from the Jupytext source.

    Returns:
        The path of ``source/<assignment>/<notebook>.ipynb``.
    """
    import jupytext

    source = Path(source) if source else exercise_source(course.assignment)
    if not source.is_file():
        raise ReleaseError(
            f"Exercise source not found: {source}",
            "pass --source PATH to the Jupytext .py (or .ipynb) exercise.",
        )
    for sub in ("source", "release", "submitted", "autograded", "feedback"):
        (course.root / sub).mkdir(parents=True, exist_ok=True)
    (course.own / "originals").mkdir(parents=True, exist_ok=True)
    write_config_file(course, limits)
    nb = jupytext.read(source) if source.suffix == ".py" else nbformat.read(source, 4)
    strip_pairing(nb)
    target = course.source_notebook
    target.parent.mkdir(parents=True, exist_ok=True)
    stray = [p for p in target.parent.iterdir() if p != target]
    if stray:
        raise ReleaseError(
            f"{target.parent} holds files besides the notebook: {', '.join(p.name for p in stray)}",
            "remove them; nbgrader would copy them into the student release "
            "(a Jupytext .py there leaks the solutions).",
        )
    nbformat.write(nb, target)
    return target


_JUPYTEXT_CELL_KEYS = (
    "jupytext",
    "lines_to_next_cell",
    "lines_to_end_of_cell_marker",
    "cell_marker",
    "region_name",
)
_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def strip_pairing(nb: NotebookNode) -> None:
    """Remove Jupytext metadata: pairing would make a student's Jupyter write a .py copy."""
    nb.metadata.pop("jupytext", None)
    nb.metadata.setdefault("kernelspec", _KERNELSPEC)
    for cell in nb.cells:
        for key in _JUPYTEXT_CELL_KEYS:
            cell.metadata.pop(key, None)


def release(course: CourseDir, limits: Limits | None = None) -> Path:
    """Generate the student notebook with nbgrader and check it for leaks.

    Returns:
        The path of ``release/<assignment>/<notebook>.ipynb``.

    Raises:
        ReleaseError: the source notebook is missing, nbgrader failed, or a leak was found.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    limits = limits or Limits()
    if not course.source_notebook.is_file():
        raise ReleaseError(
            f"No instructor notebook at {course.source_notebook}",
            "run `python -m autograder setup` first.",
        )
    config = nbgrader_config(course, limits)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = course.assignment
    converter = GenerateAssignment(coursedir=coursedir, config=config)
    converter.force = True
    try:
        converter.start()
    except Exception as exc:  # nbgrader raises NbGraderException and plain errors alike
        raise ReleaseError(
            f"nbgrader could not generate the release: {exc}",
            "fix what nbgrader names in the exercise source, then run `setup` and `release` again.",
        ) from exc
    released = course.release_notebook
    nb = nbformat.read(released, 4)
    strip_pairing(nb)
    nb.metadata[CHECK_KEY] = check_manifest(nb, f"{course.notebook}.ipynb", limits.cell_timeout)
    nbformat.write(nb, released)
    leaks = find_leaks(nbformat.read(course.source_notebook, 4), released.parent)
    if leaks:
        shutil.rmtree(released.parent)
        raise ReleaseError(
            "The release leaked and was deleted:\n  " + "\n  ".join(leaks[:20]),
            "keep each listed line inside a solution or hidden-test region of the exercise "
            "source (or remove the listed file), then run `setup` and `release` again.",
        )
    return released


def check_manifest(nb: NotebookNode, filename: str, cell_timeout: int) -> dict:
    """What ``course.check`` and the grader compare a submission with (under ``CHECK_KEY``).

    Only checksums and ids of cells the student already sees are recorded: nothing secret.
    """
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if "grade_id" not in meta or "checksum" not in meta:
            continue
        kind = "answer" if meta.get("solution") else "test" if meta.get("grade") else "locked"
        if meta.get("task"):
            kind = "task"
        cells.append(
            {
                "grade_id": meta["grade_id"],
                "kind": kind,
                "checksum": meta["checksum"],
                "points": float(meta.get("points", 0) or 0),
            }
        )
    return {"notebook": filename, "cell_timeout": cell_timeout, "cells": cells}


@dataclass(frozen=True)
class Secret:
    """A line that must not leave the instructor's hands, and where it comes from."""

    text: str
    kind: str
    cell: str


def secret_lines(source: NotebookNode) -> list[Secret]:
    """Lines of solution regions, hidden tests and mark schemes that appear nowhere else.

    A markdown answer cell without markers counts as one whole solution region, as nbgrader
    replaces the whole cell. Lines shorter than a few characters are skipped: they carry
    nothing and occur in any notebook.
    """
    inside: list[Secret] = []
    outside: set[str] = set()
    for index, cell in enumerate(source.cells):
        meta = cell.metadata.get("nbgrader", {})
        name = meta.get("grade_id", f"cell {index}")
        lines = cell.source.splitlines()
        whole_answer = (
            meta.get("solution")
            and cell.cell_type == "markdown"
            and not any(_REGIONS["solution"][0].search(x) for x in lines)
        )
        region: str | None = "solution" if whole_answer else None
        for line in lines:
            text = line.strip()
            if not whole_answer:
                opened = next((k for k, (b, _) in _REGIONS.items() if b.search(line)), None)
                if opened:
                    region = opened
                    continue
                if region and _REGIONS[region][1].search(line):
                    region = None
                    continue
            if region:
                inside.append(Secret(text, region, name))
            else:
                outside.add(text)
    return [s for s in inside if len(s.text) >= _MIN_SECRET_CHARS and s.text not in outside]


def find_leaks(source: NotebookNode, released: Path) -> list[str]:
    """Every secret line of ``source`` found in a file under ``released`` (a folder or file)."""
    secrets = secret_lines(source)
    files = [released] if released.is_file() else sorted(p for p in released.rglob("*"))
    leaks = []
    for path in files:
        if not path.is_file():
            continue
        if path.suffix == ".py" and path.stem == source.metadata.get("name", ""):
            leaks.append(f"{path}: a copy of the exercise source")
        text = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".ipynb":
            # Compare cell sources, not JSON-escaped text.
            try:
                text = "\n".join(c.source for c in nbformat.reads(text, 4).cells)
            except Exception:  # not a notebook after all: scan the raw text
                pass
        found = {line.strip() for line in text.splitlines()}
        for secret in secrets:
            if secret.text in found:
                leaks.append(f"{path}: {secret.kind} line from {secret.cell}: {secret.text!r}")
    return leaks


def fill_from_source(released: NotebookNode, source: NotebookNode) -> NotebookNode:
    """A copy of ``released`` with each answer cell filled from ``source``'s solution region.

    This is what a student who wrote the reference solution would submit: test and locked cells
    stay as released, hidden tests stay out. Used to check that the reference scores full marks.
    """
    import copy

    by_id = {
        c.metadata.nbgrader["grade_id"]: c
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    filled = copy.deepcopy(released)
    for cell in filled.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in by_id:
            lines = by_id[meta["grade_id"]].source.splitlines()
            begin, end = _REGIONS["solution"]
            cell.source = "\n".join(x for x in lines if not (begin.search(x) or end.search(x)))
    return filled
