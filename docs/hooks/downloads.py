"""MkDocs hook: the student kit and the released exercise notebook, downloadable from the site.

``make kit`` (``python -m autograder student-kit dist``) writes ``dist/`` with the kit zip
and the released exercise notebook. When they are there at build time, this hook copies them
into the site as ``downloads/<file>`` and fills the ``<!-- course:downloads -->`` marker of
"Get started" with links and sizes; when they are not, the marker says how to get them
(from the instructor, or by building them from the repository).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
MARKER = "<!-- course:downloads -->"
PAGE = "start.md"
#: (file in dist/, what it is), in the order the page lists them.
DOWNLOADS = (
    (
        "transfer-course-student-kit.zip",
        "the student kit: the course package, the lessons, the exercise, a CIFAR-10 subset "
        "and a pretrained network",
    ),
    ("transfer_learning.ipynb", "the exercise notebook alone, as released"),
)


def available(dist: Path = DIST) -> list[tuple[str, str, int]]:
    """(file name, what it is, bytes) for each download present in ``dist``."""
    return [
        (name, what, (dist / name).stat().st_size)
        for name, what in DOWNLOADS
        if (dist / name).is_file()
    ]


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def downloads_markdown(found: list[tuple[str, str, int]]) -> str:
    """The marker's replacement: links to what is there, or how to get it."""
    if not found:
        return (
            '!!! note "Downloads"\n'
            "    This copy of the site was built without the kit. Your instructor hands it out "
            "(`transfer-course-student-kit.zip`); anyone with the course's repository can build "
            "it with `make kit`, which also puts it here the next time the site is built.\n"
        )
    lines = ['!!! tip "Downloads"']
    for name, what, size in found:
        lines.append(f"    - [`{name}`](downloads/{name}) ({_size(size)}): {what}")
    return "\n".join(lines) + "\n"


def on_files(files: Files, config: Any) -> Files:
    """Copy the downloads that exist into the site under ``downloads/``."""
    for name, _, _ in available():
        files.append(File.generated(config, f"downloads/{name}", abs_src_path=str(DIST / name)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill "Get started"'s downloads marker."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its marker {MARKER}")
    return markdown.replace(MARKER, downloads_markdown(available()))
