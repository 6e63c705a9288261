"""Student ids and upload order from the names an LMS gives submitted files.

Each name (in a zip: the entry's path, below one wrapper folder; in a folder inbox: the path
below it) is matched with ``re.fullmatch`` against :data:`PATTERNS`, first match wins:

=================  ==================================================  ====================
name               example                                             student, file
=================  ==================================================  ====================
canvas             ``jdoe_12345_67890_transfer_learning.ipynb``        jdoe, transfer_...
canvas (late)      ``jdoe_LATE_12345_67890_transfer_learning-1.ipynb`` jdoe, transfer_...
moodle             ``Jane Doe_4711_assignsubmission_file_x.ipynb``     4711, x.ipynb
folder             ``jdoe/transfer_learning.ipynb``                    jdoe, transfer_...
=================  ==================================================  ====================

A name of several folders belongs to its TOP-LEVEL folder only: ``eve/bob/x.ipynb`` is Eve's
(the LMS made ``eve/``; ``bob/`` is whatever Eve uploaded).

Ids become folder names, so :func:`safe_id` keeps letters of any alphabet, digits and
``_.@-`` and turns every other run of characters into ``_`` (``Jan de Vries`` ->
``Jan_de_Vries``, as always). No path component survives (``.``, ``..``, ``/``, NUL: nothing of
them is left), and an id longer than :data:`MAX_ID_BYTES` is cut and given a hash of the whole
name. Two different LMS names that give the same id (``jdoe`` and ``jdoe.``) are never merged:
:func:`assign_ids` keeps the id for one and gives the other a suffix from a hash of its name.

**Upload order.** When a student has several notebooks, the one graded is the latest
with the expected name (else the latest of all), ordered by, in turn: a timestamp in the name
(``2024-05-01T10-00-00``, ``2024-05-01 10:00``, ``2024-05-01``), Canvas's ``LATE`` marker, the
number Canvas gives each upload (the second number, ``jdoe_12345_67890_...``), the re-upload
suffix (none < ``-1`` < ``-2``, `` (1)`` < `` (2)``), then the name. The reasons say so
("3 uploads; graded the latest: ...").

:func:`read_roster` reads ids from a roster file the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from course.errors import explain

PATTERNS: dict[str, str] = {
    "canvas": (
        # Letters of any alphabet, digits, "." and "-": Canvas puts no "_" in the name part.
        r"(?P<student>(?:[^\W_]|[.-])+?)(?P<late>_LATE|_late)?_\d+_(?P<upload>\d+)_"
        r"(?P<file>[^/]+)"
    ),
    "moodle": r"(?P<name>[^/]+?)_(?P<student>\d+)_assignsubmission_file_(?P<file>[^/]+)",
    "folder": r"(?P<student>[^/]+)/(?:.*/)?(?P<file>[^/]+)",
}
_REUPLOAD = re.compile(r"(?:-(\d+)| \((\d+)\))(?=\.[A-Za-z0-9]+$)")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T _-](\d{2})[-:.h](\d{2})(?:[-:.m](\d{2}))?)?(?!\d)"
)
_SAFE_ID = re.compile(r"[^\w.@-]+")
#: Longest id kept as is (bytes of UTF-8); longer ones are cut and get a hash of the whole name.
MAX_ID_BYTES = 96
#: Longest stored file name (bytes of UTF-8; file systems allow 255).
MAX_FILE_BYTES_NAME = 160
#: File names the course folder uses itself: an upload with one of them is stored renamed.
RESERVED_NAMES = frozenset({"manifest.json", ".incoming"})


@dataclass(frozen=True)
class Upload:
    """One received file: whose it is, the name the student gave it, and when it came."""

    student: str
    file: str  # the uploaded name, re-upload suffix removed
    received_as: str  # the name as the LMS stored it (base name)
    order: tuple  # sorts uploads of one student oldest to newest (see autograder/intake.py)
    lms_name: str = ""  # the student part of the name, as the LMS wrote it


def parse_name(name: str, pattern: str | None = None) -> Upload | None:
    """The :class:`Upload` that ``name`` describes, or None when no pattern matches."""
    patterns = [pattern] if pattern else list(PATTERNS.values())
    for regex in patterns:
        m = re.fullmatch(regex, name)
        if not (m and m.groupdict().get("student")):
            continue
        groups = m.groupdict()
        raw = groups["student"]
        uploaded = PurePosixPath(groups.get("file") or PurePosixPath(name).name).name
        suffix = _REUPLOAD.search(uploaded)
        stamp = _TIMESTAMP.search(name)
        order = (
            tuple(int(x or 0) for x in stamp.groups()) if stamp else (),
            1 if groups.get("late") else 0,
            int(groups.get("upload") or 0),
            int(next(g for g in suffix.groups() if g)) if suffix else 0,
            name,
        )
        return Upload(
            safe_id(raw), _REUPLOAD.sub("", uploaded), PurePosixPath(name).name, order, raw
        )
    return None


def match_name(name: str, pattern: str | None = None) -> tuple[str, str] | None:
    """Return ``(student, uploaded file name)`` for ``name``, or None when nothing matches."""
    upload = parse_name(name, pattern)
    return (upload.student, upload.file) if upload else None


def short_hash(text: str, n: int = 8) -> str:
    """``n`` hex digits of the SHA-256 of ``text`` (stable from one collect to the next)."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:n]


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8 without splitting a character."""
    return text.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


def safe_id(raw: str) -> str:
    """A student id usable as a folder name: letters of any alphabet, digits, ``_.@-``.

    ``.``, ``..`` and names with no usable character give ``unknown``; an id over
    :data:`MAX_ID_BYTES` is cut and ends with ``-`` and a hash of ``raw``.
    """
    base = _SAFE_ID.sub("_", raw.strip()).strip("._") or "unknown"
    if len(base.encode("utf-8", "surrogateescape")) > MAX_ID_BYTES:
        base = _cut(base, MAX_ID_BYTES - 9).rstrip("._") + "-" + short_hash(raw)
    return base


def assign_ids(raws: Iterable[str], owners: Mapping[str, str] | None = None) -> dict[str, str]:
    """LMS name -> student id, never giving one id to two different names.

    Args:
        raws: the student parts of the names received (as the LMS wrote them).
        owners: id -> the LMS name it was given to by an earlier collect (kept for it).

    The id :func:`safe_id` gives goes to, in turn: the name it was given to before, the name
    that is already that id, else the first name in sorted order. Every other name with that
    id gets ``-`` and a hash of the name appended (stable from one collect to the next).
    """
    owners = owners or {}
    by_id: dict[str, list[str]] = {}
    for raw in sorted(set(raws)):
        by_id.setdefault(safe_id(raw), []).append(raw)
    out: dict[str, str] = {}
    for sid, names in by_id.items():
        previous = owners.get(sid)
        if previous is not None and previous not in names:
            keeper = None  # the id belongs to a student of an earlier collect
        elif previous is not None:
            keeper = previous
        else:
            keeper = sid if sid in names else names[0]
        for raw in names:
            out[raw] = sid if raw == keeper else _suffixed(sid, raw)
    return out


def _suffixed(sid: str, raw: str) -> str:
    return _cut(sid, MAX_ID_BYTES - 9).rstrip("._") + "-" + short_hash(raw)


def safe_filename(name: str) -> str:
    """A name to store an uploaded file under: one path component, printable, not too long.

    Valid names are kept as they are. Slashes, NUL and other control characters become ``_``;
    ``.``, ``..``, an empty name, a leading dot and the course folder's own file names
    (:data:`RESERVED_NAMES`) get an ``upload`` prefix; a name over
    :data:`MAX_FILE_BYTES_NAME` bytes is cut (keeping its extension) and given a hash.
    """
    clean = "".join(ch if ch.isprintable() and ch not in "/\\" else "_" for ch in name)
    clean = clean.strip()
    if clean in ("", ".", ".."):
        clean = "upload"
    elif clean.startswith("."):
        clean = "upload" + clean
    elif clean in RESERVED_NAMES:
        clean = "upload_" + clean
    if len(clean.encode("utf-8", "surrogateescape")) > MAX_FILE_BYTES_NAME:
        ext = PurePosixPath(clean).suffix
        ext = ext if len(ext) <= 12 else ""
        room = MAX_FILE_BYTES_NAME - len(ext.encode()) - 9
        clean = _cut(clean[: len(clean) - len(ext)] if ext else clean, room) + "-"
        clean += short_hash(name) + ext
    return clean


def read_roster(path: Path) -> list[str]:
    """Student ids from a roster file: one a line, or a CSV whose first column is the id.

    A header row (``student``, ``id``, ``login``...) and blank lines are skipped.

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            explain(
                f"No roster at {path}",
                "pass a text file with one student id a line (or a CSV whose first column is "
                "the id).",
            )
        )
    ids = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for row in csv.reader(handle):
            if not row or not row[0].strip():
                continue
            value = row[0].strip()
            if not ids and value.lower() in ("student", "id", "student_id", "login", "username"):
                continue
            ids.append(safe_id(value))
    return ids
