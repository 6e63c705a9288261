"""``collect``: bring submissions into the course directory without ever changing them.

Accepted inputs: a folder, or a zip as an LMS exports it. Names are read by
:mod:`autograder.lms_names` (the student id and the uploaded file name; ``--pattern REGEX``
replaces its patterns). LMS re-upload suffixes (``-1``, `` (1)``) are removed from the file
name before it is compared with the expected name.

**The latest upload wins** (order: :mod:`autograder.lms_names`); the reasons say which
("3 uploads; graded the latest: ...").

A file whose name matches no pattern is never dropped silently: it is recorded in
``unmatched.json`` and listed in the summary and the grades CSV (status ``unmatched``). With
``--roster FILE`` every student on the roster without a submission is recorded as ``missing``.

Every file is copied byte for byte into ``originals/<student>/`` (read-only) with a
``manifest.json`` of SHA-256 hashes; the notebook to grade is copied from there into
``submitted/``. Nothing in the input folder or zip is touched.

**One file never stops the batch.** Each file is read and stored on its own: a zip entry
that cannot be read (a lying size header, a bad checksum, an encrypted entry) or unpacks to
more than :data:`MAX_FILE_BYTES` (read at most that far: a zip bomb costs nothing), a file
name no file system takes, a symbolic link in a folder inbox: each is refused with a note in
that student's reasons, and the student's other files are collected.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from autograder.coursedir import CourseDir
from autograder.lms_names import (
    PATTERNS,
    Upload,
    assign_ids,
    match_name,
    parse_name,
    read_roster,
    safe_filename,
    safe_id,
)
from course.errors import explain

__all__ = [
    "PATTERNS",
    "Intake",
    "Upload",
    "collect",
    "load_intake",
    "load_unmatched",
    "match_name",
    "parse_name",
    "read_roster",
    "safe_id",
    "sha256",
    "verify_originals",
]

_SKIP = ("__MACOSX/", ".DS_Store", ".ipynb_checkpoints/")
#: A notebook larger than this is not graded (saved outputs can be huge; grading clears them,
#: but reading a multi-GB file would stall the batch). Zip entries are read at most this far.
MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass
class Intake:
    """What was received from one student, and what will be graded."""

    student: str
    files: dict[str, str] = field(default_factory=dict)  # stored name -> sha256
    chosen: str | None = None
    notes: list[str] = field(default_factory=list)
    collected_at: str = ""
    lms_name: str = ""  # the student part of the file names, as the LMS wrote it

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


def _entries(inbox: Path) -> list[tuple[str, object]]:
    """(name to match, handle) for every file in a folder or zip, in a stable order.

    In a zip, one folder holding everything (the export's own wrapper: every entry at least two
    folders deep, in several student folders) is dropped from the names; nothing else is, so a
    folder always belongs to its top-level owner.
    """
    if inbox.is_file() and zipfile.is_zipfile(inbox):
        with zipfile.ZipFile(inbox) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
        infos = [i for i in infos if not any(s in i.filename for s in _SKIP)]
        split = [[p for p in i.filename.split("/") if p not in ("", ".")] for i in infos]
        tops = {parts[0] for parts in split if parts}
        seconds = {parts[1] for parts in split if len(parts) > 1}
        wrapper = len(tops) == 1 and len(seconds) > 1 and all(len(p) >= 3 for p in split)
        out = []
        for info, parts in zip(infos, split, strict=True):
            parts = parts[1:] if wrapper else parts
            if parts:
                out.append(("/".join(parts), info))
        return sorted(out, key=lambda e: e[0])
    if inbox.is_dir():
        files = [p for p in inbox.rglob("*") if p.is_file() or p.is_symlink()]
        files = [p for p in files if not any(s in p.as_posix() for s in _SKIP)]
        return sorted(((p.relative_to(inbox).as_posix(), p) for p in files), key=lambda e: e[0])
    raise FileNotFoundError(
        explain(
            f"Nothing to collect at {inbox}", "pass a folder of notebooks or an LMS zip export."
        )
    )


def shown_name(name: str) -> str:
    """A received name as text that the CSV and JSON can hold (bad UTF-8 replaced)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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
    by_raw: dict[str, list[tuple[Upload, object]]] = {}
    unmatched: list[str] = []
    for name, handle in _entries(inbox):
        upload = parse_name(name, pattern)
        if upload is None:
            # A name that is not valid UTF-8 (a folder copied from another system) is listed
            # with replacement characters rather than crashing the CSV.
            unmatched.append(shown_name(name))
            continue
        by_raw.setdefault(upload.lms_name, []).append((upload, handle))
    ids = assign_ids(by_raw, _owners(course, {safe_id(raw) for raw in by_raw}))
    by_student: dict[str, list[tuple[Upload, object]]] = {}
    for raw, files in by_raw.items():
        by_student.setdefault(ids[raw], []).extend(files)
    archive = zipfile.ZipFile(inbox) if inbox.is_file() else None
    try:
        intakes = []
        for student, files in sorted(by_student.items()):
            raw = files[0][0].lms_name
            intake = _store(course, student, files, archive, stamp, shown_name(raw))
            kept_apart = sorted(r for r in by_raw if safe_id(r) == safe_id(raw) and r != raw)
            if kept_apart or ids[raw] != safe_id(raw):
                others = ", ".join(repr(shown_name(r)) for r in kept_apart) or "an earlier one"
                intake.notes.append(
                    f"the LMS name {shown_name(raw)!r} and {others} give the same folder name: "
                    f"kept apart, this one is stored as {student!r}"
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


def _owners(course: CourseDir, ids: set[str]) -> dict[str, str]:
    """id -> LMS name an earlier collect gave it to (from the manifests), for ``ids``."""
    owners = {}
    for sid in ids:
        try:
            owners[sid] = load_intake(course, sid).lms_name or sid
        except (OSError, ValueError, TypeError):
            continue
    return owners


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
    lms_name: str = "",
) -> Intake:
    folder = course.originals(student)
    folder.mkdir(parents=True, exist_ok=True)
    intake = Intake(student=student, collected_at=stamp, lms_name=lms_name)
    expected = f"{course.notebook}.ipynb"
    notebooks: list[tuple[Upload, str]] = []  # (upload, stored name)
    previous = folder / "manifest.json"
    if previous.exists():
        # Files from earlier collects stay listed: originals are never dropped.
        try:
            intake.files.update(json.loads(previous.read_text(encoding="utf-8"))["files"])
        except (OSError, ValueError, KeyError, TypeError):
            intake.notes.append("the earlier manifest.json could not be read; started afresh")
    for upload, handle in sorted(files, key=lambda f: f[0].order):
        incoming = folder / ".incoming"
        try:
            refused = _copy_in(handle, archive, incoming)
            if refused:
                intake.notes.append(f"{shown_name(upload.received_as)!r}: {refused}")
                continue
            digest = sha256(incoming)
            stored = next((n for n, h in intake.files.items() if h == digest), None)
            if stored is None:
                target = _free_name(folder / safe_filename(upload.file))
                incoming.rename(target)
                target.chmod(stat.S_IRUSR | stat.S_IRGRP)
                stored = target.name
                intake.files[stored] = digest
        except OSError as error:  # one file the disk refuses: that file only
            intake.notes.append(
                f"{shown_name(upload.received_as)!r}: could not be stored "
                f"({error.strerror or type(error).__name__}), not graded"
            )
            continue
        finally:
            incoming.unlink(missing_ok=True)
        if upload.file.lower().endswith(".ipynb"):
            notebooks.append((upload, stored))
    if not notebooks:
        names = ", ".join(sorted(shown_name(u.received_as) for u, _ in files)) or "nothing"
        intake.notes.append(f"no notebook in the submission (received: {names})")
    else:
        exact = [n for n in notebooks if n[0].file == expected]
        upload, stored = (exact or notebooks)[-1]  # sorted oldest to newest: the latest
        intake.chosen = stored
        if not exact:
            intake.notes.append(
                f"wrong file name: received {shown_name(upload.file)!r}, expected {expected!r}; "
                "graded anyway"
            )
        if len(notebooks) > 1:
            # Another notebook uploaded after the expected one is a scratch file, not the answer.
            which = "the latest"
            if exact and len(exact) < len(notebooks):
                which = f"the latest named {expected!r}"
            intake.notes.append(
                f"{len(notebooks)} uploads; graded {which}: {shown_name(upload.received_as)!r}"
            )
    _write_manifest(course, intake)
    submitted = course.submitted(student)
    if submitted.parent.exists():
        shutil.rmtree(submitted.parent)
    if intake.chosen is not None:
        submitted.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / intake.chosen, submitted)
        submitted.chmod(0o644)
    return intake


def _copy_in(handle: object, archive: zipfile.ZipFile | None, target: Path) -> str | None:
    """Copy one received file to ``target``, reading at most :data:`MAX_FILE_BYTES` + 1 bytes.

    Returns why the file was refused (the rest of the batch goes on), or None when copied.
    """
    limit = MAX_FILE_BYTES
    too_big = f"larger than {limit >> 20} MB, not graded"
    if isinstance(handle, zipfile.ZipInfo):
        if handle.file_size > limit:
            return too_big
        try:
            with archive.open(handle) as src, open(target, "wb") as dst:  # type: ignore[union-attr]
                copied = _bounded_copy(src, dst, limit)
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as e:
            # A lying size header, a bad CRC, an encrypted entry, an unknown compression.
            first = (str(e).splitlines() or [type(e).__name__])[0][:120]
            return f"could not be read from the zip ({first}), not graded"
        return too_big if copied > limit else None
    path = Path(handle)  # type: ignore[arg-type]
    if path.is_symlink():
        return "a symbolic link, not a file: not collected"
    if path.stat().st_size > limit:
        return too_big
    with open(path, "rb") as src, open(target, "wb") as dst:
        copied = _bounded_copy(src, dst, limit)
    return too_big if copied > limit else None


def _bounded_copy(src: object, dst: object, limit: int) -> int:
    """Copy at most ``limit + 1`` bytes; return how many were copied."""
    copied = 0
    while copied <= limit:
        block = src.read(min(1 << 20, limit + 1 - copied))  # type: ignore[attr-defined]
        if not block:
            break
        dst.write(block)  # type: ignore[attr-defined]
        copied += len(block)
    return copied


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
    raise OSError(0, f"more than 1000 files named {path.name}")


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
