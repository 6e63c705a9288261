"""MkDocs hook: Sphinx cross-reference roles in docstrings become plain code on the API pages.

The package's docstrings use Sphinx roles (``:func:`load_cifar10```, ``:data:`CLASSES```,
``:class:`~course.errors.DataError```) because they read well in an editor and in
``help()``. mkdocstrings renders them as ``:func:<code>load_cifar10</code>``: the role
shows as raw text. This hook rewrites every such role in the rendered HTML to the code span
alone, dropping a leading ``~`` and keeping only the last dotted name then, as Sphinx does.
"""

from __future__ import annotations

import re
from typing import Any

#: ``:role:<code>target</code>`` as mkdocstrings renders a Sphinx role; ``py:`` domains too.
ROLE = re.compile(
    r":(?:py:)?(?:func|meth|class|data|attr|mod|exc|obj|const|ref|term):(<code>)([^<]*)(</code>)"
)


def strip_roles(html: str) -> str:
    """Replace each rendered Sphinx role by its code span (``~a.b.c`` shows as ``c``)."""

    def plain(match: re.Match[str]) -> str:
        target = match.group(2)
        if target.startswith("~"):
            target = target[1:].rsplit(".", 1)[-1]
        return f"{match.group(1)}{target}{match.group(3)}"

    return ROLE.sub(plain, html)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Every page: API pages hold most roles, but a docstring quoted elsewhere may too."""
    return strip_roles(html)
