"""The GPU check's CUDA-tests stage, and the pytest plugin that keeps only CUDA tests.

The plugin's hooks are re-exported by ``gpu_check`` (loaded with ``-p gpu_check``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from gpu_check_core import ROOT, BudgetExhausted, Check


def stage_cuda_tests(check: Check) -> dict[str, Any]:
    """Run every CUDA test (marked ``cuda``, or skipped without CUDA) in a pytest subprocess."""
    check.fits("cuda_tests")
    files = cuda_test_files()
    xml = check.work / "cuda-tests.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "benchmarks"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-p",
        "gpu_check",
        "-p",
        "no:cacheprovider",
        f"--junitxml={xml}",
        *[str(f.relative_to(ROOT)) for f in files],
    ]
    start = time.perf_counter()
    timeout = max(10.0, check.remaining() - 2)
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as err:
        raise BudgetExhausted(f"the CUDA tests ran past {timeout:.0f} s") from err
    seconds = time.perf_counter() - start
    print(done.stdout[-3000:], done.stderr[-2000:], sep="\n", flush=True)
    counts = junit_counts(xml) if xml.is_file() else {}
    node_ids = [case for case in counts.pop("cases", [])]
    measured = {"seconds": seconds, **{k: v for k, v in counts.items() if k != "cases"}}
    failed = done.returncode not in (0, 5) or counts.get("failed", 0) or counts.get("errors", 0)
    result: dict[str, Any] = {
        "measured": measured,
        "info": {
            "command": " ".join(command[1:]),
            "files": [str(f.relative_to(ROOT)) for f in files],
            "tests": node_ids,
            "returncode": done.returncode,
        },
    }
    if failed:
        result["status"] = "failed"
        result["error"] = f"pytest exited {done.returncode}: {done.stdout[-1500:]}"
    return result


def cuda_test_files() -> list[Path]:
    """Test files that can hold a CUDA test: those that mention CUDA at all (cheap to collect)."""
    return sorted(
        path
        for path in (ROOT / "tests").glob("test_*.py")
        if re.search(r"torch\.cuda|mark\.cuda", path.read_text(encoding="utf-8"))
    )


def junit_counts(xml: Path) -> dict[str, Any]:
    """Passed, failed, errors and skipped from a JUnit XML file, and each test's id."""
    root = ElementTree.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    totals = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        totals["tests"] += int(suite.get("tests", 0))
        totals["failed"] += int(suite.get("failures", 0))
        totals["errors"] += int(suite.get("errors", 0))
        totals["skipped"] += int(suite.get("skipped", 0))
    totals["passed"] = totals["tests"] - totals["failed"] - totals["errors"] - totals["skipped"]
    cases = [f"{c.get('classname')}::{c.get('name')}" for c in root.iter("testcase")]
    return {**totals, "cases": cases}


# pytest plugin (``-p gpu_check``): keep the CUDA tests only.
CUDA_REASON = re.compile(r"\b(cuda|gpu)\b", re.IGNORECASE)


def needs_cuda(item: Any) -> bool:
    """True for a test marked ``cuda``, or one with a ``skipif`` whose reason names CUDA/GPU."""
    if item.get_closest_marker("cuda") is not None:
        return True
    return any(
        CUDA_REASON.search(str(mark.kwargs.get("reason", "")))
        for mark in item.iter_markers("skipif")
    )


def pytest_configure(config: Any) -> None:
    """Register the ``cuda`` marker (the plugin is loaded only by this script)."""
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (benchmarks/gpu_check.py)")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Deselect every test that does not need CUDA."""
    keep = [item for item in items if needs_cuda(item)]
    dropped = [item for item in items if not needs_cuda(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
