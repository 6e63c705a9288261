"""One feedback page at a time, each built and sanitized in a child process with bounds.

The part of a page that comes from the student (the executed notebook, rendered by nbconvert
with nbgrader's feedback template) is built and sanitized in a child process of its own with
a time limit (:data:`PAGE_SECONDS`) and an address-space cap (:data:`PAGE_MEMORY_MB`); a
notebook over :data:`MAX_NOTEBOOK_BYTES` is not rendered at all. When any of that fails, the
page says so in plain, escaped text under the grader's banner: one student's notebook can
neither stop nor stall the other pages, and no page is ever written unsanitized.

The children come from a ``forkserver`` that has imported nbconvert once, so a page costs a
fork, not a new interpreter.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import resource
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Seconds one page may take to build and sanitize.
PAGE_SECONDS = 60
#: Address space of the process building one page, MiB.
PAGE_MEMORY_MB = 3072
#: Largest autograded notebook rendered into a page (bytes); larger ones get the plain page.
MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024
#: Largest built page read back from the child (bytes).
MAX_PAGE_BYTES = 64 * 1024 * 1024
#: What must never be in a sanitized body: checked again by the parent, cheaply.
_ACTIVE = re.compile(
    r"<\s*(script|iframe|object|embed|svg|meta|base|form|style|link)\b"
    r"|<[a-z][^>]*\s(on[a-z]+|style|id)\s*=",
    re.I,
)

_CONTEXT = None


@dataclass(frozen=True)
class PageJob:
    """What a child needs to render one student's notebook."""

    notebook: str  # the autograded notebook
    out: str  # where the child writes {"styles": ..., "body": ...} as JSON
    db_url: str
    assignment: str
    notebook_name: str
    student: str
    paths: dict[str, str]
    pending: list[str]


@dataclass(frozen=True)
class Built:
    """A rendered, sanitized notebook (``styles`` for the head, ``body``), or why there is none."""

    styles: str = ""
    body: str = ""
    problem: str = ""


def _context() -> multiprocessing.context.BaseContext:
    global _CONTEXT
    if _CONTEXT is None:
        try:
            _CONTEXT = multiprocessing.get_context("forkserver")
            _CONTEXT.set_forkserver_preload(
                ["autograder.safe_html", "nbconvert.exporters", "nbgrader.preprocessors"]
            )
        except ValueError:  # no forkserver on this platform
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def build(job: PageJob, seconds: float = PAGE_SECONDS, memory_mb: int = PAGE_MEMORY_MB) -> Built:
    """Render and sanitize ``job``'s notebook in a bounded child process.

    Never raises for anything in the notebook: every failure is a :class:`Built` with a
    ``problem`` a student can read.
    """
    try:
        size = os.stat(job.notebook).st_size
    except OSError:
        return Built(problem="the notebook the grader ran could not be read back")
    if size > MAX_NOTEBOOK_BYTES:
        return Built(
            problem=f"your notebook with its outputs is {size / 2**20:.0f} MB, too large to "
            f"show here (at most {MAX_NOTEBOOK_BYTES >> 20} MB): print less and remove "
            "large pasted data"
        )
    try:
        proc = _context().Process(target=_child, args=(job, memory_mb), daemon=True)
        proc.start()
    except Exception as error:  # the machine refused a process: this page only
        return Built(problem=f"the page builder could not start ({type(error).__name__})")
    proc.join(seconds)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return Built(
            problem=f"showing your notebook took longer than {seconds:g} s and was stopped"
        )
    if proc.exitcode != 0:
        return Built(
            problem="your notebook could not be turned into a page (it needs more memory or "
            "time than a feedback page may use, or its content is malformed)"
        )
    try:
        out = Path(job.out)
        if out.is_symlink() or out.stat().st_size > MAX_PAGE_BYTES:
            return Built(problem="the page of your notebook came out too large to show")
        data = json.loads(out.read_text(encoding="utf-8"))
        styles, body = str(data["styles"]), str(data["body"])
    except (OSError, ValueError, KeyError, TypeError):
        return Built(problem="the page of your notebook could not be read back")
    if _ACTIVE.search(body) or "<script" in styles.lower():
        return Built(problem="the page of your notebook did not pass the final safety check")
    return Built(styles, body)


def _child(job: PageJob, memory_mb: int) -> None:
    """In the child: cap memory, render, sanitize, write JSON; any exception exits non-zero."""
    if memory_mb:
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    styles, body = render(job)
    Path(job.out).write_text(json.dumps({"styles": styles, "body": body}), encoding="utf-8")


def render(job: PageJob) -> tuple[str, str]:
    """nbgrader's feedback rendering of one notebook, sanitized: (head CSS, body HTML)."""
    import nbformat
    import nbgrader
    from nbconvert.exporters import HTMLExporter
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades
    from traitlets.config import Config

    from autograder.safe_html import SanitizeOutputs, head_styles, sanitize_page

    nb = nbformat.read(job.notebook, as_version=4)
    base = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_basedirs = [str(base / "templates")]
    config.HTMLExporter.extra_template_paths = [
        str(base / "static" / "node_modules" / "bootstrap" / "dist" / "css")
    ]
    config.SanitizeOutputs.paths = job.paths
    config.SanitizeOutputs.pending = {job.student: job.pending}
    exporter = HTMLExporter(config=config)
    for step in (GetGrades, SanitizeOutputs, CSSHTMLHeaderPreprocessor):
        exporter.register_preprocessor(step(config=config), enabled=True)
    resources = {
        "nbgrader": {
            "db_url": job.db_url,
            "assignment": job.assignment,
            "notebook": job.notebook_name,
            "student": job.student,
        }
    }
    page, _ = exporter.from_notebook_node(nb, resources=resources)
    head = page.partition("<body")[0]
    clean = sanitize_page(page, job.paths)
    body = clean.partition("<body>")[2].rpartition("</body>")[0]
    return head_styles(head), body


def scratch_file(folder: Path, student: str) -> str:
    """A fresh path in ``folder`` for one child's output."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="page-", suffix=".json", dir=folder)
    os.close(handle)
    return name
