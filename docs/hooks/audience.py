"""MkDocs hook: one set of pages, two builds, the student site and the instructor site.

``mkdocs.yml`` builds the student site; ``mkdocs-instructor.yml`` inherits it, sets
``extra.course_build: instructor`` and adds the instructor guide and API. Shared pages
mark what only instructors may read::

    <!-- instructor-only -->
    ...
    <!-- /instructor-only -->

The student build drops those blocks before Markdown is rendered (their links go with
them), and refuses to publish any instructor page that a config change let in.
"""

from __future__ import annotations

import re

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

BUILD_KEY = "course_build"
INSTRUCTOR = "instructor"
#: Source paths that only the instructor build may publish.
INSTRUCTOR_PAGES = ("instructor/", "reference/solutions.md", "reference/autograder.md")
_BLOCK = re.compile(
    r"^[ \t]*<!-- instructor-only -->.*?<!-- /instructor-only -->[ \t]*\n?", re.DOTALL | re.M
)
# A marker line goes whole: a block may sit inside a Markdown table or list.
_MARKER_LINE = re.compile(r"^[ \t]*<!-- /?instructor-only -->[ \t]*\n?", re.M)
_OPEN, _CLOSE = "<!-- instructor-only -->", "<!-- /instructor-only -->"


def is_instructor_build(config: MkDocsConfig) -> bool:
    """True when building the instructor site (``extra.course_build: instructor``)."""
    return config.extra.get(BUILD_KEY) == INSTRUCTOR


def student_markdown(markdown: str, where: str = "page") -> str:
    """``markdown`` without its instructor-only blocks; unbalanced markers are an error."""
    if markdown.count(_OPEN) != markdown.count(_CLOSE):
        raise ValueError(f"{where}: unbalanced {_OPEN} / {_CLOSE} markers")
    return _BLOCK.sub("", markdown)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """The student build publishes no instructor page, whatever the config says."""
    if not is_instructor_build(config):
        leaked = [
            f.src_uri
            for f in files
            if f.src_uri.startswith(INSTRUCTOR_PAGES) and not f.inclusion.is_excluded()
        ]
        if leaked:
            raise ValueError(
                f"the student build would publish instructor pages: {leaked}. "
                "Exclude them in mkdocs.yml (exclude_docs) or build mkdocs-instructor.yml."
            )
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Drop instructor-only blocks from the student build; in the instructor build, the markers."""
    if is_instructor_build(config):
        return _MARKER_LINE.sub("", markdown)
    return student_markdown(markdown, page.file.src_uri)
