"""How fast the pipeline grades the real exercise, with 1 and with 2 workers.

    python benchmarks/bench_grading.py [--submissions 4] [--workers 1 2]

Releases ``autograder/exercise/transfer_learning.py`` into a temporary course directory, submits
the reference solutions ``--submissions`` times, and autogrades the batch once per worker
count. Prints seconds per submission (median over the batch, each measured from the start of
its grading process to its result) and the wall-clock time of each batch, and writes the same
figures as JSON under ``benchmarks/results/``. The machine's load average is recorded before and
after: on a shared machine, other people's work slows every figure down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from autograder.coursedir import CourseDir
from autograder.grade import autograde, cpu_count
from autograder.intake import collect
from autograder.limits import Limits, make_sandbox
from autograder.release import fill_from_source, release, setup

TARGET_SECONDS = 30.0
TARGET_SPEEDUP = 1.6


def run(submissions: int, workers: list[int], out_dir: Path) -> dict:
    """Grade the batch once per worker count; return the figures."""
    limits = Limits()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        course = CourseDir(Path(tmp) / "grading")
        setup(course, limits=limits)
        release(course, limits)
        ref = fill_from_source(
            nbformat.read(course.release_notebook, 4), nbformat.read(course.source_notebook, 4)
        )
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        for i in range(submissions):
            nbformat.write(ref, inbox / f"student{i:02d}_1_2_transfer_learning.ipynb")
        collect(course, inbox)
        runs = []
        for n in workers:
            load_before = os.getloadavg()
            start = time.perf_counter()
            results = autograde(course, workers=n, limits=limits, progress=False)
            batch = time.perf_counter() - start
            scores = sorted({(r.score, r.max_score) for r in results})
            runs.append(
                {
                    "workers": n,
                    "batch_seconds": round(batch, 1),
                    "median_seconds_per_submission": round(
                        statistics.median(r.seconds for r in results), 1
                    ),
                    "statuses": sorted({r.status for r in results}),
                    "scores": scores,
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                }
            )
    base = next((r for r in runs if r["workers"] == 1), None)
    for r in runs:
        r["speedup_vs_1_worker"] = (
            round(base["batch_seconds"] / r["batch_seconds"], 2) if base else None
        )
    return {
        "benchmark": "grading",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "gpu": "none (grading runs on the CPU)",
        },
        "exercise": "autograder/exercise/transfer_learning.py (reference solutions)",
        "design": "sandboxed runner (autograder/runner.py) records; the parent scores",
        "submissions": submissions,
        "limits": limits.to_dict(),
        "sandbox": make_sandbox(limits).enforced,
        "targets": {"seconds_per_submission": TARGET_SECONDS, "speedup_2_workers": TARGET_SPEEDUP},
        "runs": runs,
        "note": "The CPUs are shared with other users; see the load averages.",
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    figures = run(args.submissions, args.workers, args.out)
    print(f"{figures['submissions']} submissions, {figures['machine']['cpus']} CPUs (shared)")
    print("workers  batch s  median s/submission  speedup  load avg before -> after")
    for r in figures["runs"]:
        print(
            f"{r['workers']:>7}  {r['batch_seconds']:>7}  {r['median_seconds_per_submission']:>19}"
            f"  {r['speedup_vs_1_worker'] or '-':>7}  {r['load_average_before'][0]} -> "
            f"{r['load_average_after'][0]}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = figures["when"].replace(":", "").replace("-", "")
    path = args.out / f"grading-{stamp}.json"
    path.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
