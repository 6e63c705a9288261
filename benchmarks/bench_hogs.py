"""Beside each hog, a correct classmate: its grading time in a 2-worker batch against alone.

    python benchmarks/bench_hogs.py [--hogs busy tmpfs memory forkbomb disk]

Issue 17.2 asks that no student slow down or crash another: beside each hog of the held-out
list, a correct classmate in the same ``--workers 2`` batch scores full marks in at most
twice its time alone. The tests (``tests/test_hogs.py``) check the outcome on a tiny course
with small caps; this measures the time, on the real exercise with the default limits and
hogs of the sizes the issue found (64 busy processes, 2.9 GiB into ``/tmp``, two children
of 4.5 GB, 2,000 forks, 1.94 GiB written to the scratch folder).

Each hog is the reference answer with the hog's code run first in task 1's answer cell. The
classmate is graded alone (1 worker), beside a correct classmate (2 workers: the baseline,
since each of two workers gets half the cores), and beside each hog. Prints a table, writes
JSON under ``benchmarks/results/``. Needs bubblewrap and a writable cgroup (root here). The
target ratio is printed, never asserted: the CPUs may be shared (see the load averages).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from bench_grading import grading_machine, released_course, write_figures  # beside this file

from autograder import cgroups
from autograder.coursedir import CourseDir
from autograder.grade import autograde
from autograder.intake import collect
from autograder.limits import Limits, make_sandbox
from autograder.sandbox import sandbox_available

#: The issue's bound: the classmate's time beside a hog over its time alone.
TARGET_RATIO = 2.0

#: The held-out list's hogs at the sizes the issue measured (the defaults bound each).
HOGS = {
    "busy": (  # 64 busy processes, each in its own session
        "import subprocess, sys, time\n"
        "_hogs = [subprocess.Popen([sys.executable, '-c', 'while True: pass'],\n"
        "         start_new_session=True) for _ in range(64)]\n"
        "time.sleep(20)\n"
    ),
    "tmpfs": (  # 2.9 GiB into the private /tmp
        "_block = b'x' * (64 << 20)\n"
        "try:\n"
        "    with open('/tmp/hog', 'wb') as _f:\n"
        "        for _ in range(46):\n"
        "            _f.write(_block)\n"
        "except OSError as _error:\n"
        "    print('tmp stopped:', _error)\n"
    ),
    "memory": (  # two children touching 4.5 GB each
        "import subprocess, sys\n"
        "_code = 'b = bytearray(4500 * 10**6); import time; time.sleep(5)'\n"
        "_kids = [subprocess.Popen([sys.executable, '-c', _code]) for _ in range(2)]\n"
        "print([k.wait() for k in _kids])\n"
    ),
    "forkbomb": (  # 2,000 forked processes
        "import os, time\n"
        "_made = 0\n"
        "try:\n"
        "    for _ in range(2000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        _made += 1\n"
        "except OSError as _error:\n"
        "    print('fork stopped after', _made, _error)\n"
    ),
    "disk": (  # 1.94 GiB written to the scratch folder
        "_block = b'x' * (64 << 20)\n"
        "for _i in range(31):\n"
        "    with open(f'hog{_i}.bin', 'wb') as _f:\n"
        "        _f.write(_block)\n"
    ),
}


def _batch(tmp: Path, name: str, limits: Limits, hog: str | None, pair: bool) -> CourseDir:
    """A released course holding the classmate and, if ``pair``, a second submission."""
    course, good = released_course(tmp / name, limits)
    inbox = tmp / name / "inbox"
    inbox.mkdir(parents=True)
    nbformat.write(good, inbox / "classmate_1_2_transfer_learning.ipynb")
    if pair:
        other = nbformat.reads(nbformat.writes(good), as_version=4)
        if hog is not None:
            answer = next(
                c
                for c in other.cells
                if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
            )
            answer.source = HOGS[hog] + answer.source
        nbformat.write(other, inbox / "other_3_4_transfer_learning.ipynb")
    collect(course, inbox)
    return course


def _grade(course: CourseDir, workers: int, limits: Limits) -> dict:
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = {
        r.student: r for r in autograde(course, workers=workers, limits=limits, progress=False)
    }
    batch = time.perf_counter() - started
    good = results["classmate"]
    row = {
        "classmate_seconds": good.seconds,
        "classmate_score": [good.score, good.max_score],
        "classmate_full_marks": good.status == "graded"
        and good.score == good.max_score - good.manual_pending,
        "batch_seconds": round(batch, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    if "other" in results:
        other = results["other"]
        row["other"] = {"status": other.status, "reasons": other.reasons, "seconds": other.seconds}
    return row


def measure(hogs: list[str]) -> dict:
    """The classmate alone, beside a correct classmate, and beside each hog."""
    limits = Limits(sandbox="required")
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hogs-") as tmp:
        base = Path(tmp)
        # Once to warm the file caches and the scoring server's imports: not reported.
        _grade(_batch(base, "warm-up", limits, None, pair=False), 1, limits)
        rows["alone (1 worker)"] = _grade(
            _batch(base, "alone", limits, None, pair=False), 1, limits
        )
        rows["beside a correct classmate"] = _grade(
            _batch(base, "pair", limits, None, pair=True), 2, limits
        )
        for hog in hogs:
            rows[f"beside {hog}"] = _grade(_batch(base, hog, limits, hog, pair=True), 2, limits)
    alone = rows["alone (1 worker)"]["classmate_seconds"]
    for row in rows.values():
        row["ratio_to_alone"] = round(row["classmate_seconds"] / alone, 2)
    return {
        "benchmark": "grading-hogs",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": grading_machine(),
        "exercise": "autograder/exercise/transfer_learning.py (reference solutions)",
        "limits": limits.to_dict(),
        "sandbox": make_sandbox(limits).enforced,
        "target_ratio_to_alone": TARGET_RATIO,
        "hogs": {name: HOGS[name] for name in hogs},
        "rows": rows,
        "note": "One batch per row, in this order; the CPUs may be shared with other work "
        "(see the load averages).",
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", nargs="+", choices=sorted(HOGS), default=list(HOGS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    available, why = sandbox_available()
    version, no_cgroup = cgroups.probe()
    if not available or not version:
        print(f"cannot measure: {why if not available else no_cgroup}", file=sys.stderr)
        return 2
    figures = measure(args.hogs)
    print(
        f"classmate graded with the defaults, cgroup v{version}, {figures['machine']['cpus']} CPUs"
    )
    print(f"{'':<28} {'classmate s':>11} {'ratio':>6} {'full marks':>10}  the other submission")
    for name, row in figures["rows"].items():
        other = row.get("other")
        told = f"{other['status']}: {'; '.join(other['reasons'])[:70]}" if other else "-"
        print(
            f"{name:<28} {row['classmate_seconds']:>11.1f} {row['ratio_to_alone']:>6} "
            f"{'yes' if row['classmate_full_marks'] else 'NO':>10}  {told}"
        )
    print(f"target: ratio at most {TARGET_RATIO} beside each hog (printed, not asserted)")
    write_figures(figures, args.out, "grading-hogs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
