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
Student ids keep letters of any alphabet; spaces and other characters become ``_``.

**The latest upload wins.** When a student has several notebooks, the one graded is the latest
with the expected name (else the latest of all), ordered by, in turn: a timestamp in the name
(``2024-05-01T10-00-00``, ``2024-05-01 10:00``, ``2024-05-01``), Canvas's ``LATE`` marker, the
number Canvas gives each upload (the second number, ``jdoe_12345_67890_...``), the re-upload
suffix (none < ``-1`` < ``-2``, `` (1)`` < `` (2)``), then the name. The reasons say so
("3 uploads; graded the latest: ...").

A file whose name matches no pattern is never dropped silently: it is recorded in
``unmatched.json`` and listed in the summary and the grades CSV (status ``unmatched``). With
``--roster FILE`` every student on the roster without a submission is recorded as ``missing``.

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


@dataclass(frozen=True)
class Upload:
    """One received file: whose it is, the name the student gave it, and when it came."""

    student: str
    file: str  # the uploaded name, re-upload suffix removed
    received_as: str  # the name as the LMS stored it (base name)
    order: tuple  # sorts uploads of one student oldest to newest (see the module docstring)


def parse_name(name: str, pattern: str | None = None) -> Upload | None:
    """The :class:`Upload` that ``name`` describes, or None when no pattern matches."""
    patterns = [pattern] if pattern else list(PATTERNS.values())
    for regex in patterns:
        m = re.fullmatch(regex, name)
        if not (m and m.groupdict().get("student")):
            continue
        groups = m.groupdict()
        student = safe_id(groups["student"])
        uploaded = Path(groups.get("file") or Path(name).name).name
        suffix = _REUPLOAD.search(uploaded)
        stamp = _TIMESTAMP.search(name)
        order = (
            tuple(int(x or 0) for x in stamp.groups()) if stamp else (),
            1 if groups.get("late") else 0,
            int(groups.get("upload") or 0),
            int(next(g for g in suffix.groups() if g)) if suffix else 0,
            name,
        )
        return Upload(student, _REUPLOAD.sub("", uploaded), Path(name).name, order)
    return None


def match_name(name: str, pattern: str | None = None) -> tuple[str, str] | None:
    """Return ``(student, uploaded file name)`` for ``name``, or None when nothing matches."""
    upload = parse_name(name, pattern)
    return (upload.student, upload.file) if upload else None


def safe_id(raw: str) -> str:
    """A student id usable as a folder name: letters of any alphabet, digits, ``_.@-``."""
    return _SAFE_ID.sub("_", raw.strip()).strip("._") or "unknown"


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
    course: CourseDir,
    inbox: Path,
    *,
    pattern: str | None = None,
    roster: Path | None = None,
) -> tuple[list[Intake], list[str]]:
    """Copy every submission in ``inbox`` into ``course``.

    Args:
        course: the grading course directory.
        inbox: a folder or an LMS zip export.
        pattern: a regex replacing :data:`PATTERNS`.
        roster: a file of student ids; those without a submission are recorded as missing.

    Returns:
        The intake of each student (found, or on the roster), and the names that matched no
        pattern (recorded in ``unmatched.json``, listed in the summary and the CSV).
    """
    inbox = Path(inbox)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    by_student: dict[str, list[tuple[Upload, object]]] = {}
    raw_ids: dict[str, set[str]] = {}
    unmatched: list[str] = []
    for name, handle in _entries(inbox):
        upload = parse_name(name, pattern)
        if upload is None:
            # A name that is not valid UTF-8 (a folder copied from another system) is listed
            # with replacement characters rather than crashing the CSV.
            unmatched.append(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
            continue
        by_student.setdefault(upload.student, []).append((upload, handle))
        raw_ids.setdefault(upload.student, set()).add(_raw_student(name, pattern))
    archive = zipfile.ZipFile(inbox) if inbox.is_file() else None
    try:
        intakes = []
        for student, files in sorted(by_student.items()):
            intake = _store(course, student, files, archive, stamp)
            if len(raw_ids[student]) > 1:
                names = ", ".join(sorted(repr(r) for r in raw_ids[student]))
                intake.notes.append(
                    f"files of several ids ({names}) were merged into {student!r}: "
                    "check that they belong to one student"
                )
                _write_manifest(course, intake)
            intakes.append(intake)
    finally:
        if archive is not None:
            archive.close()
    if roster is not None:
        intakes += _roster_missing(course, roster, {i.student for i in intakes}, stamp)
        listed = set(read_roster(roster))
        for intake in intakes:
            if intake.student not in listed:
                intake.notes.append("not on the roster")
                _write_manifest(course, intake)
        intakes.sort(key=lambda i: i.student)
    _record_unmatched(course, unmatched)
    return intakes, unmatched


def _raw_student(name: str, pattern: str | None) -> str:
    for regex in [pattern] if pattern else list(PATTERNS.values()):
        m = re.fullmatch(regex, name)
        if m and m.groupdict().get("student"):
            return m.group("student")
    return name


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
            f"No roster at {path}\n"
            "  How to fix it: pass a text file with one student id a line (or a CSV whose first "
            "column is the id)."
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


def _roster_missing(course: CourseDir, roster: Path, present: set[str], stamp: str) -> list[Intake]:
    """Record every roster student who sent nothing (and was not collected before)."""
    missing = []
    for student in read_roster(roster):
        if student in present or (course.originals(student) / "manifest.json").is_file():
            continue
        intake = Intake(
            student=student,
            collected_at=stamp,
            notes=["no submission received (on the roster, nothing in the inbox)"],
        )
        _write_manifest(course, intake)
        missing.append(intake)
    return missing


def unmatched_path(course: CourseDir) -> Path:
    """Where the names that matched no pattern are recorded."""
    return course.own / "unmatched.json"


def _record_unmatched(course: CourseDir, names: list[str]) -> None:
    known = load_unmatched(course)
    merged = sorted(set(known) | set(names))
    if merged or unmatched_path(course).exists():
        course.own.mkdir(parents=True, exist_ok=True)
        unmatched_path(course).write_text(json.dumps(merged, indent=2), encoding="utf-8")


def load_unmatched(course: CourseDir) -> list[str]:
    """File names of every collect so far that matched no pattern (nobody's submission)."""
    path = unmatched_path(course)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _store(
    course: CourseDir,
    student: str,
    files: list[tuple[Upload, object]],
    archive: zipfile.ZipFile | None,
    stamp: str,
) -> Intake:
    folder = course.originals(student)
    folder.mkdir(parents=True, exist_ok=True)
    intake = Intake(student=student, collected_at=stamp)
    expected = f"{course.notebook}.ipynb"
    notebooks: list[tuple[Upload, str]] = []  # (upload, stored name)
    previous = folder / "manifest.json"
    if previous.exists():
        # Files from earlier collects stay listed: originals are never dropped.
        intake.files.update(json.loads(previous.read_text(encoding="utf-8"))["files"])
    for upload, handle in sorted(files, key=lambda f: f[0].order):
        uploaded = upload.file
        size = handle.file_size if isinstance(handle, zipfile.ZipInfo) else handle.stat().st_size  # type: ignore[union-attr]
        if size > MAX_FILE_BYTES:
            intake.notes.append(
                f"{upload.received_as}: larger than {MAX_FILE_BYTES >> 20} MB, not graded"
            )
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
        if uploaded.lower().endswith(".ipynb"):
            notebooks.append((upload, stored))
    if not notebooks:
        names = ", ".join(sorted(u.received_as for u, _ in files)) or "nothing"
        intake.notes.append(f"no notebook in the submission (received: {names})")
    else:
        exact = [n for n in notebooks if n[0].file == expected]
        upload, stored = (exact or notebooks)[-1]  # sorted oldest to newest: the latest
        intake.chosen = stored
        if not exact:
            intake.notes.append(
                f"wrong file name: received {upload.file!r}, expected {expected!r}; graded anyway"
            )
        if len(notebooks) > 1:
            # Another notebook uploaded after the expected one is a scratch file, not the answer.
            which = "the latest"
            if exact and len(exact) < len(notebooks):
                which = f"the latest named {expected!r}"
            intake.notes.append(f"{len(notebooks)} uploads; graded {which}: {upload.received_as!r}")
    _write_manifest(course, intake)
    submitted = course.submitted(student)
    if submitted.parent.exists():
        shutil.rmtree(submitted.parent)
    if intake.chosen is not None:
        submitted.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / intake.chosen, submitted)
        submitted.chmod(0o644)
    return intake


def _write_manifest(course: CourseDir, intake: Intake) -> None:
    folder = course.originals(intake.student)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    if manifest.exists():
        manifest.chmod(0o644)
    manifest.write_text(json.dumps(asdict(intake), indent=2), encoding="utf-8")


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
