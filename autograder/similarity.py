"""A class-wide similarity report of the code students wrote: for the instructor, never a score.

Per-task seeds make a forged record worthless unless the forger computes every answer; a
shared "answer in disguise" is then ordinary copying. ``autograde`` writes
``similarity.csv`` and ``similarity.html`` in the course folder:

- **near-identical answers**: for each answer cell, the code the student wrote (the cell
  minus the release's stub lines), normalised (comments, whitespace and string contents
  dropped; identifiers not in the released notebook renamed), fingerprinted with winnowed
  k-gram hashes (as MOSS does), and compared pairwise across students: Jaccard similarity
  at or above :data:`FLAG_SIMILARITY`, or an identical normalised cell of at least
  :data:`MIN_TOKENS` tokens, is listed;
- **grading internals**: student code (answer cells and cells the student added) that
  names the grader's internals (``course.grading_record``, the record folder...).

Everything a student controls is escaped: CSV cells cannot start a formula, the HTML is
``html.escape``d. Scores are not touched.
"""

from __future__ import annotations

import builtins
import csv
import hashlib
import html
import io
import itertools
import keyword
import re
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from autograder.coursedir import CourseDir
from course.notebooks import grade_id, source_of

#: Jaccard similarity of fingerprints at or above which two answers are listed.
FLAG_SIMILARITY = 0.9
#: Normalised tokens an answer needs before its similarity means anything.
MIN_TOKENS = 25
#: k-gram length and winnowing window (tokens).
K, WINDOW = 5, 4
#: What student code must not need to name.
INTERNALS = re.compile(
    r"grading_record|begin_task|record_task|RECORDERS|_BEGUN|COURSE_RECORD|record_dir"
    r"|\brecords\b|\bautograder\b|\bsolutions\b|\.pt['\"]"
)
#: First characters that make a spreadsheet read a cell as a formula. (A local equivalent of
#: the grading-intake branch's ``report.csv_cell``; use that one once both are merged.)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

COLUMNS = ("kind", "task", "student_a", "student_b", "similarity", "tokens", "detail")


@dataclass(frozen=True)
class Finding:
    """One row of the report."""

    kind: str  # "near-identical" | "identical" | "grading internals"
    task: str  # the answer cell's grade_id, or "(added cell)"
    student_a: str
    student_b: str
    similarity: float | None
    tokens: int
    detail: str


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text (formula starts get a ``'``)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def written_code(cell_source: str, stub_source: str) -> str:
    """The lines of an answer cell that are not lines of the released stub."""
    stub = {line.strip() for line in stub_source.splitlines() if line.strip()}
    return "\n".join(line for line in cell_source.splitlines() if line.strip() not in stub)


def normalise(code: str, vocabulary: frozenset[str]) -> list[str]:
    """Tokens of ``code`` with comments, layout and strings dropped and own names renamed.

    Keywords, builtins, attribute names and names of the released notebook (its imports and
    functions) are kept; every other identifier becomes ``V``, every string ``S``. Code that
    does not tokenize falls back to its words.
    """
    out: list[str] = []
    previous = ""
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            kind, text = token.type, token.string
            if kind in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER):
                continue
            if kind in (tokenize.INDENT, tokenize.DEDENT):
                continue
            if kind == tokenize.STRING or kind == getattr(tokenize, "FSTRING_START", -1):
                out.append("S")
            elif kind in (
                getattr(tokenize, "FSTRING_MIDDLE", -1),
                getattr(tokenize, "FSTRING_END", -1),
            ):
                continue
            elif kind == tokenize.NAME:
                keep = (
                    keyword.iskeyword(text)
                    or hasattr(builtins, text)
                    or previous == "."
                    or text in vocabulary
                )
                out.append(text if keep else "V")
            else:
                out.append(text)
            previous = text
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return code.split()
    return out


def fingerprints(tokens: Sequence[str]) -> frozenset[int]:
    """Winnowed hashes of the k-grams of ``tokens`` (all of them when the code is short)."""

    def digest(gram: Sequence[str]) -> int:
        data = "\x1f".join(gram).encode()
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")

    if len(tokens) <= K:
        return frozenset([digest(tokens)]) if tokens else frozenset()
    hashes = [digest(tokens[i : i + K]) for i in range(len(tokens) - K + 1)]
    if len(hashes) <= WINDOW:
        return frozenset([min(hashes)])
    return frozenset(min(hashes[i : i + WINDOW]) for i in range(len(hashes) - WINDOW + 1))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """|a & b| / |a | b| (0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def released_vocabulary(released: Any) -> frozenset[str]:
    """Names used by the released notebook's code (imports, function names, arguments)."""
    names: set[str] = set()
    for cell in released.cells:
        if cell.cell_type == "code":
            names.update(re.findall(r"[A-Za-z_]\w*", source_of(cell)))
    return frozenset(names)


def student_cells(nb: Any, stubs: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(answer grade_id -> written code, [(where, code) of every cell that runs student code])."""
    answers: dict[str, str] = {}
    runs: list[tuple[str, str]] = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        gid = grade_id(cell)
        if gid in stubs:
            answers[gid] = written_code(source_of(cell), stubs[gid])
            runs.append((gid, answers[gid]))
        elif gid is None:
            runs.append(("(added cell)", source_of(cell)))
    return answers, runs


def find_similar(answers: dict[str, dict[str, str]], vocabulary: frozenset[str]) -> list[Finding]:
    """Pairs of students whose answers to one task are identical or near-identical."""
    findings = []
    tasks = sorted({task for per in answers.values() for task in per})
    for task in tasks:
        prints = {}
        for student, per in sorted(answers.items()):
            tokens = normalise(per.get(task, ""), vocabulary)
            if len(tokens) >= MIN_TOKENS:
                prints[student] = (tuple(tokens), fingerprints(tokens))
        for (a, (tokens_a, fa)), (b, (tokens_b, fb)) in itertools.combinations(prints.items(), 2):
            if tokens_a == tokens_b:
                findings.append(
                    Finding("identical", task, a, b, 1.0, len(tokens_a), "same normalised code")
                )
                continue
            score = jaccard(fa, fb)
            if score >= FLAG_SIMILARITY:
                findings.append(
                    Finding(
                        "near-identical",
                        task,
                        a,
                        b,
                        round(score, 3),
                        min(len(tokens_a), len(tokens_b)),
                        "winnowed k-gram fingerprints",
                    )
                )
    return findings


def find_internals(runs: dict[str, list[tuple[str, str]]]) -> list[Finding]:
    """Student code that names the grader's internals (the recorder, the record folder)."""
    findings = []
    for student, cells in sorted(runs.items()):
        for where, code in cells:
            lines = [line.strip() for line in code.splitlines() if INTERNALS.search(line)]
            if lines:
                detail = " | ".join(lines[:3])[:300]
                findings.append(
                    Finding("grading internals", where, student, "", None, len(lines), detail)
                )
    return findings


def build_report(course: CourseDir) -> list[Finding]:
    """Findings over every collected submission of ``course``'s assignment."""
    released = nbformat.read(course.release_notebook, as_version=4)
    stubs = {
        grade_id(c): source_of(c)
        for c in released.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    }
    vocabulary = released_vocabulary(released)
    answers: dict[str, dict[str, str]] = {}
    runs: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((course.root / "submitted").glob(f"*/{course.assignment}/*.ipynb")):
        student = path.parent.parent.name
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # unreadable submissions are reported by grading itself
            continue
        answers[student], runs[student] = student_cells(nb, stubs)
    return find_similar(answers, vocabulary) + find_internals(runs)


def write_report(findings: Iterable[Finding], folder: Path) -> tuple[Path, Path]:
    """Write ``similarity.csv`` and ``similarity.html`` into ``folder``; return both paths."""
    rows = [
        [
            f.kind,
            f.task,
            f.student_a,
            f.student_b,
            "" if f.similarity is None else f"{f.similarity:.3f}",
            str(f.tokens),
            f.detail,
        ]
        for f in findings
    ]
    csv_path, html_path = folder / "similarity.csv", folder / "similarity.html"
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows([[csv_cell(v) for v in row] for row in rows])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>\n" for row in rows
    )
    note = (
        f"{len(rows)} finding(s). Answers compared after removing the release's stub, "
        f"comments, layout, strings and own names; listed at Jaccard >= {FLAG_SIMILARITY} "
        f"or identical, from {MIN_TOKENS} tokens. A report for the instructor: no score "
        "was changed."
    )
    html_path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Similarity report</title>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'\">"
        f"<h1>Similarity report</h1><p>{html.escape(note)}</p>"
        f"<table border='1'><tr>{head}</tr>\n{body}</table>\n",
        encoding="utf-8",
    )
    return csv_path, html_path


def write_similarity_report(course: CourseDir) -> Path:
    """Build and write the report of ``course``; returns the CSV's path."""
    return write_report(build_report(course), course.own)[0]
