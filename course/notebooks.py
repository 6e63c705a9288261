"""Reading notebooks the way the grader does: readability, tamper detection, errors, stderr.

One module for what ``python -m course.check`` (your own check before submitting), the
autograder and the lesson scripts need to know about a notebook, so all three agree:

- :func:`readability_problem`: why a file cannot be graded at all (empty, not JSON, not a
  notebook), or None;
- :func:`review`: what the grader does with the cells (one call, so ``course.check`` predicts
  exactly what the grader does): copies of graded cells (Jupyter's copy and paste keeps the
  grading metadata) and cells a student gave grading metadata are demoted to ordinary cells
  (:func:`resolve_cells`); then :func:`cell_changes` lists which test or locked cells were
  deleted or edited and which answers are still the released stub, from the checksums the
  release records in its metadata under :data:`CHECK_KEY`;
- :func:`cell_errors` and :func:`stderr_outputs`: errors raised and text written to stderr
  by an executed notebook.

Needs only ``nbformat``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

#: Notebook metadata key under which the release records file name, timeout and checksums.
CHECK_KEY = "course_check"


def readability_problem(data: bytes) -> str | None:
    """Why ``data`` (a file's bytes) is not a gradable notebook, or None when it is.

    Never raises for a file's content: a notebook nested too deeply (``RecursionError``) or
    too large to parse (``MemoryError``) is a reason like any other.
    """
    try:
        return _readability_problem(data)
    except RecursionError:
        return (
            "the notebook is nested too deeply to be read (thousands of brackets inside each "
            "other): download it again from Jupyter (File > Download)"
        )
    except MemoryError:
        return "the notebook is too large to be read: remove big outputs, save, upload again"


def _readability_problem(data: bytes) -> str | None:
    import nbformat

    if not data.strip():
        return (
            "the submitted file is empty (0 bytes of notebook): save the notebook (Ctrl+S) "
            "and upload it again"
        )
    try:
        raw = json.loads(data.decode("utf-8", errors="strict"))
    except UnicodeDecodeError:
        return "the file is not text (not a notebook): upload the .ipynb file itself"
    except json.JSONDecodeError as exc:
        return (
            f"the notebook is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "it was probably edited as text or cut short: download it again from Jupyter "
            "(File > Download)"
        )
    if not isinstance(raw, dict) or "cells" not in raw:
        return "the file is JSON but not a Jupyter notebook (it has no cells)"
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several unrelated types for broken notebooks
        return f"the notebook does not follow the Jupyter format: {str(exc).splitlines()[0]}"
    return None


def source_of(cell: Any) -> str:
    """A cell's source as one string (notebooks may store it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def grade_id(cell: Any) -> str | None:
    """The nbgrader ``grade_id`` of a cell, or None."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if isinstance(meta, dict) else None


def cell_checksum(cell: Any) -> str:
    """nbgrader's cell checksum (``nbgrader.utils.compute_checksum``), without nbgrader."""
    meta = cell["metadata"]["nbgrader"]
    solution = bool(meta.get("solution", False))
    grade = bool(meta.get("grade", False))
    locked = False if solution else True if grade else bool(meta.get("locked", False))
    m = hashlib.md5()
    m.update(source_of(cell).encode("utf-8"))
    m.update(cell["cell_type"].encode("utf-8"))
    m.update(str(grade).encode("utf-8"))
    m.update(str(solution).encode("utf-8"))
    m.update(str(locked).encode("utf-8"))
    m.update(meta["grade_id"].encode("utf-8"))
    if grade:
        m.update(str(float(meta["points"])).encode("utf-8"))
    return m.hexdigest()


@dataclass(frozen=True)
class CellChange:
    """A graded or locked cell that differs from the release.

    ``kind`` is ``"answer"``, ``"task"``, ``"test"`` or ``"locked"``; ``change`` is
    ``"deleted"``, ``"edited"`` (tests and locked cells) or ``"unanswered"`` (answers).
    """

    grade_id: str
    kind: str
    change: str
    points: float


def cell_changes(manifest: dict[str, Any], nb: Any) -> list[CellChange]:
    """Every graded or locked cell of the release (``manifest``) deleted, edited or unanswered."""
    cells = {grade_id(c): c for c in nb.get("cells", []) if grade_id(c)}
    changes = []
    for item in manifest.get("cells", []):
        gid, kind = item["grade_id"], item["kind"]
        points = float(item.get("points", 0) or 0)
        cell = cells.get(gid)
        if cell is None:
            changes.append(CellChange(gid, kind, "deleted", points))
            continue
        try:
            same = cell_checksum(cell) == item["checksum"]
        except (KeyError, TypeError, ValueError):  # broken metadata counts as an edit
            same = False
        if kind in ("test", "locked") and not same:
            changes.append(CellChange(gid, kind, "edited", points))
        elif kind in ("answer", "task") and same:
            changes.append(CellChange(gid, kind, "unanswered", points))
    return changes


#: nbgrader metadata flags that make a cell graded, locked or an answer.
_GRADING_FLAGS = ("grade", "solution", "locked", "task")


@dataclass(frozen=True)
class CellFix:
    """A cell demoted to an ordinary cell (its nbgrader metadata removed) before grading.

    ``why`` is ``"copy"`` (a second cell with the grade id of a cell of the release: a Jupyter
    copy) or ``"added"`` (grading metadata on a cell the release does not have); ``kind`` is
    the released cell's kind for a copy, else ``""``; ``position`` counts cells from 1.
    """

    position: int
    grade_id: str | None
    why: str
    kind: str = ""

    @property
    def reason(self) -> str:
        """The note the grader adds to the result and ``course.check`` prints."""
        if self.why == "copy":
            return (
                f"cell {self.position} is a copy of the {self.kind} cell {self.grade_id!r} "
                "(a Jupyter copy keeps the grading metadata): the original is graded, the copy "
                "runs as an ordinary cell; nothing is lost"
            )
        name = repr(self.grade_id) if self.grade_id else "no grade id"
        return (
            f"cell {self.position} carries grading metadata ({name}) that no cell of the "
            "exercise has: it runs as an ordinary cell; nothing is lost"
        )


def _is_graded(cell: Any) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader")
    return isinstance(meta, dict) and any(meta.get(flag) for flag in _GRADING_FLAGS)


def _matches(cell: Any, checksum: str) -> bool:
    try:
        return cell_checksum(cell) == checksum
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def resolve_cells(manifest: dict[str, Any], nb: Any) -> list[CellFix]:
    """Demote copies and student-added graded cells of ``nb`` to ordinary cells, in place.

    Of several cells with one grade id of the release, one stays graded: for a test or locked
    cell the first that is unchanged from the release, for an answer the first that is
    answered (differs from the stub); when none is, the first in the notebook. Every other
    one, and every cell with grading metadata whose grade id the release does not have, loses
    its nbgrader metadata (its source and outputs stay) and is returned as a
    :class:`CellFix`. Afterwards each grade id appears at most once.
    """
    released = {item["grade_id"]: item for item in manifest.get("cells", [])}
    cells = nb.get("cells", [])
    by_id: dict[str, list[int]] = {}
    fixes = []
    for index, cell in enumerate(cells):
        if not _is_graded(cell):
            continue
        gid = grade_id(cell)
        if isinstance(gid, str) and gid in released:
            by_id.setdefault(gid, []).append(index)
        else:
            fixes.append(CellFix(index + 1, gid if isinstance(gid, str) else None, "added"))
    for gid, indexes in by_id.items():
        if len(indexes) < 2:
            continue
        item = released[gid]
        answer = item["kind"] in ("answer", "task")
        keep = next(
            (i for i in indexes if _matches(cells[i], item["checksum"]) != answer), indexes[0]
        )
        fixes += [CellFix(i + 1, gid, "copy", item["kind"]) for i in indexes if i != keep]
    fixes.sort(key=lambda f: f.position)
    for fix in fixes:
        del cells[fix.position - 1]["metadata"]["nbgrader"]
    return fixes


@dataclass(frozen=True)
class Review:
    """What the grader does with a submission's cells before running it (see :func:`review`)."""

    fixes: list[CellFix]
    changes: list[CellChange]


def review(manifest: dict[str, Any], nb: Any) -> Review:
    """Resolve copies and added graded cells (in place), then compare with the release.

    The grader and ``python -m course.check`` both call this, so the check predicts exactly
    what the grader will do.
    """
    fixes = resolve_cells(manifest, nb)
    return Review(fixes, cell_changes(manifest, nb))


@dataclass(frozen=True)
class CellError:
    """An error output of an executed code cell."""

    index: int
    grade_id: str | None
    ename: str
    evalue: str

    @property
    def line(self) -> str:
        """``Type: message`` on one line (at most 200 characters)."""
        text = f"{self.ename}: {self.evalue}".strip().rstrip(":")
        return (text.splitlines() or [""])[0][:200]


def cell_errors(nb: Any) -> list[CellError]:
    """The first error output of every code cell that has one, in order."""
    found = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(
                    CellError(
                        index,
                        grade_id(cell),
                        str(output.get("ename", "")),
                        str(output.get("evalue", "")),
                    )
                )
                break
    return found


def stderr_outputs(nb: Any) -> list[str]:
    """Text the notebook wrote to stderr (warnings, progress bars), one string per output."""
    return [
        "".join(output.get("text", ""))
        for cell in nb.get("cells", [])
        if cell.get("cell_type") == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stderr"
    ]
