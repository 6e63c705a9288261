"""MkDocs hook: the table of grading limits on ``instructor/enforcement.md``.

The page holds the marker ``<!-- course:limits-table -->``; this hook replaces it with
one row per field of ``autograder.limits.Limits``, defaults read from the class, so
the table cannot drift from the code. Instructor build only: the student build does
not have the page.
"""

from __future__ import annotations

from dataclasses import fields

from markdown_table import table
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

LIMITS_PAGE = "instructor/enforcement.md"
MARKER = "<!-- course:limits-table -->"

#: For each field of ``autograder.limits.Limits``: its option, how it is enforced, and what
#: happens when a submission reaches it. A field missing here still gets a row.
LIMITS = {
    "cell_timeout": (
        "`--cell-timeout`",
        "nbgrader's `Execute.timeout`: the kernel is interrupted",
        "the cell fails; later cells still run",
    ),
    "submission_timeout": (
        "`--submission-timeout`",
        "wall clock; then the whole process group, kernel included, is killed",
        "zero points, status `timeout`",
    ),
    "memory_mb": (
        "`--memory-mb` (`0`: none)",
        "address-space cap (`RLIMIT_AS`) on the grading process and its kernel",
        "`MemoryError` in the cell that allocates",
    ),
    "max_file_mb": ("", "file-size cap (`RLIMIT_FSIZE`)", "writing a larger file fails"),
    "network": (
        "`--network auto|off|allow`",
        "a private, empty network namespace (`unshare -rn`) where the machine allows it",
        "connections fail; where no namespace can be made, `auto` grades with the network "
        "up and says so, `off` refuses to grade",
    ),
    "max_output_chars": ("", "output kept per cell while it runs", "the rest is cut"),
}
UNITS = {"_timeout": "s", "_mb": "MiB", "_chars": "characters"}


def limits_table() -> str:
    """The grading limits with their defaults, read from ``autograder.limits.Limits``."""
    from autograder.limits import Limits

    defaults = Limits()
    rows = []
    for field in fields(Limits):
        value = getattr(defaults, field.name)
        unit = next((u for suffix, u in UNITS.items() if field.name.endswith(suffix)), "")
        option, how, when = LIMITS.get(field.name, ("", "", "see `autograder/README.md`"))
        shown = f"{value:,} {unit}".strip() if isinstance(value, int) else f"`{value}`"
        rows.append((f"`{field.name}`", shown, option, how, when))
    return table(("limit", "default", "option", "how", "when a submission reaches it"), rows)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill the limits page's marker; fail loudly if the page lost it."""
    if page.file.src_uri != LIMITS_PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{LIMITS_PAGE} lost its marker {MARKER}: cannot fill it")
    return markdown.replace(MARKER, limits_table())
