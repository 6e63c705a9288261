"""Make feedback pages safe to open: no student script runs, no instructor path shows.

A feedback page is nbconvert's rendering of the student's executed notebook, so everything in
its body came from the student: markdown (raw HTML passes through it), ``text/html`` and
JavaScript outputs, SVG. Two layers:

- :class:`SanitizeOutputs`, an nbconvert preprocessor run before rendering, drops outputs that
  can only be code or are not needed on a static page (JavaScript, widgets, SVG, anything but
  text, images, HTML, markdown and LaTeX), marks manually graded cells still waiting for the
  instructor (nbgrader shows them as "0.0 / 2.0"; the page says "pending"), and removes
  instructor paths from text;
- :func:`sanitize_page`, run on the rendered page, cleans the whole ``<body>`` with bleach's
  allowlist: no ``<script>``, ``<iframe>``, ``<object>``, ``<svg>``, forms or ``<style>``;
  no ``on...`` attributes; links only to ``http(s)``, ``mailto`` and anchors; images only from
  ``http(s)`` or ``data:image/...``. The ``<head>`` is the template's own.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import bleach
from nbconvert.preprocessors import Preprocessor
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Dict

#: Tags a rendered notebook uses; everything else is removed (its text kept, escaped).
ALLOWED_TAGS = frozenset(
    "a abbr b blockquote br caption code col colgroup dd del details div dl dt em figcaption "
    "figure h1 h2 h3 h4 h5 h6 hr i img kbd li mark ol p pre q s samp small span strong sub "
    "summary sup table tbody td tfoot th thead tr tt u ul var".split()
)
_ATTRIBUTES = frozenset("class id title alt width height align colspan rowspan name".split())
_PROTOCOLS = ("http", "https", "mailto", "data")
#: Output types a static page can show without running anything.
SAFE_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg")
#: Score put on manually graded cells still pending; :func:`sanitize_page` replaces it.
PENDING = -1.0
_PENDING_TEXT = re.compile(r"Score: -1\.0 / ([0-9.]+)")


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in _ATTRIBUTES:
        return True
    lowered = value.strip().lower()
    if tag == "a" and name == "href":
        return not lowered.startswith("data:")
    if tag == "img" and name == "src":
        return not lowered.startswith("data:") or lowered.startswith("data:image/")
    return False


#: Elements whose text is code, not content: dropped whole so no script text shows on the page.
_CODE_ELEMENTS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)


def sanitize_fragment(html: str) -> str:
    """``html`` with every tag, attribute and URL outside the allowlist removed."""
    return bleach.clean(
        _CODE_ELEMENTS.sub("", html),
        tags=ALLOWED_TAGS,
        attributes=_allowed_attribute,
        protocols=_PROTOCOLS,
        strip=True,
        strip_comments=True,
    )


def sanitize_page(page: str, paths: dict[str, str] | None = None) -> str:
    """The rendered feedback ``page`` with its body sanitized and instructor paths replaced.

    Manually graded cells marked pending by :class:`SanitizeOutputs` read
    "pending (N points, graded by hand)".
    """
    head, sep, rest = page.partition("<body")
    if not sep:
        return scrub_paths(sanitize_fragment(page), paths)
    attrs, _, body = rest.partition(">")
    body, _, _ = body.rpartition("</body>")
    body = _PENDING_TEXT.sub(r"Score: pending (\1 points, graded by hand)", body)
    clean = sanitize_fragment(body)
    return scrub_paths(f"{head}<body>{clean}</body>\n</html>\n", paths)


def instructor_paths(course_root: Path) -> dict[str, str]:
    """Folders of the grading machine that must not appear in feedback, with what replaces them."""
    project = Path(__file__).resolve().parent.parent
    found = {
        str(Path(course_root).resolve()): "[course]",
        str(project): "[grader]",
        str(Path(sys.prefix).resolve()): "[python]",
        str(Path(sys.base_prefix).resolve()): "[python]",
        sys.prefix: "[python]",
        str(Path.home()): "~",
    }
    return {k: v for k, v in found.items() if len(k) > 1}


def scrub_paths(text: str, paths: dict[str, str] | None) -> str:
    """``text`` with each folder of ``paths`` replaced by its placeholder, longest first."""
    for folder in sorted(paths or {}, key=len, reverse=True):
        text = text.replace(folder, paths[folder])  # type: ignore[index]
    return text


class SanitizeOutputs(Preprocessor):
    """Before rendering: keep only static outputs, mark pending cells, hide instructor paths.

    ``paths`` maps folders to placeholders (see :func:`instructor_paths`); set it in the
    config (``SanitizeOutputs.paths``).
    """

    enabled = Bool(True, help="nbconvert skips preprocessors that are not enabled.")
    paths = Dict(help="Folder -> placeholder replaced in every output.").tag(config=True)
    pending = Dict(
        help="Student id -> grade ids of manually graded cells still waiting for the instructor."
    ).tag(config=True)

    def preprocess_cell(
        self, cell: NotebookNode, resources: Any, index: int
    ) -> tuple[NotebookNode, Any]:
        """Clean one cell."""
        meta = cell.metadata.get("nbgrader", {})
        student = resources.get("nbgrader", {}).get("student")
        if meta.get("grade_id") in self.pending.get(student, ()):
            meta["score"] = PENDING  # nbgrader's template would print 0.0
        cell.pop("attachments", None)
        if cell.cell_type != "code":
            return cell, resources
        kept = []
        for output in cell.get("outputs", []):
            if output.output_type in ("stream",):
                output.text = scrub_paths(output.text, self.paths)
            elif output.output_type == "error":
                output.evalue = scrub_paths(str(output.evalue), self.paths)
                output.traceback = [scrub_paths(line, self.paths) for line in output.traceback]
            elif "data" in output:
                for mime in list(output.data):
                    if mime not in SAFE_MIMES:
                        del output.data[mime]
                    elif mime == "text/html":
                        text = output.data[mime]
                        text = text if isinstance(text, str) else "".join(text)
                        output.data[mime] = sanitize_fragment(text)
                    elif mime == "text/plain":
                        output.data[mime] = scrub_paths(output.data[mime], self.paths)
                if not output.data:
                    continue
            kept.append(output)
        cell.outputs = kept
        return cell, resources
