"""``feedback``, ``export`` and the summary table printed after grading.

Everything a student reads (feedback pages, the CSV's reasons) goes through
:mod:`autograder.safe_html`: no student script runs in a page, no instructor path shows.
"""

from __future__ import annotations

import csv
import html
import textwrap
from pathlib import Path

from autograder.coursedir import CourseDir, nbgrader_config
from autograder.grade import Result
from autograder.intake import load_unmatched
from autograder.safe_html import instructor_paths, sanitize_page, scrub_paths

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


def load_results(course: CourseDir) -> list[Result]:
    """The last autograde result of every student who has one, sorted by student."""
    folder = course.own / "results"
    if not folder.is_dir():
        return []
    return [Result.load(course, p.stem) for p in sorted(folder.glob("*.json"))]


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
            writer.writerow(
                {
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
            )
        for name in load_unmatched(course):
            writer.writerow(
                {
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
            )
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


def feedback(course: CourseDir) -> list[Path]:
    """Write one HTML feedback file per student; return their paths.

    Graded notebooks go through nbgrader's ``GenerateFeedback`` (with
    :class:`autograder.safe_html.SanitizeOutputs` after its ``GetGrades``); a banner with the
    score and every reason is added on top, and the page is sanitized
    (:func:`autograder.safe_html.sanitize_page`). Submissions that could not be run at all get a
    page of their own with the reason and what to do.
    """
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades

    from autograder.safe_html import SanitizeOutputs

    results = load_results(course)
    refresh_scores(course, results)
    paths = instructor_paths(course.root)
    graded = [r for r in results if course.autograded(r.student).is_file()]
    if graded:
        config = nbgrader_config(course)
        config.GenerateFeedback.preprocessors = [
            GetGrades,
            SanitizeOutputs,
            CSSHTMLHeaderPreprocessor,
        ]
        config.SanitizeOutputs.paths = paths
        config.SanitizeOutputs.pending = pending_cells(course, [r.student for r in graded])
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = course.assignment
        converter = GenerateFeedback(coursedir=coursedir, config=config)
        converter.force = True
        converter.start()
    out = []
    for r in results:
        path = course.feedback(r.student)
        if path.is_file():
            path.chmod(0o644)
            text = sanitize_page(path.read_text(encoding="utf-8"), paths)
            text = text.replace("<body>", "<body>\n" + _banner(r, paths), 1)
            text = text.replace("</head>", _BANNER_STYLE + "</head>", 1)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = _page(r, course, paths)
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out


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
    "<style>#autograder-summary{border:2px solid #888;padding:1em;margin:1em;"
    "font-family:sans-serif}</style>\n"
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
        f'<div id="autograder-summary"><h2>{score}</h2>'
        + (f"<h3>Tests that lost points</h3><ul>{failed}</ul>" if failed else "")
        + (f"<h3>Notes from the grader</h3><ul>{items}</ul>" if items else "")
        + "</div>"
    )


def _page(r: Result, course: CourseDir, paths: dict[str, str]) -> str:
    title = f"Feedback: {course.assignment} ({r.student})"
    name = html.escape(course.notebook) + ".ipynb"
    if r.status == "missing":
        advice = (
            "No notebook was received from you, so no test could give points. Submit "
            f"<code>{name}</code>; check it first with "
            f"<code>python -m course.check {name}</code>."
        )
    else:
        advice = (
            "Your notebook could not be run, so no test could give points. Fix the problem "
            f"above, then run <code>python -m course.check {name}</code> before you submit "
            "again."
        )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{_BANNER_STYLE}</head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n{_banner(r, paths)}\n<p>{advice}</p>\n"
        "</body></html>\n"
    )
