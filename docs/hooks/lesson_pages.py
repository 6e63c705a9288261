"""MkDocs hook: the executed lesson notebooks become the site's lesson pages.

Every executed notebook ``course/lessons/NN_*.ipynb`` becomes the page
``lessons/NN_*.ipynb``, rendered by mkdocs-jupyter and never executed here. Only
``.ipynb`` files from ``course/lessons/`` are taken: Jupytext sources and the exercise
source (which holds the solutions) never reach the site. Each lesson page opens with
the box from ``lesson_header.py``; its HTML is tidied by ``notebook_html.py``.

``extra.course_repo_url`` in mkdocs.yml (a public git repository; GitHub for Colab)
adds "Open in Colab" / "Open in Binder" links; ``extra.course_repo_branch`` picks the
branch (``main``). Without a URL there is no such link.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lesson_header import colab_and_binder, header_html, notebook_title, read_notebook, run_mode
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page
from notebook_html import (
    LESSONS_URI,
    drop_remote_scripts,
    exclude_chrome_from_search,
    link_lessons,
    toc_from_headings,
)

log = logging.getLogger("mkdocs.hooks.lesson_pages")

ROOT = Path(__file__).resolve().parents[2]
LESSONS_DIR = ROOT / "course" / "lessons"
#: Where the lessons live in the repository, for Colab / Binder links.
LESSONS_REPO_PATH = "course/lessons"


def lesson_notebooks() -> list[Path]:
    """The executed lesson notebooks, in lesson order (their ``NN_`` prefix)."""
    return sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))


def is_lesson(page: Page) -> bool:
    """Whether ``page`` is a rendered lesson notebook."""
    uri = page.file.src_uri
    return uri.startswith(f"{LESSONS_URI}/") and uri.endswith(".ipynb")


def relative_url(page: Page, target: str) -> str:
    """A link from ``page`` to a site-root-relative ``target`` (directory URLs aware)."""
    return "../" * page.url.count("/") + target


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps the notebooks
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the lesson notebooks as site files."""
    for notebook in lesson_notebooks():
        # A real File rooted at course/ (not File.generated): mkdocs-jupyter's wrapper
        # recomputes abs_src_path from src_dir, which a generated file does not have.
        files.append(
            File(
                f"{LESSONS_URI}/{notebook.name}",
                src_dir=str(LESSONS_DIR.parent),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    return files


_previous: dict[str, tuple[str, str]] = {}


def on_nav(nav: Navigation, config: MkDocsConfig, files: Files) -> Navigation:
    """Remember which lesson comes before which: a lesson's first prerequisite."""
    _previous.clear()
    lessons = [page for page in nav.pages if is_lesson(page)]
    for before, page in zip(lessons, lessons[1:], strict=False):
        stem = Path(before.file.src_uri).stem
        title = notebook_title(read_notebook(Path(before.file.abs_src_path)), stem)
        _previous[page.file.src_uri] = (title, f"../{stem}/")
    return nav


def on_page_content(html_text: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Lesson pages: the opening box, working links, a correct TOC, search without chrome."""
    if not is_lesson(page):
        return html_text
    path = Path(page.file.abs_src_path)
    mode = run_mode(path)
    if mode.kind not in ("quick", "laptop", "real"):
        # A warning fails `mkdocs build --strict`: a lesson whose outputs cannot be
        # attributed to a run is not fit to publish.
        log.warning("%s: %s", page.file.abs_src_path, mode.detail)
    repo_url = config.extra.get("course_repo_url") or ""
    branch = config.extra.get("course_repo_branch") or "main"
    header = header_html(
        mode,
        read_notebook(path),
        notebook_name=path.name,
        results_url=relative_url(page, "results/"),
        previous=_previous.get(page.file.src_uri),
        open_links=colab_and_binder(repo_url, branch, f"{LESSONS_REPO_PATH}/{path.name}")
        if repo_url
        else [],
    )
    page.toc = toc_from_headings(html_text)
    html_text = exclude_chrome_from_search(link_lessons(html_text, files))
    # Right under the lesson's title, where a reader decides whether to start now.
    title_end = html_text.find("</h1>")
    if title_end < 0:
        return header + html_text
    title_end += len("</h1>")
    return html_text[:title_end] + header + html_text[title_end:]


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    """Drop scripts that would load from another host (MathJax) from lesson pages."""
    return drop_remote_scripts(output) if is_lesson(page) else output


def on_serve(server: Any, config: MkDocsConfig, builder: Any) -> Any:
    """Rebuild when a lesson is re-executed."""
    if LESSONS_DIR.is_dir():
        server.watch(str(LESSONS_DIR))
    return server
