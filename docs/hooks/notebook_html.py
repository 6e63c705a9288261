"""Rewrite the HTML that mkdocs-jupyter renders from a lesson notebook.

Not a hook itself: ``lesson_pages.py`` calls these on each lesson page.

- links between lessons, written for Jupyter (``02_freezing.ipynb``), point to the
  lesson pages;
- the table of contents is rebuilt from the rendered headings;
- prompts (``In [4]:``), copy buttons and anchor marks are kept out of the search
  index, so a search result reads "Freezing layers", not "In [4]: Copied!";
- scripts that would fetch from another host at page load (MathJax, which no lesson
  uses) are dropped: the site works offline.
"""

from __future__ import annotations

import html
import re
from typing import Any

from mkdocs.structure.files import Files
from mkdocs.structure.toc import TableOfContents, get_toc

LESSONS_URI = "lessons"

_NOTEBOOK_LINK = re.compile(r'href="(\d\d_[\w-]+)\.ipynb(#[^"]*)?"')
_README_LINK = re.compile(r'href="README\.md(#[^"]*)?"')
_HEADING = re.compile(r'<h([1-6]) id="([^"]+)">(.*?)<a class="anchor-link"', re.DOTALL)

#: Elements whose text is chrome, not content: the search index skips them.
NOT_SEARCHED = (
    "jp-InputPrompt",  # "In [4]:"
    "jp-OutputPrompt",  # "Out[4]:"
    "zeroclipboard-container",  # the copy button and its "Copied!" notice
    "clipboard-copy-txt",  # a hidden second copy of each cell's code
    "celltoolbar",  # cell tags such as "parameters"
    "anchor-link",  # the pilcrow after each heading
)
_CHROME = re.compile(r'<(\w+) class="(' + "|".join(NOT_SEARCHED) + r')\b([^"]*)"')
# MathJax, loaded from a CDN or from an empty src (the page itself) when no URL is set.
_MATHJAX = re.compile(
    r"<!-- Load mathjax -->\s*<script[^>]*>\s*</script>\s*"
    r"<!-- MathJax configuration -->.*?<!-- End of mathjax configuration -->",
    re.DOTALL,
)


def link_lessons(html_text: str, files: Files) -> str:
    """Point Jupyter-style links (``NN_name.ipynb``, ``README.md``) at the lesson pages.

    On the site each lesson is a page of its own, one folder below the lessons' index.
    A link to a notebook that is not on the site is left alone for the link check.
    """

    def replace(match: re.Match[str]) -> str:
        stem, fragment = match.group(1), match.group(2) or ""
        if files.get_file_from_path(f"{LESSONS_URI}/{stem}.ipynb") is None:
            return match.group(0)
        return f'href="../{stem}/{fragment}"'

    html_text = _NOTEBOOK_LINK.sub(replace, html_text)
    return _README_LINK.sub(lambda m: f'href="../{m.group(1) or ""}"', html_text)


def toc_from_headings(html_text: str) -> TableOfContents:
    """The page's table of contents, read from the rendered headings.

    mkdocs-jupyter builds its own from a Markdown export that drops inline code, so a
    heading like "What `requires_grad` does" got the anchor of "What does", which
    exists nowhere on the page.
    """
    root: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    for level, anchor, inner in _HEADING.findall(html_text):
        title = html.unescape(re.sub(r"<[^>]+>", "", inner)).strip()
        token = {"level": int(level), "id": anchor, "name": title, "children": []}
        while stack and stack[-1]["level"] >= token["level"]:
            stack.pop()
        (stack[-1]["children"] if stack else root).append(token)
        stack.append(token)
    return get_toc(root)


def exclude_chrome_from_search(html_text: str) -> str:
    """Mark prompts, copy buttons and anchor marks ``data-search-exclude``."""
    return _CHROME.sub(r'<\1 data-search-exclude class="\2\3"', html_text)


def drop_remote_scripts(html_text: str) -> str:
    """Remove MathJax's loader and configuration (no lesson has math; it needs a CDN)."""
    return _MATHJAX.sub("", html_text)
