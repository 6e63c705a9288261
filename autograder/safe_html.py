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
  no ``on...``, ``id``, ``name`` or ``style`` attributes; links only to ``http(s)``,
  ``mailto`` and anchors; images only from ``data:image/(png|jpeg|gif)`` (a remote image
  loads nothing: its address is dropped). Inside student content (markdown cells, HTML and
  markdown outputs: nbconvert's ``rendered_html`` blocks) no ``class`` survives either, and no
  ``ag-`` class anywhere, so nothing a student writes can take the grader banner's look. The
  ``<head>`` is rebuilt: the template's CSS only (no ``@import``, no remote ``url()``), no
  script (nbconvert's MathJax from a CDN goes; math shows as its TeX text), and a
  Content-Security-Policy that forbids every script and every remote load.

Attachments (images pasted into markdown) are kept as inert data when they are PNG, JPEG or
GIF under :data:`MAX_ATTACHMENT_BYTES`, and dropped otherwise, one page at a time
(:func:`clean_attachments`); a reference to a dropped one shows as text.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from pathlib import Path
from typing import Any

from bleach.html5lib_shim import Filter
from bleach.sanitizer import Cleaner
from nbconvert.preprocessors import Preprocessor
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Dict

#: Tags a rendered notebook uses; everything else is removed (its text kept, escaped).
ALLOWED_TAGS = frozenset(
    "a abbr b blockquote br caption code col colgroup dd del details div dl dt em figcaption "
    "figure h1 h2 h3 h4 h5 h6 hr i img kbd li mark ol p pre q s samp small span strong sub "
    "summary sup table tbody td tfoot th thead tr tt u ul var".split()
)
_ATTRIBUTES = frozenset("class title alt width height align colspan rowspan".split())
_PROTOCOLS = ("http", "https", "mailto", "data")
#: Output types a static page can show without running anything.
SAFE_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg")
#: Image types an ``<img>`` or an attachment may carry (as ``data:`` URLs only).
IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif")
#: Largest attachment kept (decoded bytes); larger ones are dropped from the page.
MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024
#: Score put on manually graded cells still pending; :func:`sanitize_page` replaces it.
PENDING = -1.0
_PENDING_TEXT = re.compile(r"Score: -1\.0 / ([0-9.]+)")
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*", re.I)
#: Class names only the grader's own banner uses; removed from everything else.
GRADER_CLASS_PREFIX = "ag-"
#: The Content-Security-Policy of every feedback page: no script, no remote anything.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "form-action 'none'; base-uri 'none'; frame-src 'none'"
)


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in _ATTRIBUTES:
        return True
    lowered = value.strip().lower()
    if tag == "a" and name == "href":
        return not lowered.startswith("data:")
    if tag == "img" and name == "src":
        return _DATA_IMAGE.fullmatch(value.strip()) is not None
    return False


class _StudentClasses(Filter):
    """Drop ``class`` inside student content (``rendered_html`` blocks) and every ``ag-`` class.

    nbconvert wraps each markdown cell and each HTML or markdown output in an element of class
    ``rendered_html``: everything inside came from the student.
    """

    def __iter__(self):  # type: ignore[no-untyped-def]
        depth = 0  # > 0: inside student content
        for token in Filter.__iter__(self):
            kind = token.get("type")
            if kind in ("StartTag", "EmptyTag"):
                attrs = token.get("data") or {}
                key = next((k for k in attrs if k[1] == "class"), None)
                classes = (attrs.get(key) or "").split() if key else []
                if depth and kind == "StartTag":
                    depth += 1
                if key is not None:
                    if depth:
                        del attrs[key]
                    else:
                        kept = [c for c in classes if not c.startswith(GRADER_CLASS_PREFIX)]
                        attrs[key] = " ".join(kept)
                if not depth and "rendered_html" in classes and kind == "StartTag":
                    depth = 1
            elif kind == "EndTag" and depth:
                depth -= 1
            yield token


_CLEANER = Cleaner(
    tags=ALLOWED_TAGS,
    attributes=_allowed_attribute,
    protocols=_PROTOCOLS,
    strip=True,
    strip_comments=True,
    filters=[_StudentClasses],
)

#: Elements whose text is code, not content: dropped whole so no script text shows on the page.
_CODE_ELEMENTS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)


def sanitize_fragment(html: str) -> str:
    """``html`` with every tag, attribute and URL outside the allowlist removed."""
    return _CLEANER.clean(_CODE_ELEMENTS.sub("", html))


_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.I | re.S)
_REMOTE_CSS = re.compile(r"@import[^;]*;?|url\((?!\s*['\"]?data:)[^)]*\)", re.I)


def head_styles(head: str) -> str:
    """The template's CSS from a rendered ``<head>``: ``<style>`` blocks, nothing remote."""
    blocks = [_REMOTE_CSS.sub("none", m.group(1)) for m in _STYLE.finditer(head)]
    return "".join(f"<style>{block}</style>\n" for block in blocks)


def page_head(title: str, styles: str = "") -> str:
    """A trusted ``<head>``: charset, the Content-Security-Policy, ``title`` and ``styles``."""
    import html as html_module

    return (
        '<head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>{html_module.escape(title)}</title>\n{styles}</head>"
    )


def sanitize_page(page: str, paths: dict[str, str] | None = None, title: str = "Feedback") -> str:
    """The rendered feedback ``page``, its head rebuilt and its body sanitized.

    The new head keeps only the template's CSS (:func:`head_styles`) under :data:`CSP`; no
    script survives anywhere. Instructor paths are replaced; manually graded cells marked
    pending by :class:`SanitizeOutputs` read "pending (N points, graded by hand)".
    """
    head, sep, rest = page.partition("<body")
    if not sep:
        head, rest = "", ">" + page
    _, _, body = rest.partition(">")
    body = body.rpartition("</body>")[0] if "</body>" in body else body
    body = _PENDING_TEXT.sub(r"Score: pending (\1 points, graded by hand)", body)
    clean = sanitize_fragment(body)
    return scrub_paths(
        f"<!DOCTYPE html>\n<html>{page_head(title, head_styles(head))}\n"
        f"<body>{clean}</body>\n</html>\n",
        paths,
    )


def clean_attachments(cell: NotebookNode) -> list[str]:
    """Keep a cell's PNG, JPEG and GIF attachments as inert data; drop the rest, in place.

    A markdown reference to a dropped attachment is turned into plain text, so rendering never
    fails on a missing one. Returns the names dropped.
    """
    attachments = cell.get("attachments")
    if not attachments:
        cell.pop("attachments", None)
        return []
    kept, dropped = {}, []
    for name, bundle in attachments.items() if isinstance(attachments, dict) else []:
        image = _image_of(bundle)
        if isinstance(name, str) and image is not None:
            kept[name] = image
        else:
            dropped.append(str(name))
    if kept:
        cell["attachments"] = kept
    else:
        cell.pop("attachments", None)

    def unlink(m: re.Match) -> str:
        return m.group(0) if m.group(1) in kept else "attachment-removed"

    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    cell["source"] = re.sub(r"attachment:([^\s)\"'>]+)", unlink, source)
    return dropped


def _image_of(bundle: object) -> dict[str, str] | None:
    """``{mime: base64}`` for the first valid PNG, JPEG or GIF in an attachment, or None."""
    if not isinstance(bundle, dict):
        return None
    for mime in IMAGE_MIMES:
        data = bundle.get(mime)
        data = "".join(data) if isinstance(data, list) else data
        if not isinstance(data, str) or len(data) > MAX_ATTACHMENT_BYTES * 4 // 3 + 8:
            continue
        try:
            raw = base64.b64decode(data.replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            continue
        if raw[:8] == b"\x89PNG\r\n\x1a\n" or raw[:3] == b"\xff\xd8\xff" or raw[:4] == b"GIF8":
            return {mime: data.replace("\n", "")}
    return None


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
        if cell.cell_type == "markdown":
            clean_attachments(cell)
        else:
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
