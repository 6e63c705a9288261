"""Execute the lessons and write their paired notebooks, outputs included.

The ``.py`` files in ``course/lessons/`` are the source; the ``.ipynb`` files
beside them are generated here and committed, so the site and students see the
outputs without running anything. Run this after editing a lesson:

    python scripts/execute_lessons.py              # all six, quick mode
    python scripts/execute_lessons.py 02 05        # only lessons whose name starts so
    python scripts/execute_lessons.py --real       # ImageNet weights, full data (GPU)

Quick mode (``COURSE_QUICK=1``) uses random weights and a small data subset,
and is what CI runs. Each lesson runs in a fresh kernel with the lessons folder
as its working directory; the script prints the time each one took.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from course.notebooks import stderr_outputs

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "course" / "lessons"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@dataclass
class Executed:
    """One executed lesson: the notebook with outputs, and how long it ran."""

    source: Path
    notebook: nbformat.NotebookNode
    seconds: float


def lesson_sources(folder: Path = LESSONS) -> list[Path]:
    """The lesson sources (``NN_name.py``) in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))


def execute_lesson(
    source: Path, *, quick: bool = True, cell_timeout: int = 600, env: dict[str, str] | None = None
) -> Executed:
    """Run one lesson top to bottom in a fresh kernel and return the notebook with outputs.

    Args:
        source: the lesson's py:percent file; it runs in its own folder.
        quick: set ``COURSE_QUICK=1`` (random weights, small data, CPU) or ``0``.
        cell_timeout: seconds any one cell may take before the run fails.
        env: extra environment variables for the kernel.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message shows the cell.
    """
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    kernel_env = {**os.environ, "COURSE_QUICK": "1" if quick else "0", **(env or {})}
    if quick:
        # Quick mode promises the CPU, and never to download anything.
        kernel_env.setdefault("COURSE_OFFLINE", "1")
        kernel_env["CUDA_VISIBLE_DEVICES"] = ""
    client = NotebookClient(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
        record_timing=False,  # timestamps would make every refresh a diff
    )
    start = time.perf_counter()
    client.execute(env=kernel_env)
    return Executed(source, notebook, time.perf_counter() - start)


def tidy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Stable cell ids (a refresh should not rewrite every cell) and one block per stream."""
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number:03d}"
        if cell.cell_type == "code":
            cell.outputs = _coalesce_streams(cell.outputs)
    # jupytext.toml holds the pairing; a format note inside the .ipynb would only repeat it.
    notebook.metadata.pop("jupytext", None)
    notebook.metadata.pop("widgets", None)
    return notebook


def _coalesce_streams(outputs: list) -> list:
    """Merge consecutive prints to the same stream: a page then shows one text block, not many."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.get("output_type") == "stream"
            and previous is not None
            and previous.get("output_type") == "stream"
            and previous.get("name") == output.get("name")
        ):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    return merged


def write_notebook(executed: Executed) -> Path:
    """Write the executed notebook beside its source, as the pair's ``.ipynb``."""
    target = executed.source.with_suffix(".ipynb")
    nbformat.write(tidy(executed.notebook), target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Execute the chosen lessons, write their notebooks, print the time of each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="name prefixes, e.g. 01 or 05_training")
    parser.add_argument("--real", action="store_true", help="ImageNet weights and full data")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    args = parser.parse_args(argv)

    sources = [
        s
        for s in lesson_sources()
        if not args.lessons or any(s.stem.startswith(prefix) for prefix in args.lessons)
    ]
    if not sources:
        print(f"No lesson in {LESSONS} matches {args.lessons}.", file=sys.stderr)
        return 2
    total = 0.0
    for source in sources:
        executed = execute_lesson(source, quick=not args.real, cell_timeout=args.timeout)
        target = write_notebook(executed)
        total += executed.seconds
        print(f"{executed.seconds:7.1f} s  {target.relative_to(ROOT)}")
        for text in stderr_outputs(executed.notebook):
            print(f"           wrote to stderr: {text.strip()[:200]}")
    print(f"{total:7.1f} s  total ({'real' if args.real else 'quick'} mode)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
