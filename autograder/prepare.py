"""Make a submitted notebook ready to run, without running any of it (trusted side).

nbgrader's non-executing preprocessors do the work, reading the instructor's cells from a
gradebook: outputs cleared, duplicate cell ids fixed, the kernelspec set, every test and
locked cell replaced by the instructor's version (hidden tests included) and deleted test
cells added back (``OverwriteCells.add_missing_cells``), then the cell metadata checked.
"""

from __future__ import annotations

import copy

from nbformat.notebooknode import NotebookNode


class PreparationError(Exception):
    """The notebook's grading metadata is broken beyond what nbgrader can restore."""


def prepare_notebook(nb: NotebookNode, db_url: str, assignment: str, notebook: str) -> NotebookNode:
    """A copy of ``nb`` with instructor cells restored and outputs cleared.

    Args:
        nb: the submitted notebook (untrusted).
        db_url: a gradebook holding the assignment's source cells (read only).
        assignment: the assignment name.
        notebook: the notebook name inside the assignment.

    Raises:
        PreparationError: nbgrader refused the notebook (for example, a cell whose nbgrader
            metadata was edited by hand).
    """
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        DeduplicateIds,
        OverwriteCells,
        OverwriteKernelspec,
    )

    resources = {"nbgrader": {"db_url": db_url, "assignment": assignment, "notebook": notebook}}
    nb = copy.deepcopy(nb)
    steps = [
        ClearOutput(),
        DeduplicateIds(),
        OverwriteKernelspec(),
        OverwriteCells(add_missing_cells=True),
        CheckCellMetadata(),
    ]
    try:
        for step in steps:
            nb, resources = step.preprocess(nb, resources)
    except Exception as error:  # nbgrader raises plain exceptions with a useful message
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise PreparationError(
            f"the notebook's grading metadata is damaged ({first}): download the exercise "
            "again and copy your answers into it cell by cell"
        ) from None
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = None
    return nb
