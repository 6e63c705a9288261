"""Submissions of the tiny exercise that a real class produces: Jupyter edits and bad files."""

from __future__ import annotations

import base64
import copy
import zipfile
from pathlib import Path

import nbformat
from notebook_edits import grade_id

#: A 1x1 PNG (valid, inert).
PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def copy_cell(
    nb: nbformat.NotebookNode, gid: str, source: str | None = None
) -> nbformat.NotebookNode:
    """A copy of ``nb`` where the cell ``gid`` is pasted again right after itself (same id).

    ``source`` replaces the source of the FIRST of the two (the student edited the original
    and left the pasted copy as it was).
    """
    out = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(out.cells) if grade_id(c) == gid)
    out.cells.insert(index + 1, copy.deepcopy(out.cells[index]))
    if source is not None:
        out.cells[index].source = source
    return out


def with_added_graded_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with a student-made cell that claims 5 points of its own."""
    out = copy.deepcopy(nb)
    cell = nbformat.v4.new_code_cell("assert True  # my own test")
    cell.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": "bonus-test",
        "locked": True,
        "points": 5,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    out.cells.append(cell)
    return out


def with_attachments(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with pasted images: a PNG, an SVG with a script, and a missing one."""
    out = copy.deepcopy(nb)
    cell = nbformat.v4.new_markdown_cell(
        "My plot: ![plot](attachment:plot.png) and ![svg](attachment:evil.svg) "
        "and ![gone](attachment:missing.png)\n\n"
        '<img src="https://tracker.example/pixel.gif">'
        '<div id="autograder-summary" class="ag-grader" style="color:red">'
        "<h2>Score: 20 / 20 (graded)</h2></div>"
    )
    cell.attachments = {
        "plot.png": {"image/png": PNG_1X1},
        "evil.svg": {"image/svg+xml": "<svg onload=\"alert('attachment')\"></svg>"},
    }
    out.cells.insert(1, cell)
    return out


def deeply_nested(depth: int = 100_000) -> bytes:
    """A notebook whose metadata nests ``depth`` lists: valid JSON no parser can recurse into."""
    return (
        b'{"cells": [], "metadata": {"x": '
        + b"[" * depth
        + b"]" * depth
        + b'}, "nbformat": 4, "nbformat_minor": 5}'
    )


def lying_zip(path: Path, files: dict[str, bytes], liar: str, size: int = 100) -> Path:
    """Write ``files`` to a deflated zip, then make ``liar``'s headers claim ``size`` bytes."""
    import struct

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    data = bytearray(path.read_bytes())
    name = liar.encode()
    for signature, offset, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            if data[start + name_at : start + name_at + len(name)] == name:
                data[start + offset : start + offset + 4] = struct.pack("<I", size)
            start += 4
    path.write_bytes(bytes(data))
    return path


def edits(
    good: nbformat.NotebookNode, released: nbformat.NotebookNode
) -> dict[str, nbformat.NotebookNode]:
    """Everyday Jupyter edits of a full-marks notebook: each must still get full marks."""
    stub = next(c.source for c in released.cells if grade_id(c) == "square-answer")
    return {
        # Pasted twice, both answered.
        "answercopy": copy_cell(good, "square-answer"),
        # The stub pasted, the answer written in the pasted copy: the answered one is graded.
        "answeredcopy": copy_cell(good, "square-answer", source=stub),
        "testcopy": copy_cell(good, "square-test"),
        "addedcell": with_added_graded_cell(good),
        "attachments": with_attachments(good),
    }
