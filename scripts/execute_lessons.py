"""Execute the lessons and write their paired notebooks, outputs included.

The ``.py`` files in ``course/lessons/`` are the source; the ``.ipynb`` files
beside them are generated here and committed, so the site and students see the
outputs without running anything. Run this after editing a lesson:

    python scripts/execute_lessons.py              # all seven, laptop mode
    python scripts/execute_lessons.py 02 05        # only lessons whose name starts so
    python scripts/execute_lessons.py --test       # laptop mode with the tests' tiny subsets
    python scripts/execute_lessons.py --real       # ImageNet weights, full data (GPU)

Laptop mode (``COURSE_QUICK=1``) runs on the CPU in minutes: pretrained weights
whenever any exist, small real subsets of CIFAR-10, frozen features cached.
``--test`` (``COURSE_TEST=1``) shrinks the subsets further, for CI; its outputs
are for checking, not for committing. Each lesson runs in a fresh kernel with the
lessons folder as its working directory; the script prints the time each one took
and records it in the notebook's metadata (``metadata["course"]["execution"]``:
seconds, machine, torch version, and the weights and data the lesson says it used).
The machine line also gives the load average at the start and the end (other programs
slow a shared machine down) and how many feature caches the lesson built, since a lesson
whose caches an earlier run left behind reads them back in a fraction of the time
(``COURSE_CACHE_DIR=$(mktemp -d)`` times a first run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from course.machine import hardware_label
from course.notebooks import stderr_outputs

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "course" / "lessons"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
#: The environment variable that shrinks the laptop-mode subsets to the tests' size.
TEST_ENV = "COURSE_TEST"
#: Printed by the probe cell (run after the lesson, then removed) before its JSON line.
PROBE_MARK = "COURSE-EXECUTION-PROBE "
# A lesson says what it used in two globals: WEIGHTS_LABEL and DATA (see the lessons).
PROBE_CELL = f"""
import json as _json
import torch as _torch
from course.machine import hardware_label as _hardware_label
print({PROBE_MARK!r} + _json.dumps({{
    "weights": str(globals().get("WEIGHTS_LABEL", "none")),
    "data": str(globals().get("DATA", "none")),
    "torch": _torch.__version__,
    "threads": _torch.get_num_threads(),
    "machine": _hardware_label(),
}}))
"""


@dataclass
class Executed:
    """One executed lesson: the notebook with outputs, and how long it ran."""

    source: Path
    notebook: nbformat.NotebookNode
    seconds: float
    execution: dict


def lesson_sources(folder: Path = LESSONS) -> list[Path]:
    """The lesson sources (``NN_name.py``) in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))


def execute_lesson(
    source: Path,
    *,
    quick: bool = True,
    test: bool = False,
    cell_timeout: int = 600,
    env: dict[str, str] | None = None,
) -> Executed:
    """Run one lesson top to bottom in a fresh kernel and return the notebook with outputs.

    Args:
        source: the lesson's py:percent file; it runs in its own folder.
        quick: set ``COURSE_QUICK=1`` (laptop mode: CPU, small real subsets) or ``0``.
        test: also set ``COURSE_TEST=1``: the smallest subsets, for the tests.
        cell_timeout: seconds any one cell may take before the run fails.
        env: extra environment variables for the kernel.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message shows the cell.
    """
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    kernel_env = {
        **os.environ,
        "COURSE_QUICK": "1" if quick else "0",
        TEST_ENV: "1" if test else "0",
        **(env or {}),
    }
    if quick:
        # Laptop mode promises the CPU, and never to download anything.
        kernel_env.setdefault("COURSE_OFFLINE", "1")
        kernel_env["CUDA_VISIBLE_DEVICES"] = ""
    # OpenMP threads that spin while waiting steal the cores of a busy machine: on 2 shared
    # cores under load 7, a MobileNetV2 forward pass ran 6x slower with spinning than without.
    kernel_env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # One extra cell asks the kernel what the lesson used; it is removed before writing.
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE_CELL))
    client = NotebookClient(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
        record_timing=False,  # timestamps would make every refresh a diff
    )
    caches_before = _feature_caches(kernel_env)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.perf_counter()
    client.execute(env=kernel_env)
    seconds = time.perf_counter() - start
    probe = notebook.cells.pop()
    built = len(_feature_caches(kernel_env) - caches_before)
    return Executed(
        source, notebook, seconds, _execution_record(probe, seconds, load_before, built)
    )


def _feature_caches(env: dict[str, str]) -> set[str]:
    """The feature-cache folders in the cache the kernel uses (``course.paths.cache_dir``)."""
    root = Path(env["COURSE_CACHE_DIR"]) if env.get("COURSE_CACHE_DIR") else None
    root = (root or Path.home() / ".cache" / "transfer-course") / "features"
    return {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()


def _execution_record(
    probe: nbformat.NotebookNode,
    seconds: float,
    load_before: float = float("nan"),
    caches_built: int | None = None,
) -> dict:
    """What the site shows as "time to run": seconds, machine, torch, weights and data."""
    said: dict = {}
    for output in probe.get("outputs", []):
        for line in "".join(output.get("text", "")).splitlines():
            if line.startswith(PROBE_MARK):
                said = json.loads(line[len(PROBE_MARK) :])
    # Timings on a shared machine depend on what else runs: the load average goes with them.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = said.get("machine") or hardware_label()
    caches = "" if caches_built is None else f", {caches_built} feature cache(s) built"
    return {
        "seconds": round(seconds, 1),
        "machine": f"{machine}, torch using {said.get('threads', '?')} threads, "
        f"load average {load_before:.1f} at the start and {load:.1f} at the end{caches}",
        "torch": str(said.get("torch", "unknown")),
        "weights": str(said.get("weights", "unknown")),
        "data": str(said.get("data", "unknown")),
    }


def portable_paths(text: str) -> str:
    """Write this machine's folders as a reader's would read them.

    The lessons print where their data and weights came from; the published notebooks should
    say "the project data folder/..." (as ``course.paths.display_path`` does) and
    ``~/.cache/...``, not the build machine's absolute paths.
    """
    shared = ROOT.parent / "shared"
    for folder, shown in (
        ((shared / "data").resolve(), "the project data folder"),
        (shared / "data", "the project data folder"),
        (shared.resolve(), "the shared folder"),
        (shared, "the shared folder"),
        (ROOT, "."),
        (Path.home(), "~"),
    ):
        text = text.replace(f"{folder}/", f"{shown}/")
    return text.replace("../shared/data/", "the project data folder/")


def tidy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Stable cell ids, one block per stream, and no build-machine paths in text outputs."""
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number:03d}"
        if cell.cell_type == "code":
            cell.outputs = _coalesce_streams(cell.outputs)
            for output in cell.outputs:
                if "text" in output:
                    output["text"] = portable_paths("".join(output["text"]))
                if "text/plain" in output.get("data", {}):
                    output["data"]["text/plain"] = portable_paths(
                        "".join(output["data"]["text/plain"])
                    )
    # jupytext.toml holds the pairing; a format note inside the .ipynb would only repeat it.
    notebook.metadata.pop("jupytext", None)
    notebook.metadata.pop("widgets", None)
    return notebook


def write_notebook(executed: Executed) -> Path:
    """Write the executed notebook beside its source, as the pair's ``.ipynb``.

    The run's record goes into ``metadata["course"]["execution"]``.
    """
    target = executed.source.with_suffix(".ipynb")
    notebook = tidy(executed.notebook)
    notebook.metadata.setdefault("course", {})["execution"] = dict(executed.execution)
    nbformat.write(notebook, target)
    return target


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


def main(argv: list[str] | None = None) -> int:
    """Execute the chosen lessons, write their notebooks, print the time of each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="name prefixes, e.g. 01 or 05_training")
    parser.add_argument("--real", action="store_true", help="ImageNet weights and full data")
    parser.add_argument(
        "--test", action="store_true", help="laptop mode with the tests' smallest subsets"
    )
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
        executed = execute_lesson(
            source, quick=not args.real, test=args.test, cell_timeout=args.timeout
        )
        target = write_notebook(executed)
        total += executed.seconds
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{executed.seconds:7.1f} s  {target.relative_to(ROOT)}  (load average {load})")
        print(f"           weights: {executed.execution['weights']}")
        print(f"           data: {executed.execution['data']}")
        for text in stderr_outputs(executed.notebook):
            print(f"           wrote to stderr: {text.strip()[:200]}")
    mode = "real" if args.real else ("laptop, test subsets" if args.test else "laptop")
    print(f"{total:7.1f} s  total ({mode} mode) on {hardware_label()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
