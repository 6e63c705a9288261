"""Run a prepared notebook in the sandbox and read back what it left (untrusted data).

The sandbox (:mod:`autograder.sandbox`, bubblewrap) sees the Python environment read-only,
the submission's scratch folder read-write, and nothing else of the course: no gradebook, no
other submission, no ``solutions`` or ``autograder`` package (hidden by an empty folder), its
own ``/tmp`` and Jupyter runtime folder, no network. Inside it runs :mod:`autograder.runner`,
copied into the scratch folder as a plain script. Where bubblewrap cannot run, grading goes on
without the filesystem sandbox (``--sandbox auto``, every result says "NOT sandboxed") or is
refused (``--sandbox required``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode

from autograder.coursedir import KERNEL_ENV
from autograder.limits import Limits, Sandbox, make_sandbox
from course.paths import cache_dir, shared_data_dir

RUNNER = Path(__file__).with_name("runner.py")
#: Largest executed notebook read back (outputs are capped per cell inside already).
MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024
MAX_STATUS_BYTES = 64 * 1024
#: Names inside the scratch folder.
PREPARED, EXECUTED, STATUS, JOB, RECORDS = (
    "prepared.ipynb",
    "executed.ipynb",
    "status.json",
    "job.json",
    "records",
)


def hidden_packages() -> list[Path]:
    """The instructor's packages: present in the Python environment, hidden in the sandbox."""
    import autograder
    import solutions

    return [Path(autograder.__file__).resolve().parent, Path(solutions.__file__).resolve().parent]


def isolation(limits: Limits) -> Sandbox:
    """How submissions are started under ``limits`` (:func:`autograder.limits.make_sandbox`).

    Raises:
        RuntimeError: ``--sandbox required`` but bubblewrap cannot run here.
    """
    return make_sandbox(limits)


@dataclass
class RunOutcome:
    """What came back from one sandboxed run (all of it written by untrusted code)."""

    state: str  # ok | dead | unresponsive | error | timeout | lost
    executed: NotebookNode | None
    timed_out: list[int] = field(default_factory=list)
    cut: list[int] = field(default_factory=list)
    exit_code: int | None = None
    detail: str = ""


def run_notebook(
    scratch: Path,
    prepared: NotebookNode,
    *,
    limits: Limits,
    box: Sandbox,
    seed: int,
    threads: int,
    course_root: Path | None = None,
) -> RunOutcome:
    """Execute ``prepared`` in ``scratch`` under ``box``; return what the run left behind.

    ``course_root`` is masked too, in case a bound tree (a project folder) holds it.
    """
    scratch = scratch.resolve()
    nbformat.write(prepared, scratch / PREPARED)
    shutil.copyfile(RUNNER, scratch / "runner.py")
    (scratch / RECORDS).mkdir()
    job = {
        "notebook": PREPARED,
        "executed": EXECUTED,
        "status": STATUS,
        "cell_timeout": limits.cell_timeout,
        "max_output_chars": limits.max_output_chars,
    }
    (scratch / JOB).write_text(json.dumps(job), encoding="utf-8")
    env = {
        **KERNEL_ENV,
        "COURSE_RECORD_DIR": str(scratch / RECORDS),
        "COURSE_RECORD_SEED": str(seed),
        "MPLCONFIGDIR": "/tmp",
        "LANG": "C.UTF-8",
    }
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    argv = [sys.executable, "-I", str(scratch / "runner.py"), str(scratch / JOB)]
    runtime = None
    if not box.filesystem:
        # Unix socket paths are limited to ~100 bytes: keep the kernel's runtime dir short.
        runtime = tempfile.mkdtemp(prefix="ag-")
        env = {**os.environ, **env, "JUPYTER_RUNTIME_DIR": runtime, "TMPDIR": runtime}
    command = box.wrap(
        argv,
        writable=[scratch],
        readonly=[p for p in (shared_data_dir(), cache_dir()) if p is not None and p.exists()],
        hide=[*hidden_packages(), *([course_root.resolve()] if course_root else [])],
        env=env,
    )
    popen_env = {**env, "PATH": os.environ.get("PATH", "")} if box.filesystem else env
    preexec = box.preexec
    outcome = RunOutcome(state="lost", executed=None)
    try:
        with open(scratch / "runner.log", "wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=scratch,
                env=popen_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=preexec,
            )
            try:
                outcome.exit_code = proc.wait(timeout=limits.submission_timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                outcome.state = "timeout"
                return outcome
    finally:
        if runtime:
            shutil.rmtree(runtime, ignore_errors=True)
    status = read_json(scratch / STATUS, MAX_STATUS_BYTES)
    if isinstance(status, dict):
        outcome.state = str(status.get("state", "lost"))[:20]
        outcome.timed_out = int_list(status.get("timed_out"))
        outcome.cut = int_list(status.get("cut"))
        outcome.detail = str(status.get("error", ""))[:300]
        if "cell" in status and isinstance(status["cell"], int):
            outcome.detail = f"cell {status['cell']}"
    outcome.executed = read_notebook(scratch / EXECUTED)
    return outcome


def kill_group(proc: subprocess.Popen) -> None:
    """Kill the runner and everything it started (it leads its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def read_json(path: Path, limit: int) -> Any:
    """A small JSON file written by untrusted code, or None."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > limit:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def int_list(value: Any) -> list[int]:
    """At most 1000 ints from an untrusted list."""
    if not isinstance(value, list):
        return []
    return [v for v in value[:1000] if isinstance(v, int)]


def read_notebook(path: Path) -> NotebookNode | None:
    """The executed notebook, if it exists, is small enough and parses."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except Exception:  # anything unreadable is simply absent
        return None
