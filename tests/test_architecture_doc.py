"""ARCHITECTURE.md promises a public API per module: every name it lists must exist.

A section headed ``## `package.module` ...`` lists, in its code block, the module's public
names as ``def name(...)``, ``class Name``, or ``NAME: ...`` / ``NAME = ...``. A rename that
forgets the document fails here (issue 11: documentation that matches the code).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^## `([a-z_][\w.]*)`", re.MULTILINE)
DEFINED = re.compile(
    r"(?:^|;\s*)(?:def|class)\s+([A-Za-z_]\w*)|^([A-Z][A-Z0-9_]+)\s*[:=]", re.MULTILINE
)


def documented_names() -> dict[str, set[str]]:
    """Module name -> the names its ARCHITECTURE.md section lists in code blocks."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    found: dict[str, set[str]] = {}
    headings = list(HEADING.finditer(text))
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        body = text[heading.end() : following.start() if following else len(text)]
        blocks = re.findall(r"```python\n(.*?)```", body, re.DOTALL)
        names = set()
        for block in blocks:
            # Only top-level lines: indented ones are members (``def save`` of History).
            top = "\n".join(line for line in block.splitlines() if not line.startswith(" "))
            names |= {a or b for a, b in DEFINED.findall(top)}
        if names:
            found[heading.group(1)] = names
    return found


def test_the_document_lists_modules():
    modules = documented_names()
    # The layers' main modules are documented; an empty parse would make the test vacuous.
    assert {"course.data", "course.models", "course.training", "solutions.transfer"} <= set(modules)


@pytest.mark.parametrize("module", sorted(documented_names()))
def test_documented_names_exist(module):
    imported = importlib.import_module(module)
    missing = sorted(name for name in documented_names()[module] if not hasattr(imported, name))
    assert missing == [], f"ARCHITECTURE.md lists {missing} in `{module}`, which has no such name"
