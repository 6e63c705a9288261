"""Run a prepared notebook in the sandbox and read back what it left (untrusted data).

The sandbox (:mod:`autograder.sandbox`, bubblewrap) sees the Python environment read-only,
the submission's scratch folder read-write, and nothing else of the course: no gradebook, no
other submission, no ``solutions`` or ``autograder`` package (hidden by an empty folder), its
own ``/tmp`` and Jupyter runtime folder, no network. Inside it runs :mod:`autograder.runner`,
copied into the scratch folder as a plain script. Where bubblewrap cannot run, grading goes on
without the filesystem sandbox only when ``--sandbox off`` is asked for (every result says
"NOT sandboxed"); otherwise it is refused (``--sandbox required``, the default).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode

from autograder import cgroups
from autograder import sandbox as fs_sandbox
from autograder.coursedir import KERNEL_ENV
from autograder.limits import Limits, Sandbox, make_sandbox
from course.paths import cache_dir, shared_data_dir
from course.record_names import RECORD_DIR_ENV, RECORD_FOLDER, SEED_ENV

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
    RECORD_FOLDER,
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
    #: The submission-wide bound that stopped something: "memory", "processes", "disk" or "".
    limit: str = ""
    #: Largest memory use of the whole submission, MiB (where a cgroup measured it).
    memory_peak_mb: float | None = None


#: How often the scratch folder's size is checked (seconds).
DISK_POLL = 0.5
#: More entries than this in the scratch folder count as over the disk cap.
MAX_SCRATCH_FILES = 100_000


def folder_usage(folder: Path, limit_files: int = MAX_SCRATCH_FILES) -> int | None:
    """Bytes used under ``folder`` (allocated blocks, so sparse files count as written), or
    None when it holds more than ``limit_files`` entries."""
    total, count = 0, 0
    stack = [str(folder)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                count += 1
                if count > limit_files:
                    return None
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += max(info.st_blocks * 512, 0)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return total


def run_notebook(
    scratch: Path,
    prepared: NotebookNode,
    *,
    limits: Limits,
    box: Sandbox,
    seed: int | None,
    threads: int,
    course_root: Path | None = None,
    cell_prefix: Mapping[str, str] | None = None,
) -> RunOutcome:
    """Execute ``prepared`` in ``scratch`` under ``box``; return what the run left behind.

    ``course_root`` is masked too, in case a bound tree (a project folder) holds it.

    ``cell_prefix`` (grade_id -> one line of Python) reaches the runner through a pipe on its
    standard input, never a file or the environment; the runner, made non-dumpable first (its
    memory and ``/proc`` files are then closed to the kernel), prepends the line to that cell's
    source only when it sends the cell to the kernel. ``seed`` (legacy) puts
    :data:`~course.record_names.SEED_ENV` in the kernel's environment; pass None with
    ``cell_prefix``.

    Everything the run starts joins one control group (where the machine has one, see
    :mod:`autograder.cgroups`), killed whole at the end; the scratch folder's size is checked
    every :data:`DISK_POLL` seconds against ``limits.disk_mb``.
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
        RECORD_DIR_ENV: str(scratch / RECORDS),
        "MPLCONFIGDIR": "/tmp",
        "LANG": "C.UTF-8",
    }
    if seed is not None:
        env[SEED_ENV] = str(seed)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    argv = [sys.executable, "-I", str(scratch / "runner.py"), str(scratch / JOB)]
    runtime = None
    if not box.filesystem:
        # Unix socket paths are limited to ~100 bytes: keep the kernel's runtime dir short.
        runtime = tempfile.mkdtemp(prefix="ag-")
        env = {**os.environ, **env, "JUPYTER_RUNTIME_DIR": runtime, "TMPDIR": runtime}
    popen_env = {**env, "PATH": os.environ.get("PATH", "")} if box.filesystem else env
    outcome = RunOutcome(state="lost", executed=None)
    seccomp_fd = fs_sandbox.filter_fd() if box.filesystem else None
    command = box.wrap(
        argv,
        writable=[scratch],
        readonly=[p for p in (shared_data_dir(), cache_dir()) if p is not None and p.exists()],
        hide=[*hidden_packages(), *([course_root.resolve()] if course_root else [])],
        env=env,
        seccomp_fd=seccomp_fd,
    )

    group = cgroups.create(scratch.name, box.budget(float(threads))) if box.cgroup else None

    def preexec() -> None:
        if group is not None:
            group.join_self()  # first: everything started from here on is accounted
        if box.preexec is not None:
            box.preexec()

    try:
        with open(scratch / "runner.log", "wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=scratch,
                env=popen_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE,
                preexec_fn=preexec,
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
            )
            if seccomp_fd is not None:
                os.close(seccomp_fd)
                seccomp_fd = None
            send_prefixes(proc, cell_prefix or {})
            over_disk = threading.Event()
            watcher = threading.Thread(
                target=watch_disk,
                args=(proc, scratch, limits.disk_mb, over_disk, group),
                daemon=True,
            )
            if limits.disk_mb > 0:
                watcher.start()
            try:
                outcome.exit_code = proc.wait(timeout=limits.submission_timeout)
            except subprocess.TimeoutExpired:
                stop(proc, group)
                outcome.state = "timeout"
                return outcome
            if over_disk.is_set():
                outcome.limit = "disk"
    finally:
        if seccomp_fd is not None:
            os.close(seccomp_fd)
        if runtime:
            shutil.rmtree(runtime, ignore_errors=True)
        if group is not None:
            outcome.limit = outcome.limit or (group.limit_hit() or "")
            outcome.memory_peak_mb = group.memory_peak_mb()
            group.kill()  # whatever is left (daemons, a fork bomb): gone, with the group
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


def send_prefixes(proc: subprocess.Popen, cell_prefix: Mapping[str, str]) -> None:
    """Give the runner the cell prefixes on its standard input, then close it."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(dict(cell_prefix)).encode("utf-8"))
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass  # the runner died at once: its status says so


def watch_disk(
    proc: subprocess.Popen,
    scratch: Path,
    disk_mb: int,
    over: threading.Event,
    group: cgroups.Group | None,
) -> None:
    """Stop the run when its scratch folder grows past ``disk_mb`` MiB (checked every 0.5 s)."""
    limit = disk_mb * 1024 * 1024
    while proc.poll() is None:
        used = folder_usage(scratch)
        if used is None or used > limit:
            over.set()
            stop(proc, group)
            return
        if over.wait(DISK_POLL):
            return


def stop(proc: subprocess.Popen, group: cgroups.Group | None) -> None:
    """Kill the run: its whole control group where there is one, else its process group."""
    if group is not None:
        group.kill()
    kill_group(proc)


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
