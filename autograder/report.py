"""``feedback``, ``export`` and the summary table printed after grading."""

from __future__ import annotations

import csv
import html
from pathlib import Path

from autograder.coursedir import CourseDir, nbgrader_config
from autograder.grade import Result

CSV_FIELDS = (
    "student",
    "status",
    "score",
    "max_score",
    "autograded_max",
    "manual_pending",
    "percent",
    "reason",
)


def load_results(course: CourseDir) -> list[Result]:
    """The last autograde result of every student who has one, sorted by student."""
    folder = course.root / "results"
    if not folder.is_dir():
        return []
    return [Result.load(course, p.stem) for p in sorted(folder.glob("*.json"))]


def summary_table(results: list[Result], width: int = 100) -> str:
    """A plain-text table: student, score/max, status, reason."""
    rows = [("student", "score/max", "status", "reason")]
    for r in results:
        score = f"{r.score:g}/{r.max_score:g}"
        if r.manual_pending:
            score += f" ({r.manual_pending:g} manual)"
        reason = r.reason or ("all tests passed" if not r.failed_tests else "")
        if r.failed_tests:
            failed = ", ".join(sorted(r.failed_tests))
            reason = f"failed: {failed}" + (f"; {reason}" if reason else "")
        rows.append((r.student, score, r.status, reason))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    room = max(20, width - sum(widths) - 6)
    lines = []
    for i, row in enumerate(rows):
        reason = row[3] if len(row[3]) <= room else row[3][: room - 3] + "..."
        cells = "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True))
        lines.append(f"{cells}  {reason}")
        if i == 0:
            lines.append("-" * min(width, len(lines[0]) + room))
    return "\n".join(lines)


def export_csv(course: CourseDir, path: Path | None = None) -> Path:
    """Write one row per graded student to ``grades.csv`` (or ``path``); return the path.

    ``score`` counts the points given so far; ``manual_pending`` are points of manually graded
    cells (the written answer) that wait for the instructor, so ``autograded_max`` is what
    autograding alone can reach. Re-export after manual grading to include them.
    """
    path = Path(path) if path else course.grades_csv
    results = load_results(course)
    if course.gradebook.is_file():
        refresh_scores(course, results)
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
                    "reason": r.reason,
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

    Graded notebooks go through nbgrader's ``GenerateFeedback``; a banner with the score and
    every reason is added on top. Submissions that could not be run at all get a page of their
    own with the reason and what to do.
    """
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    results = load_results(course)
    refresh_scores(course, results)
    graded = [r for r in results if course.autograded(r.student).is_file()]
    if graded:
        config = nbgrader_config(course)
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = course.assignment
        converter = GenerateFeedback(coursedir=coursedir, config=config)
        converter.force = True
        converter.start()
    paths = []
    for r in results:
        path = course.feedback(r.student)
        if path.is_file():
            path.chmod(0o644)
            text = path.read_text(encoding="utf-8")
            text = text.replace("<body>", "<body>\n" + _banner(r), 1)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = _page(r, course)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def _banner(r: Result) -> str:
    items = "".join(f"<li>{html.escape(x)}</li>" for x in r.reasons)
    failed = "".join(
        f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>"
        for k, v in sorted(r.failed_tests.items())
    )
    manual = (
        f"<p>{r.manual_pending:g} point(s) are graded by hand and not counted yet.</p>"
        if r.manual_pending
        else ""
    )
    return (
        '<div id="autograder-summary" style="border:2px solid #888;padding:1em;margin:1em;'
        'font-family:sans-serif">'
        f"<h2>Score: {r.score:g} / {r.max_score:g} ({html.escape(r.status)})</h2>{manual}"
        + (f"<h3>Tests that lost points</h3><ul>{failed}</ul>" if failed else "")
        + (f"<h3>Notes from the grader</h3><ul>{items}</ul>" if items else "")
        + "</div>"
    )


def _page(r: Result, course: CourseDir) -> str:
    title = f"Feedback: {course.assignment} ({r.student})"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n{_banner(r)}\n"
        "<p>Your notebook could not be run, so no test could give points. Fix the problem "
        "above, then run <code>python -m course.check "
        f"{html.escape(course.notebook)}.ipynb</code> before you submit again.</p>\n"
        "</body></html>\n"
    )
