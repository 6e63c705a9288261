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
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course.notebooks import CHECK_KEY, cell_changes, cell_errors, readability_problem

DEFAULT_NAME = "transfer_learning.ipynb"
DEFAULT_TIMEOUT = 60


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


def check_structure(path: Path, expected_name: str | None = None) -> tuple[Report, Any]:
    """Check name, format and cells without running anything; return the report and notebook."""
    import nbformat

    report = Report()
    if not path.is_file():
        report.problems.append(f"{path} does not exist. Pass the path of your .ipynb file.")
        return report, None
    data = path.read_bytes()
    problem = readability_problem(data)
    if problem:
        report.problems.append(f"{path.name}: {problem}.")
        return report, None
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    manifest = nb.metadata.get(CHECK_KEY)
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
    report.max_points = sum(float(c.get("points", 0) or 0) for c in manifest.get("cells", []))
    for change in cell_changes(manifest, nb):
        gid, kind = change.grade_id, change.kind
        if change.change == "deleted" and kind in ("answer", "task"):
            report.problems.append(
                f"The answer cell {gid!r} was deleted: the grader scores that task as "
                "unanswered. Copy the cell back from a fresh copy of the exercise."
            )
        elif change.change == "deleted":
            report.problems.append(
                f"The {kind} cell {gid!r} was deleted. The grader puts it back, but your "
                "notebook then differs from what it grades. Copy the cell back from a fresh "
                "copy of the exercise."
            )
        elif change.change == "edited":
            report.problems.append(
                f"The {kind} cell {gid!r} was edited. The grader replaces it with the original, "
                "so your change does not count. Undo it (copy the cell from a fresh copy)."
            )
        else:
            report.warnings.append(f"{gid!r} is still the released stub: you have not answered it.")
    return report, nb


def quiet_kernel_manager(kernel_name: str) -> tuple[Any, list[str]]:
    """A kernel manager, and kernel arguments, that print no transport warning.

    Over TCP, ipykernel warns that it runs "without encryption". On Linux and macOS the
    kernel talks over local ``ipc`` sockets instead (in a private temporary folder, never
    the student's, removed at exit), which is also the safer transport. Windows has no
    ``ipc`` sockets, so there the kernel logs errors only.
    """
    import atexit
    import os
    import shutil
    import tempfile

    from jupyter_client.manager import KernelManager

    if os.name != "posix":
        return KernelManager(kernel_name=kernel_name), ["--IPKernelApp.log_level=ERROR"]
    folder = tempfile.mkdtemp(prefix="course-check-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    manager = KernelManager(
        kernel_name=kernel_name, transport="ipc", ip=os.path.join(folder, "kernel")
    )
    return manager, []


def run_notebook(nb: Any, path: Path, timeout: int, report: Report) -> None:
    """Run ``nb`` top to bottom (a copy: the file is not written) and record test results."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    kernel_name = nb.metadata.get("kernelspec", {}).get("name", "python3")
    manager, kernel_arguments = quiet_kernel_manager(kernel_name)
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        kernel_name=kernel_name,
        km=manager,
        extra_arguments=kernel_arguments,
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
    errors = {error.index: error for error in cell_errors(nb)}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        error = errors.get(index)
        if meta.get("grade") and not meta.get("solution"):
            # Like the grader, only errors count: warnings and progress bars on stderr do not.
            if error:
                report.failed[meta["grade_id"]] = f"{error.ename}: {error.evalue}".strip()
            else:
                report.passed.append(meta["grade_id"])
                report.points += float(meta.get("points", 0))
        elif error:
            report.warnings.append(f"Cell {index} raised {error.line}")


#: The most characters of one failure message shown (a hint follows the first line, so
#: the whole message is shown up to this limit, then cut with a note).
FAILURE_LIMIT = 2000


def failure_lines(grade_id: str, message: str) -> list[str]:
    """A failed test cell's whole message, every line indented under its ``FAIL`` line.

    The hint that a check adds after the first line (e.g. "Use the method instead: ...")
    is what tells a student the fix, so no line is dropped; only a very long message is
    cut, after :data:`FAILURE_LIMIT` characters, and says so.
    """
    text = (message or "failed").strip()
    if len(text) > FAILURE_LIMIT:
        text = text[:FAILURE_LIMIT].rstrip() + " ... (cut: run the notebook to see the rest)"
    first, *rest = text.splitlines() or ["failed"]
    return [f"  FAIL  {grade_id!r}: {first}"] + [f"          {line}" for line in rest]


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
            lines += failure_lines(gid, message)
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
