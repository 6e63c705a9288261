"""``feedback``, ``export`` and the summary table printed after grading.

Everything a student reads (feedback pages, the CSV's reasons) goes through
:mod:`autograder.safe_html`: no student script runs in a page, no instructor path shows.
Everything a student controls (ids, file names, reasons) reaches the instructor's tools
encoded: every CSV cell through :func:`csv_cell` (no formula), everything printed through
:func:`printable` (no control character, so no forged row and no terminal escape).
"""

from __future__ import annotations

import csv
import html
import tempfile
import textwrap
import unicodedata
from pathlib import Path

from autograder.coursedir import CourseDir
from autograder.grade import Result
from autograder.intake import load_unmatched
from autograder.safe_html import instructor_paths, scrub_paths

CSV_FIELDS = (
    "student",
    "status",
    "score",
    "max_score",
    "autograded_max",
    "manual_pending",
    "percent",
    "reason",
    "sandbox",
)


#: First characters that make a spreadsheet read a cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Invisible characters that reorder text on a terminal (bidirectional controls).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text (formula starts get a ``'``)."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def printable(value: object) -> str:
    """``value`` with control characters escaped (``\\n``, ``\\x1b``...), fit for a terminal.

    Newlines, escape sequences and bidirectional controls in a student's file name or id
    cannot forge a row, clear the screen or retitle the window.
    """
    out = []
    for ch in str(value):
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def load_results(course: CourseDir) -> list[Result]:
    """The last autograde result of every student who has one, sorted by student.

    A result file that cannot be read becomes that student's ``error`` (the others load).
    """
    folder = course.own / "results"
    if not folder.is_dir():
        return []
    results = []
    for path in sorted(folder.glob("*.json")):
        try:
            results.append(Result.load(course, path.stem))
        except Exception:  # a damaged file: this student only
            results.append(
                Result(
                    path.stem,
                    "error",
                    reasons=["the grader's result file could not be read: grade again"],
                )
            )
    return results


def score_text(r: Result) -> str:
    """``18/20``, or ``18/20 (2 pending)`` while hand-graded points wait for the instructor."""
    score = f"{r.score:g}/{r.max_score:g}"
    return score + (f" ({r.manual_pending:g} pending)" if r.manual_pending else "")


def reason_text(r: Result) -> str:
    """One line: the failed tests by name first, then every other reason."""
    parts = []
    if r.failed_tests:
        parts.append("failed tests: " + ", ".join(sorted(r.failed_tests)))
    parts += r.reasons
    if not parts and r.status == "graded":
        parts.append("all tests passed")
    return "; ".join(parts)


def sandbox_text(r: Result) -> str:
    """``bubblewrap`` when the submission ran in the sandbox, else the "NOT sandboxed" note."""
    note = next((x for x in r.sandbox if x.startswith("NOT sandboxed")), None)
    if note:
        return note
    return "bubblewrap" if any("bubblewrap" in x for x in r.sandbox) else ""


_UNMATCHED_REASON = (
    "no student id in the file name, so it was not graded: rename it as the LMS does "
    "(or put it in a folder named after the student) and collect again, or pass --pattern"
)


def summary_table(
    results: list[Result], width: int = 100, unmatched: list[str] | None = None
) -> str:
    """A plain-text table: student, score/max, status, reason.

    Long reasons wrap onto further lines instead of being cut; files that matched no name
    pattern (``unmatched``) get a row each.
    """
    rows = [("student", "score/max", "status", "reason")]
    rows += [(r.student, score_text(r), r.status, reason_text(r)) for r in results]
    rows += [(name, "-", "unmatched", _UNMATCHED_REASON) for name in unmatched or []]
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    room = max(30, width - sum(widths) - 6)
    indent = " " * (sum(widths) + 6)
    lines = []
    for i, row in enumerate(rows):
        cells = "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True))
        wrapped = textwrap.wrap(row[3], room, break_long_words=False) or [""]
        lines.append(f"{cells}  {wrapped[0]}")
        lines += [indent + more for more in wrapped[1:]]
        if i == 0:
            lines.append("-" * min(width, len(lines[0]) + room))
    return "\n".join(lines)


def export_csv(course: CourseDir, path: Path | None = None) -> Path:
    """Write one row per student (and per unmatched file) to ``grades.csv``; return the path.

    ``score`` counts the points given so far; ``manual_pending`` are points of manually graded
    cells (the written answer) that wait for the instructor, so ``autograded_max`` is what
    autograding alone can reach. Re-export after manual grading to include them. ``reason``
    names the failed tests, then the other reasons, without instructor paths; ``sandbox`` says
    ``bubblewrap`` or why the submission was NOT sandboxed. Files whose
    name gave no student id have status ``unmatched`` and their file name as ``student``.
    """
    path = Path(path) if path else course.grades_csv
    results = load_results(course)
    if course.gradebook.is_file():
        refresh_scores(course, results)
    paths = instructor_paths(course.root)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in results:
            row = {
                "student": r.student,
                "status": r.status,
                "score": f"{r.score:g}",
                "max_score": f"{r.max_score:g}",
                "autograded_max": f"{r.max_score - r.manual_pending:g}",
                "manual_pending": f"{r.manual_pending:g}",
                "percent": f"{100 * r.score / r.max_score:.1f}" if r.max_score else "0.0",
                "reason": scrub_paths(reason_text(r), paths),
                "sandbox": sandbox_text(r),
            }
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
        for name in load_unmatched(course):
            row = {
                "student": name,
                "status": "unmatched",
                "score": "",
                "max_score": "",
                "autograded_max": "",
                "manual_pending": "",
                "percent": "",
                "reason": _UNMATCHED_REASON,
                "sandbox": "",
            }
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return path


def refresh_scores(course: CourseDir, results: list[Result]) -> None:
    """Re-read scores from the gradebook (they change when the instructor grades by hand)."""
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.coursedir import COURSE_ID
    from autograder.grade import read_scores

    with Gradebook(course.db_url, COURSE_ID) as gb:
        for r in results:
            try:
                read_scores(gb, course, r.student, r)
            except MissingEntry:
                continue
            r.save(course)


def feedback(course: CourseDir, *, seconds: float | None = None) -> list[Path]:
    """Write one HTML feedback file per student; return their paths.

    Each page is built on its own (:mod:`autograder.feedback_page`): the student's autograded
    notebook is rendered with nbgrader's feedback template and sanitized in a child process
    with a time and memory bound; the grader's banner (score and every reason) is added by this
    process above it, outside the frame that holds the student's content. A notebook that
    cannot be shown, and a submission that could not be run at all, get a plain page saying
    why. One page failing never affects another.

    Args:
        seconds: time limit per page (default :data:`autograder.feedback_page.PAGE_SECONDS`).
    """
    results = load_results(course)
    pending: dict[str, list[str]] = {}
    if course.gradebook.is_file():
        refresh_scores(course, results)
        pending = pending_cells(course, [r.student for r in results])
    paths = instructor_paths(course.root)
    with tempfile.TemporaryDirectory(prefix="feedback-pages-") as scratch:
        return [_write_page(course, r, paths, pending, Path(scratch), seconds) for r in results]


def _write_page(
    course: CourseDir,
    r: Result,
    paths: dict[str, str],
    pending: dict[str, list[str]],
    scratch: Path,
    seconds: float | None = None,
) -> Path:
    """Build and write one student's page (see :func:`feedback`); return its path."""
    from autograder import feedback_page

    path = course.feedback(r.student)
    built = None
    notebook = course.autograded(r.student)
    if notebook.is_file():
        job = feedback_page.PageJob(
            notebook=str(notebook),
            out=feedback_page.scratch_file(scratch, r.student),
            db_url=course.db_url,
            assignment=course.assignment,
            notebook_name=course.notebook,
            student=r.student,
            paths=paths,
            pending=pending.get(r.student, []),
        )
        try:
            built = feedback_page.build(job, seconds or feedback_page.PAGE_SECONDS)
        finally:
            Path(job.out).unlink(missing_ok=True)
    if path.exists():
        path.chmod(0o644)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page(r, course, paths, built), encoding="utf-8")
    return path


def pending_cells(course: CourseDir, students: list[str]) -> dict[str, list[str]]:
    """Student -> grade ids of manually graded cells the instructor has not graded yet."""
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.coursedir import COURSE_ID

    out: dict[str, list[str]] = {}
    with Gradebook(course.db_url, COURSE_ID) as gb:
        for student in students:
            try:
                sub = gb.find_submission(course.assignment, student)
            except MissingEntry:
                continue
            out[student] = [
                g.name for nb in sub.notebooks for g in nb.grades if g.needs_manual_grade
            ]
    return out


_BANNER_STYLE = (
    "<style>.ag-grader{border:3px double #1a4d8f;background:#eef3fa;padding:1em;margin:1em;"
    "font-family:sans-serif}.ag-grader .ag-mark{font-size:small;color:#1a4d8f}"
    ".ag-student{border:2px dashed #999;margin:1em;padding:0 1em 1em}"
    ".ag-student-label{font-family:sans-serif;font-size:small;color:#555;margin:.5em 0}"
    ".ag-plain{white-space:pre-wrap}</style>\n"
)


def _banner(r: Result, paths: dict[str, str]) -> str:
    def esc(text: str) -> str:
        return html.escape(scrub_paths(text, paths))

    items = "".join(f"<li>{esc(x)}</li>" for x in r.reasons)
    failed = "".join(
        f"<li><code>{esc(k)}</code>: {esc(v)}</li>" for k, v in sorted(r.failed_tests.items())
    )
    score = f"Score: {r.score:g} / {r.max_score:g} ({html.escape(r.status)})"
    if r.manual_pending:
        score += f"; {r.manual_pending:g} of these points are graded by hand: pending"
    return (
        '<header class="ag-grader" role="banner" aria-label="The grader\'s result">'
        '<p class="ag-mark">From the autograder (not part of your notebook)</p>'
        f"<h2>{score}</h2>"
        + (f"<h3>Tests that lost points</h3><ul>{failed}</ul>" if failed else "")
        + (f"<h3>Notes from the grader</h3><ul>{items}</ul>" if items else "")
        + "</header>"
    )


def _page(r: Result, course: CourseDir, paths: dict[str, str], built: object = None) -> str:
    """The whole page: trusted head and banner; the student's content in a labelled frame."""
    from autograder.safe_html import page_head

    title = f"Feedback: {course.assignment} ({r.student})"
    name = html.escape(course.notebook) + ".ipynb"
    styles = getattr(built, "styles", "") or ""
    body = getattr(built, "body", "") or ""
    problem = getattr(built, "problem", "") or ""
    if body:
        content = (
            '<section class="ag-student" aria-label="Your notebook">'
            '<p class="ag-student-label">Your notebook as the grader ran it. Everything in '
            "this frame comes from your notebook; your score is the one above.</p>"
            f"{body}</section>"
        )
    elif built is not None:
        content = (
            f'<p class="ag-plain">Your notebook is not shown here: {html.escape(problem)}. '
            "Your score and the grader's notes above are complete.</p>"
        )
    elif r.status == "missing":
        content = (
            "<p>No notebook was received from you, so no test could give points. Submit "
            f"<code>{name}</code>; check it first with "
            f"<code>python -m course.check {name}</code>.</p>"
        )
    else:
        content = (
            "<p>Your notebook could not be run, so no test could give points. Fix the problem "
            f"above, then run <code>python -m course.check {name}</code> before you submit "
            "again.</p>"
        )
    return (
        f"<!DOCTYPE html>\n<html>{page_head(title, styles + _BANNER_STYLE)}\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{_banner(r, paths)}\n{content}\n"
        "</body></html>\n"
    )
