"""Grade one submission: prepare (trusted), run in the sandbox (untrusted), score (trusted).

1. The submitted notebook is checked for readability and compared with the release (deleted,
   edited and unanswered cells become reasons), then prepared with nbgrader's non-executing
   preprocessors (:mod:`autograder.prepare`).
2. It runs in the sandbox (:mod:`autograder.sandbox_run`); its hidden test cells record what
   the student's functions return on inputs built from a seed chosen here for this run.
3. The records are compared with the reference (:mod:`autograder.scoring`, the exercise's
   checks). Scores come only from that comparison, never from the notebook's outputs.

Nothing here writes the gradebook: :mod:`autograder.grade` (one writer) does, with the
:class:`Graded` this returns.
"""

from __future__ import annotations

import copy
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

from autograder.coursedir import CourseDir
from autograder.intake import load_intake
from autograder.limits import Limits, Sandbox
from autograder.prepare import PreparationError, prepare_notebook
from autograder.results import Result
from autograder.sandbox_run import (
    EXECUTED,
    MAX_NOTEBOOK_BYTES,
    RECORDS,
    RunOutcome,
    run_notebook,
)
from autograder.scoring import Check, Verdict, score_all
from autograder.tasks import Task, cell_prefixes, draw_seeds, tasks_for
from course.errors import CourseError
from course.notebooks import CHECK_KEY, cell_errors, grade_id, readability_problem, review

#: Output types kept from the kernel in the autograded notebook (no HTML, no JavaScript).
SAFE_MIME = ("text/plain", "image/png", "image/jpeg")


@dataclass(frozen=True)
class Assignment:
    """What grading needs to know about the assignment, read once before grading starts."""

    db_url: str  # a read-only snapshot of the gradebook (instructor cells)
    released: NotebookNode
    checks: Mapping[str, Check]
    tests: dict[str, float]  # autograded test cells: grade_id -> points
    manual: dict[str, float]  # hand-graded cells: grade_id -> points


@dataclass
class Graded:
    """A result, plus what the gradebook writer needs (None: nothing was scored)."""

    result: Result
    verdicts: dict[str, Verdict] | None = None
    notebook: NotebookNode | None = None
    manual_answered: set[str] = field(default_factory=set)


def grade_submission(
    course: CourseDir,
    student: str,
    assignment: Assignment,
    *,
    limits: Limits,
    box: Sandbox,
    threads: int,
) -> Graded:
    """Grade ``student``'s collected submission; every failure becomes a status and reason."""
    started = time.monotonic()
    result = Result(student=student, status="graded", sandbox=box.enforced + box.notes)
    graded = Graded(result)
    intake = load_intake(course, student)
    result.reasons += intake.notes
    if intake.missing:
        result.status = "missing"
        return graded
    data = course.submitted(student).read_bytes()
    problem = readability_problem(data)
    if problem:
        result.status = "invalid"
        result.reasons.append(problem)
        return graded
    submitted = nbformat.reads(data.decode("utf-8"), as_version=4)
    # Copies of graded cells (Jupyter copy and paste) and student-added graded cells become
    # ordinary cells; course.check makes the same call, so it predicts this exactly.
    reviewed = review(assignment.released.metadata.get(CHECK_KEY, {}), submitted)
    changes = reviewed.changes
    result.reasons += [f.reason for f in reviewed.fixes]
    result.reasons += [change_reason(c) for c in changes]
    # Deleted answer and locked cells come back as released (nbgrader's add_missing_cells
    # restores test cells, and needs the answer cell before each one to be there).
    restore_cells(submitted, assignment.released)
    try:
        prepared = prepare_notebook(
            submitted, assignment.db_url, course.assignment, course.notebook
        )
    except PreparationError as error:
        result.status = "invalid"
        result.reasons.append(str(error))
        return graded
    scratch = course.work / student
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    # One fresh secret seed per task (contract C1): the kernel learns a task's seed only when
    # the driver prepends it to that task's test cell. An assignment without a task table (a
    # course's own exercise) keeps the single seed in the kernel's environment.
    tasks = task_table(course.assignment)
    if tasks:
        seeds: int | dict[str, int] = draw_seeds(tasks)
        prefixes, legacy_seed = cell_prefixes(tasks, seeds), None
        result.seeds = dict(seeds)
    else:
        seeds = legacy_seed = secrets.randbelow(2**31 - 1)
        prefixes, result.seed = None, legacy_seed
    try:
        outcome = run_notebook(
            scratch,
            prepared,
            limits=limits,
            box=box,
            seed=legacy_seed,
            threads=threads,
            course_root=course.root,
            cell_prefix=prefixes,
        )
        stopped = outcome_reason(outcome, limits, scratch)
        if stopped:
            result.status, reason = stopped
            result.reasons.append(reason)
            keep_log(scratch / "runner.log", course.result(student).with_suffix(".log"))
        else:
            graded.verdicts = score_all(
                assignment.checks, assignment.tests, scratch / RECORDS, seeds
            )
            result.failed_tests = {
                gid: v.message for gid, v in graded.verdicts.items() if not v.passed
            }
            result.reasons += run_errors(prepared, outcome)
            if outcome.limit:  # a process of it was stopped by a bound; the rest went on
                result.reasons.append(limit_reason(outcome, limits))
            # A written answer deleted or left as the stub has nothing to grade by hand.
            blank = {c.grade_id for c in changes if c.change in ("deleted", "unanswered")}
            graded.manual_answered = set(assignment.manual) - blank
        graded.notebook = autograded_notebook(prepared, outcome, graded.verdicts, limits)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result.seconds = round(time.monotonic() - started, 2)
    return graded


def task_table(assignment: str) -> tuple[Task, ...]:
    """``assignment``'s task table, or () for an exercise that registered none."""
    try:
        return tasks_for(assignment)
    except KeyError:
        return ()


def keep_log(log: Path, target: Path, limit: int = 20_000) -> None:
    """Keep the end of the runner's log for the instructor (never shown to the student)."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - limit))
            tail = handle.read()
    except OSError:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(tail)


def change_reason(change: object) -> str:
    """A student-readable reason for one deleted, edited or unanswered cell."""
    gid, kind, what = change.grade_id, change.kind, change.change  # type: ignore[attr-defined]
    if what == "unanswered":
        return f"{gid} is still the released stub (not answered)"
    if what == "deleted":
        if kind in ("answer", "task"):
            return f"answer cell {gid} was deleted; graded as unanswered"
        return f"{kind} cell {gid} was deleted; restored and graded"
    return f"{kind} cell {gid} was edited; the original was restored and graded"


def restore_cells(nb: NotebookNode, released: NotebookNode) -> None:
    """Put back deleted answer cells (as released: the stub) and locked cells, in place.

    Each goes after the nearest earlier cell of the release that the notebook still has.
    """
    present = {grade_id(c) for c in nb.cells if grade_id(c)}
    position = 0
    for cell in released.cells:
        gid = grade_id(cell)
        if gid in present:
            position = next(i for i, c in enumerate(nb.cells) if grade_id(c) == gid) + 1
            continue
        meta = cell.metadata.get("nbgrader", {})
        answer = meta.get("solution")
        locked = meta.get("locked") and not meta.get("grade")
        if gid and (answer or locked):
            nb.cells.insert(position, copy.deepcopy(cell))
            position += 1


#: What each submission-wide bound means to a student (the run's ``limit``).
LIMIT_REASONS = {
    "memory": "the submission went over its memory cap of {memory_mb} MiB (all its processes "
    "together, files in /tmp included)",
    "processes": "the submission tried to run more than {max_processes} processes or threads "
    "at once (its process cap)",
    "disk": "the submission wrote more than {disk_mb} MiB into its folder (its disk cap)",
}


def limit_reason(outcome: RunOutcome, limits: Limits) -> str:
    """The student-readable line for the bound the run hit ("" when none)."""
    text = LIMIT_REASONS.get(outcome.limit, "")
    return text.format(**limits.to_dict()) if text else ""


def outcome_reason(
    outcome: RunOutcome, limits: Limits, scratch: Path | None = None
) -> tuple[str, str] | None:
    """(status, reason) when the run ended without a notebook to score, else None.

    ``scratch`` (the run's folder) lets the reason name the true cause when the executed
    notebook exists but is over the size the grader reads back.
    """
    hit = limit_reason(outcome, limits)
    if hit and (outcome.limit == "disk" or outcome.state != "ok" or outcome.executed is None):
        return "crashed", f"{hit}; it was stopped there"
    if outcome.state == "timeout":
        return "timeout", (
            f"grading took longer than {limits.submission_timeout} s and was stopped: "
            "look for a loop that never ends or a cell that trains for too long"
        )
    if outcome.state == "dead":
        return "crashed", (
            "the Python kernel died while running the notebook (os._exit, a crash, or the "
            "memory cap); nothing after that point could be graded"
        )
    if outcome.state == "unresponsive":
        return "crashed", (
            f"the kernel stopped responding ({outcome.detail or 'a cell'} ran past the "
            f"{limits.cell_timeout} s limit and ignored the interrupt: an endless loop that "
            "catches KeyboardInterrupt?), so grading stopped there"
        )
    executed = scratch / EXECUTED if scratch is not None else None
    if outcome.executed is None and executed is not None and _size(executed) > MAX_NOTEBOOK_BYTES:
        return "crashed", (
            f"the notebook with its outputs is {_size(executed) / 2**20:.0f} MB, over the "
            f"{MAX_NOTEBOOK_BYTES >> 20} MB the grader reads back, so it could not be scored: "
            "remove large outputs and pasted data (print less, do not display whole tensors) "
            "and submit again"
        )
    if outcome.state != "ok" or outcome.executed is None:
        detail = f": {outcome.detail}" if outcome.detail else ""
        return "crashed", (
            f"the notebook could not be run to its end (exit code {outcome.exit_code}; "
            f"memory cap {limits.memory_mb} MiB?){detail}"
        )
    return None


def _size(path: Path) -> int:
    try:
        return 0 if path.is_symlink() else path.stat().st_size
    except OSError:
        return 0


def run_errors(prepared: NotebookNode, outcome: RunOutcome, limit: int = 3) -> list[str]:
    """Errors in cells that are not tests (they explain why later tests failed)."""
    notes = []
    timed_out = set(outcome.timed_out)
    tests = {i for i, c in enumerate(prepared.cells) if c.metadata.get("nbgrader", {}).get("grade")}
    for error in cell_errors(outcome.executed or {"cells": []}):
        if error.index in tests:
            continue
        if error.index in timed_out:
            notes.append(f"cell {error.index} ran past the per-cell time limit and was stopped")
        else:
            notes.append(f"cell {error.index} raised {error.line}")
    if len(notes) > limit:
        notes = notes[:limit] + [f"... and {len(notes) - limit} more cells with errors"]
    if outcome.cut:
        notes.append(f"output of {len(outcome.cut)} cell(s) was too long and cut")
    return notes


def autograded_notebook(
    prepared: NotebookNode,
    outcome: RunOutcome,
    verdicts: Mapping[str, Verdict] | None,
    limits: Limits,
) -> NotebookNode:
    """The prepared notebook with the kernel's (filtered) outputs and the grader's verdicts.

    Sources and metadata come from the prepared notebook, never from what the sandbox wrote;
    only outputs are taken over, by position, and only plain text and images.
    """
    nb = copy.deepcopy(prepared)
    executed = outcome.executed
    if executed is not None and len(executed.cells) == len(nb.cells):
        for cell, ran in zip(nb.cells, executed.cells, strict=True):
            if cell.cell_type == "code" and ran.get("cell_type") == "code":
                cell.outputs = safe_outputs(ran.get("outputs", []), limits.max_output_chars)
    for cell in nb.cells:
        verdict = (verdicts or {}).get(grade_id(cell) or "")
        if verdict is None or cell.cell_type != "code":
            continue
        if verdict.passed:
            text = f"Autograder: passed ({verdict.points:g} of {verdict.max_points:g} points).\n"
            cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text))
        else:
            cell.outputs.append(
                nbformat.v4.new_output(
                    "error",
                    ename="CheckFailure",
                    evalue=verdict.message,
                    traceback=[f"Autograder: 0 of {verdict.max_points:g} points.", verdict.message],
                )
            )
    return nb


def safe_outputs(outputs: list, max_chars: int) -> list[NotebookNode]:
    """Outputs rebuilt from scratch: streams, errors, text and images only, each capped."""
    kept: list[NotebookNode] = []
    for out in outputs[:100]:
        kind = out.get("output_type") if isinstance(out, Mapping) else None
        if kind == "stream":
            name = "stderr" if out.get("name") == "stderr" else "stdout"
            kept.append(
                nbformat.v4.new_output(
                    "stream", name=name, text=text_of(out.get("text"), max_chars)
                )
            )
        elif kind == "error":
            kept.append(
                nbformat.v4.new_output(
                    "error",
                    ename=text_of(out.get("ename"), 200),
                    evalue=text_of(out.get("evalue"), 2000),
                    traceback=[
                        text_of(line, 2000) for line in list(out.get("traceback", []))[-20:]
                    ],
                )
            )
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {}) if isinstance(out.get("data"), Mapping) else {}
            safe = {
                mime: text_of(data[mime], max_chars if mime == "text/plain" else 4 * max_chars)
                for mime in SAFE_MIME
                if mime in data
            }
            if safe:
                kept.append(nbformat.v4.new_output("display_data", data=safe))
    return kept


def text_of(value: object, limit: int) -> str:
    """A string from an untrusted output field, at most ``limit`` characters."""
    if isinstance(value, list):
        value = "".join(str(v) for v in value[:10_000])
    return str(value if value is not None else "")[:limit]


def read_assignment(course: CourseDir, checks: Mapping[str, Check], db_url: str) -> Assignment:
    """The release, the checks and the graded cells, from a gradebook snapshot at ``db_url``."""
    from nbgrader.api import Gradebook

    from autograder.coursedir import COURSE_ID

    released = nbformat.read(course.release_notebook, 4)
    with Gradebook(db_url, COURSE_ID) as gb:
        source = gb.find_notebook(course.notebook, course.assignment)
        solutions = {c.name for c in source.solution_cells}
        cells = {c.name: float(c.max_score) for c in source.grade_cells}
    tests = {gid: p for gid, p in cells.items() if gid not in solutions}
    manual = {gid: p for gid, p in cells.items() if gid in solutions}
    unknown = sorted(set(tests) - set(checks))
    if unknown:
        raise CourseError(
            f"No check is registered for the test cell(s) {', '.join(unknown)}",
            "add them to the exercise's CHECKS (autograder/exercise).",
        )
    return Assignment(db_url, released, checks, tests, manual)
