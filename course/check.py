"""Check your exercise notebook the way the autograder will, before you submit it.

Run it from a terminal, next to your notebook::

    python -m course.check transfer_learning.ipynb

It checks that the file is a readable notebook with the expected name, that every test cell is
still there and unedited, that every answer cell has been filled in, and then runs the notebook
top to bottom with the grader's time limit per cell and reports which visible tests pass. The
grader also runs hidden tests, so passing here is necessary, not sufficient. Your notebook file
is never changed.

Needs only ``nbformat`` and ``nbclient``, which the course package students install brings along.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_NAME = "transfer_learning.ipynb"
DEFAULT_TIMEOUT = 60
#: Written into the released notebook's metadata by the grading pipeline.
CHECK_KEY = "course_check"


@dataclass
class Report:
    """What the check found: problems must be fixed; warnings deserve a look."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    points: float = 0.0
    max_points: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing needs fixing."""
        return not self.problems and not self.failed


def _checksum(cell: dict[str, Any]) -> str:
    """nbgrader's cell checksum (``nbgrader.utils.compute_checksum``), without nbgrader."""
    meta = cell["metadata"]["nbgrader"]
    solution = bool(meta.get("solution", False))
    grade = bool(meta.get("grade", False))
    locked = False if solution else True if grade else bool(meta.get("locked", False))
    m = hashlib.md5()
    m.update(_source(cell).encode("utf-8"))
    m.update(cell["cell_type"].encode("utf-8"))
    m.update(str(grade).encode("utf-8"))
    m.update(str(solution).encode("utf-8"))
    m.update(str(locked).encode("utf-8"))
    m.update(meta["grade_id"].encode("utf-8"))
    if grade:
        m.update(str(float(meta["points"])).encode("utf-8"))
    return m.hexdigest()


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def check_structure(path: Path, expected_name: str | None = None) -> tuple[Report, Any]:
    """Check name, format and cells without running anything; return the report and notebook."""
    import nbformat

    report = Report()
    if not path.is_file():
        report.problems.append(f"{path} does not exist. Pass the path of your .ipynb file.")
        return report, None
    data = path.read_bytes()
    if not data.strip():
        report.problems.append(
            f"{path.name} is empty. In Jupyter, save the notebook (Ctrl+S) and check again."
        )
        return report, None
    try:
        raw = json.loads(data.decode("utf-8"))
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.problems.append(
            f"{path.name} is not a valid notebook file ({exc}). It was probably edited as text "
            "or cut short. Download it again from Jupyter (File > Download)."
        )
        return report, None
    except Exception as exc:  # nbformat's validation errors have several types
        report.problems.append(
            f"{path.name} does not follow the notebook format: {str(exc).splitlines()[0]}"
        )
        return report, None
    manifest = raw.get("metadata", {}).get(CHECK_KEY)
    expected = expected_name or (manifest or {}).get("notebook", DEFAULT_NAME)
    if path.name != expected:
        report.problems.append(
            f"The file is called {path.name!r}; the grader expects {expected!r}. "
            "Rename it before you upload (your LMS may add its own prefix: that is fine)."
        )
    if manifest is None:
        report.problems.append(
            "This notebook has no grading metadata: it was not made from the released exercise "
            "(or its metadata was removed). Download the exercise again and copy your answers "
            "into it cell by cell."
        )
        return report, nb
    cells = {
        c.metadata["nbgrader"]["grade_id"]: c
        for c in nb.cells
        if "grade_id" in c.metadata.get("nbgrader", {})
    }
    for entry in manifest["cells"]:
        gid, kind = entry["grade_id"], entry["kind"]
        report.max_points += entry["points"]
        cell = cells.get(gid)
        if cell is None:
            what = "test" if kind == "test" else kind
            report.problems.append(
                f"The {what} cell {gid!r} was deleted. The grader puts test cells back, but your "
                "notebook then differs from what it grades. Copy the cell back from a fresh "
                "copy of the exercise."
            )
        elif kind in ("test", "locked") and _checksum(cell) != entry["checksum"]:
            report.problems.append(
                f"The {kind} cell {gid!r} was edited. The grader replaces it with the original, "
                "so your change does not count. Undo it (copy the cell from a fresh copy)."
            )
        elif kind in ("answer", "task") and _checksum(cell) == entry["checksum"]:
            report.warnings.append(f"{gid!r} is still the released stub: you have not answered it.")
    return report, nb


def run_notebook(nb: Any, path: Path, timeout: int, report: Report) -> None:
    """Run ``nb`` top to bottom (a copy: the file is not written) and record test results."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
    )
    try:
        client.execute()
    except CellTimeoutError:
        report.problems.append(f"A cell ran longer than {timeout} s: the grader would stop it.")
    except DeadKernelError:
        report.problems.append(
            "The Python kernel died while running the notebook (os._exit, a crash or out of "
            "memory). The grader would give no points after that point."
        )
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        message = f"{errors[0].ename}: {errors[0].evalue}".strip() if errors else ""
        if meta.get("grade") and not meta.get("solution"):
            if errors:
                report.failed[meta["grade_id"]] = message
            else:
                report.passed.append(meta["grade_id"])
                report.points += float(meta.get("points", 0))
        elif errors:
            report.warnings.append(f"Cell {index} raised {message.splitlines()[0][:200]}")


def render(report: Report, name: str, ran: bool) -> str:
    """The report as friendly text."""
    lines = [f"Checking {name}", ""]
    for problem in report.problems:
        lines.append(f"  FIX   {problem}")
    for warning in report.warnings:
        lines.append(f"  NOTE  {warning}")
    if ran:
        for gid in report.passed:
            lines.append(f"  ok    visible tests of {gid!r} pass")
        for gid, message in report.failed.items():
            first = message.splitlines()[0] if message else "failed"
            lines.append(f"  FAIL  {gid!r}: {first[:300]}")
        lines.append("")
        lines.append(
            f"Visible tests: {len(report.passed)} of {len(report.passed) + len(report.failed)} "
            f"cells pass. Hidden tests and the written answer are graded after you submit."
        )
    lines.append("")
    if report.ok:
        lines.append("Ready to submit. Good luck!")
    else:
        lines.append("Not ready yet: fix the lines marked FIX or FAIL above, then check again.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns 0 when the notebook is ready to submit."""
    parser = argparse.ArgumentParser(prog="python -m course.check", description=__doc__)
    parser.add_argument("notebook", type=Path, help="your exercise notebook (.ipynb)")
    parser.add_argument(
        "--name", help=f"expected file name (default: from the notebook, else {DEFAULT_NAME})"
    )
    parser.add_argument("--timeout", type=int, help="seconds per cell (default: the grader's)")
    parser.add_argument("--no-run", action="store_true", help="check structure only; run nothing")
    args = parser.parse_args(argv)
    report, nb = check_structure(args.notebook, args.name)
    ran = False
    if nb is not None and not args.no_run:
        manifest = nb.metadata.get(CHECK_KEY, {})
        timeout = args.timeout or manifest.get("cell_timeout", DEFAULT_TIMEOUT)
        run_notebook(nb, args.notebook, timeout, report)
        ran = True
    print(render(report, args.notebook.name, ran))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
