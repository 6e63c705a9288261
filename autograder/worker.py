"""Grade one submission in a scratch course folder: ``python -m autograder.worker JOB.json``.

The parent (:mod:`autograder.grade`) starts this under the limits of :mod:`autograder.limits`
with a private copy of the gradebook, so parallel workers never write the same SQLite file.
The worker checks the notebook can be read at all, runs nbgrader's ``Autograde`` converter and
writes ``result.json`` beside the job: a status, a reason a student can act on, and what the
kernel guard found. The parent merges the scratch gradebook into the main one.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Phrases in nbgrader's log, mapped to the reason the student reads.
_CRASHES = (
    (
        "DeadKernelError",
        "the Python kernel died while running the notebook (os._exit, a crash, "
        "or the memory cap); nothing after that point could be graded",
    ),
    (
        "Kernel died",
        "the Python kernel died while running the notebook (os._exit, a crash, "
        "or the memory cap); nothing after that point could be graded",
    ),
    (
        "UnresponsiveKernelError",
        "the kernel stopped responding and could not be interrupted "
        "(an endless loop that ignores interrupts, or memory exhausted)",
    ),
    ("MemoryError", "the grader ran out of memory while reading the notebook's output"),
)


def check_readable(path: Path, expected_name: str) -> str | None:
    """Why ``path`` cannot be graded at all (empty, not JSON, not a notebook), or None."""
    import nbformat

    data = path.read_bytes()
    if not data.strip():
        return (
            "the submitted file is empty (0 bytes of notebook): save the notebook and upload again"
        )
    try:
        raw = json.loads(data.decode("utf-8", errors="strict"))
    except UnicodeDecodeError:
        return "the submitted file is not text (not a notebook): upload the .ipynb file itself"
    except json.JSONDecodeError as exc:
        return (
            f"the notebook is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "it was probably edited as text or cut short: download it again from Jupyter"
        )
    if not isinstance(raw, dict) or "cells" not in raw:
        return "the file is JSON but not a Jupyter notebook (it has no cells)"
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several unrelated types for broken notebooks
        return f"the notebook does not follow the Jupyter format: {str(exc).splitlines()[0]}"
    return None


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Grade the submission described by ``job`` and return the result record."""
    import nbformat
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    from autograder.coursedir import CourseDir, nbgrader_config
    from autograder.execution import METADATA_KEY
    from autograder.limits import Limits

    started = time.monotonic()
    course = CourseDir(Path(job["root"]), job["assignment"], job["notebook"])
    student = job["student"]
    limits = Limits(**job["limits"])
    result: dict[str, Any] = {"student": student, "status": "graded", "reason": "", "findings": {}}
    unreadable = check_readable(course.submitted(student), f"{course.notebook}.ipynb")
    if unreadable:
        result.update(status="invalid", reason=unreadable)
        return result
    config = nbgrader_config(course, limits, job.get("preload"))
    # The kernel may live in a network namespace without loopback: talk over Unix sockets,
    # at an absolute path (the kernel starts in the notebook's folder, the client does not).
    runtime = Path(os.environ.get("JUPYTER_RUNTIME_DIR") or tempfile.mkdtemp(prefix="ag-"))
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(runtime / "kernel")
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = course.assignment
    coursedir.student_id = student
    converter = Autograde(coursedir=coursedir, config=config)
    converter.force = True
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setLevel(logging.WARNING)
    converter.log.addHandler(handler)
    try:
        converter.start()
    except Exception as exc:  # nbgrader wraps every per-submission failure in a generic error
        text = log.getvalue() + f"\n{type(exc).__name__}: {exc}"
        reason = next((why for key, why in _CRASHES if key in text), None)
        result.update(
            status="crashed" if reason else "error",
            reason=reason or f"nbgrader could not grade it: {_last_error(text)}",
            log=text[-4000:],
        )
    else:
        graded = course.autograded(student)
        nb = nbformat.read(graded, 4)
        result["findings"] = dict(nb.metadata.get(METADATA_KEY, {}))
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def _last_error(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if "Error" in x or "Exception" in x]
    return (lines[-1] if lines else text.strip().splitlines()[-1])[:300]


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the job file, grade, write ``result.json`` next to it."""
    argv = sys.argv[1:] if argv is None else argv
    job_path = Path(argv[0])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.ERROR)
    result = run(job)
    (job_path.parent / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
