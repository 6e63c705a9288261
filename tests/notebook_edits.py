"""Edits of a released notebook that the grading tests use to build submissions."""

from __future__ import annotations

import copy

import nbformat


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    """The cell's nbgrader ``grade_id``, or None for a cell nbgrader does not track."""
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def with_source(nb: nbformat.NotebookNode, cell_id: str, source: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose cell ``cell_id`` holds ``source`` (a student's answer)."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if grade_id(cell) == cell_id:
            cell.source = source
    return out


def without(nb: nbformat.NotebookNode, *cell_ids: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the cells ``cell_ids`` deleted."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if grade_id(c) not in cell_ids]
    return out
