"""``collect``: bring submissions into the course directory without ever changing them.

Accepted inputs: a folder, or a zip as an LMS exports it. Each file's name (inside a zip: its
base name; in a folder: its path relative to the folder) is matched against these patterns, in
order; the first that matches gives the student id (named group ``student``) and the file name
the student uploaded (group ``file``):

=================  ==================================================  ====================
name               example                                             student, file
=================  ==================================================  ====================
canvas             ``jdoe_12345_67890_transfer_learning.ipynb``        jdoe, transfer_...
canvas (late)      ``jdoe_LATE_12345_67890_transfer_learning-1.ipynb`` jdoe, transfer_...
moodle             ``Jane Doe_4711_assignsubmission_file_x.ipynb``     4711, x.ipynb
folder             ``jdoe/transfer_learning.ipynb``                    jdoe, transfer_...
=================  ==================================================  ====================

``--pattern REGEX`` replaces the list with one regex of your own (``re.fullmatch`` on the
name; it must define ``student``; ``file`` is optional). LMS re-upload suffixes (``-1``,
`` (1)``) are removed from the file name before it is compared with the expected name.

Every file is copied byte for byte into ``originals/<student>/`` (read-only) with a
``manifest.json`` of SHA-256 hashes; the notebook to grade is copied from there into
``submitted/``. Nothing in the input folder or zip is touched.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from autograder.coursedir import CourseDir

PATTERNS: dict[str, str] = {
    "canvas": r"(?P<student>[A-Za-z0-9.-]+?)(?:_LATE|_late)?_\d+_\d+_(?P<file>.+)",
    "moodle": r"(?P<name>[^/]+?)_(?P<student>\d+)_assignsubmission_file_(?P<file>.+)",
    "folder": r"(?P<student>[A-Za-z0-9_.@-]+)/(?:.*/)?(?P<file>[^/]+)",
}
_REUPLOAD = re.compile(r"(?:-\d+| \(\d+\))(?=\.[A-Za-z0-9]+$)")
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.@-]+")
_SKIP = ("__MACOSX/", ".DS_Store", ".ipynb_checkpoints/")
#: A notebook larger than this is not graded (saved outputs can be huge; grading clears them,
#: but reading a multi-GB file would stall the batch).
MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass
class Intake:
    """What was received from one student, and what will be graded."""

    student: str
    files: dict[str, str] = field(default_factory=dict)  # stored name -> sha256
    chosen: str | None = None
    notes: list[str] = field(default_factory=list)
    collected_at: str = ""

    @property
    def missing(self) -> bool:
        """True when no notebook can be graded."""
        return self.chosen is None


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def match_name(name: str, pattern: str | None = None) -> tuple[str, str] | None:
    """Return ``(student, uploaded file name)`` for ``name``, or None when nothing matches."""
    patterns = [pattern] if pattern else list(PATTERNS.values())
    for regex in patterns:
        m = re.fullmatch(regex, name)
        if m and m.groupdict().get("student"):
            student = _SAFE_ID.sub("_", m.group("student")).strip("._") or "unknown"
            uploaded = m.groupdict().get("file") or Path(name).name
            return student, _REUPLOAD.sub("", Path(uploaded).name)
    return None


def _entries(inbox: Path) -> list[tuple[str, object]]:
    """(name to match, handle) for every file in a folder or zip, in a stable order."""
    if inbox.is_file() and zipfile.is_zipfile(inbox):
        with zipfile.ZipFile(inbox) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
        out = []
        for info in infos:
            if any(s in info.filename for s in _SKIP):
                continue
            # LMS zips are flat; a zip of per-student folders keeps its relative path.
            parts = Path(info.filename).parts
            name = "/".join(parts[-2:]) if len(parts) > 1 else parts[0]
            out.append((name, info))
        return sorted(out, key=lambda e: e[0])
    if inbox.is_dir():
        files = [p for p in inbox.rglob("*") if p.is_file()]
        files = [p for p in files if not any(s in p.as_posix() for s in _SKIP)]
        return sorted(((p.relative_to(inbox).as_posix(), p) for p in files), key=lambda e: e[0])
    raise FileNotFoundError(
        f"Nothing to collect at {inbox}\n"
        "  How to fix it: pass a folder of notebooks or an LMS zip export."
    )


def collect(
    course: CourseDir, inbox: Path, *, pattern: str | None = None
) -> tuple[list[Intake], list[str]]:
    """Copy every submission in ``inbox`` into ``course``.

    Returns:
        The intake of each student found, and the names that matched no pattern (skipped).
    """
    inbox = Path(inbox)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    by_student: dict[str, list[tuple[str, object]]] = {}
    unmatched: list[str] = []
    for name, handle in _entries(inbox):
        matched = match_name(name, pattern)
        if matched is None:
            unmatched.append(name)
            continue
        by_student.setdefault(matched[0], []).append((matched[1], handle))
    archive = zipfile.ZipFile(inbox) if inbox.is_file() else None
    try:
        intakes = [
            _store(course, student, files, archive, stamp)
            for student, files in sorted(by_student.items())
        ]
    finally:
        if archive is not None:
            archive.close()
    return intakes, unmatched


def _store(
    course: CourseDir,
    student: str,
    files: list[tuple[str, object]],
    archive: zipfile.ZipFile | None,
    stamp: str,
) -> Intake:
    folder = course.originals(student)
    folder.mkdir(parents=True, exist_ok=True)
    intake = Intake(student=student, collected_at=stamp)
    expected = f"{course.notebook}.ipynb"
    notebooks: list[tuple[str, str]] = []  # (uploaded name, stored name)
    previous = folder / "manifest.json"
    if previous.exists():
        # Files from earlier collects stay listed: originals are never dropped.
        intake.files.update(json.loads(previous.read_text(encoding="utf-8"))["files"])
    for uploaded, handle in files:
        size = handle.file_size if isinstance(handle, zipfile.ZipInfo) else handle.stat().st_size  # type: ignore[union-attr]
        if size > MAX_FILE_BYTES:
            intake.notes.append(f"{uploaded}: larger than {MAX_FILE_BYTES >> 20} MB, skipped")
            continue
        incoming = folder / ".incoming"
        if isinstance(handle, zipfile.ZipInfo):
            with archive.open(handle) as src, open(incoming, "wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(handle, incoming)  # type: ignore[arg-type]
        digest = sha256(incoming)
        stored = next((n for n, h in intake.files.items() if h == digest), None)
        if stored is None:
            target = _free_name(folder / uploaded)
            incoming.rename(target)
            target.chmod(stat.S_IRUSR | stat.S_IRGRP)
            stored = target.name
            intake.files[stored] = digest
        else:
            incoming.unlink()
        if uploaded.lower().endswith(".ipynb") and (uploaded, stored) not in notebooks:
            notebooks.append((uploaded, stored))
    if not notebooks:
        names = ", ".join(sorted(u for u, _ in files)) or "nothing"
        intake.notes.append(f"no notebook in the submission (received: {names})")
    else:
        exact = [n for n in notebooks if n[0] == expected]
        uploaded, stored = (exact or notebooks)[-1]
        intake.chosen = stored
        if not exact:
            intake.notes.append(
                f"wrong file name: received {uploaded!r}, expected {expected!r}; graded anyway"
            )
        if len(notebooks) > 1:
            intake.notes.append(
                f"{len(notebooks)} notebooks received; graded {uploaded!r} "
                "(the expected name, else the last one)"
            )
    manifest = folder / "manifest.json"
    if manifest.exists():
        manifest.chmod(0o644)
    manifest.write_text(json.dumps(asdict(intake), indent=2), encoding="utf-8")
    submitted = course.submitted(student)
    if submitted.parent.exists():
        shutil.rmtree(submitted.parent)
    if intake.chosen is not None:
        submitted.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / intake.chosen, submitted)
        submitted.chmod(0o644)
    return intake


def _free_name(path: Path) -> Path:
    """``path``, or ``name.1.ext``... when a different file of that name is already stored."""
    if not path.exists():
        return path
    for n in range(1, 1000):
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"Too many files named {path.name} in {path.parent}")


def load_intake(course: CourseDir, student: str) -> Intake:
    """Read ``originals/<student>/manifest.json``."""
    data = json.loads((course.originals(student) / "manifest.json").read_text(encoding="utf-8"))
    return Intake(**data)


def verify_originals(course: CourseDir) -> list[str]:
    """Names of stored originals whose bytes no longer match their recorded hash (none: [])."""
    bad = []
    for student in course.students():
        intake = load_intake(course, student)
        for name, digest in intake.files.items():
            path = course.originals(student) / name
            if not path.is_file() or sha256(path) != digest:
                bad.append(f"{student}/{name}")
    return bad
