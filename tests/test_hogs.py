"""One student cannot slow down or crash another (issue 17.2), through the real grading.

Each hog is graded in a ``--workers 2`` batch beside a correct classmate. The classmate must
score full marks, and the hog's reasons name the bound it hit. Times are printed, not
asserted (the machine may be shared): ``benchmarks/bench_hogs.py`` measures the classmate's
time beside each hog against its time alone, on the real exercise with the default limits.
The caps are small so the tests stay short: 1 GiB of memory, 128 processes, a 256 MiB /tmp
and 200 MiB of scratch (the defaults are 8 GiB, 256, 1 GiB and 1 GiB).

These need bubblewrap and a writable cgroup (root here); they skip otherwise, saying why.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

from autograder import cgroups
from autograder.grade import autograde
from autograder.intake import collect
from autograder.limits import Limits
from autograder.sandbox import sandbox_available

pytestmark = pytest.mark.slow

AVAILABLE, WHY = sandbox_available()
VERSION, NO_CGROUP = cgroups.probe()
if not AVAILABLE:
    pytestmark = [pytestmark, pytest.mark.skip(reason=f"no sandbox here: {WHY}")]
elif not VERSION:
    pytestmark = [pytestmark, pytest.mark.skip(reason=f"no writable cgroup: {NO_CGROUP}")]

LIMITS = Limits(
    sandbox="required",
    cell_timeout=40,
    submission_timeout=240,
    memory_mb=1024,
    max_processes=128,
    tmp_mb=256,
    disk_mb=200,
)

#: Hog code run in the answer cell before the right answer (each bounded: it ends by itself).
HOGS = {
    "busy": (
        "import subprocess, sys, time\n"
        "HOGS = [subprocess.Popen([sys.executable, '-c', 'while True: pass'],\n"
        "        start_new_session=True) for _ in range(64)]\n"
        "time.sleep(20)\n"
    ),
    "tmpfs": (
        "block = b'x' * (64 << 20)\n"
        "with open('/tmp/hog', 'wb') as f:\n"
        "    for _ in range(48):  # 3 GiB: stops at the size of /tmp, with an error\n"
        "        f.write(block)\n"
    ),
    "memory": (
        "import subprocess, sys\n"
        "code = 'b = bytearray(700 << 20); import time; time.sleep(8)'\n"
        "kids = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(2)]\n"
        "print([k.wait() for k in kids])\n"
    ),
    "forkbomb": (
        "import os, time\n"
        "made = 0\n"
        "try:\n"
        "    for _ in range(2000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        made += 1\n"
        "except OSError as error:\n"
        "    print('fork stopped after', made, error)\n"
    ),
    "disk": (
        "import time\n"
        "block = b'x' * (64 << 20)\n"
        "for i in range(32):  # 2 GiB, in files under the per-file cap\n"
        "    with open(f'hog{i}.bin', 'wb') as f:\n"
        "        f.write(block)\n"
        "    time.sleep(0.1)\n"
    ),
}
#: What each hog's result must say (status, words in its reasons).
EXPECTED = {
    # Its own 64 processes share its CPU quota with its kernel: it may starve itself (crashed).
    "busy": (("graded", "crashed"), None),
    "tmpfs": (("graded",), "No space left on device"),
    # The OOM killer picks the largest process: a child (graded) or, rarely, the kernel.
    "memory": (("graded", "crashed"), "memory cap of 1024 MiB"),
    "forkbomb": (("graded",), "more than 128 processes"),
    "disk": (("crashed",), "more than 200 MiB into its folder"),
}


def _course(tmp_path: Path, hog: str | None):
    from test_pipeline import make_tiny_course, reference

    course = make_tiny_course(tmp_path)
    good = reference(course)
    inbox = tmp_path / "inbox"
    (inbox / "good").mkdir(parents=True)
    nbformat.write(good, inbox / "good" / "tiny.ipynb")
    if hog is not None:
        bad = reference(course)
        for cell in bad.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "square-answer":
                cell.source = HOGS[hog] + cell.source
        (inbox / "hog").mkdir()
        nbformat.write(bad, inbox / "hog" / "tiny.ipynb")
    collect(course, inbox)
    return course


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> float:
    """The classmate's grading time alone (one worker)."""
    course = _course(tmp_path_factory.mktemp("alone"), None)
    (result,) = autograde(course, workers=1, limits=LIMITS, progress=False)
    assert (
        result.status == "graded" and result.score == result.max_score - result.manual_pending > 0
    ), result
    return result.seconds


@pytest.mark.parametrize("hog", sorted(HOGS))
def test_a_hog_does_not_harm_its_classmate(hog: str, alone: float, tmp_path: Path) -> None:
    course = _course(tmp_path, hog)
    started = time.monotonic()
    results = {r.student: r for r in autograde(course, workers=2, limits=LIMITS, progress=False)}
    good, bad = results["good"], results["hog"]
    print(
        f"\n{hog}: classmate {good.seconds:.1f} s beside it, {alone:.1f} s alone; hog "
        f"{bad.status} in {bad.seconds:.1f} s; batch {time.monotonic() - started:.1f} s"
    )
    assert good.status == "graded" and good.score == good.max_score - good.manual_pending > 0, good
    statuses, words = EXPECTED[hog]
    assert bad.status in statuses, bad
    if words:
        assert words in " ".join(bad.reasons) + " ".join(bad.failed_tests.values()), bad.reasons
    left = [p for p in cgroups.ROOT.glob(f"*/**/autograder-{os.getpid()}-*") if p.is_dir()]
    assert not left, left  # every group removed, its processes killed
