"""``autograde``: grade every collected submission, several at a time, one gradebook writer.

nbgrader's SQLite gradebook is not safe for concurrent writers, so each submission is graded
by its own process (:mod:`autograder.worker`) in a scratch course folder with a *copy* of the
gradebook made before any grading starts. As each worker finishes, the parent (the only writer)
merges that scratch gradebook's scores into the main one and copies the autograded notebook
back. Scores therefore cannot depend on the number of workers, and one failing submission
leaves the others and the gradebook untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.utils import is_grade, is_solution
from sqlalchemy.exc import SAWarning

from autograder.coursedir import COURSE_ID, KERNEL_ENV, CourseDir
from autograder.execution import grading_imports
from autograder.intake import load_intake
from autograder.limits import Limits, Sandbox, make_sandbox
from autograder.sandbox import sandbox_env
from course.paths import cache_dir, shared_data_dir


@dataclass
class Result:
    """The outcome of grading one submission, as the summary, CSV and feedback show it."""

    student: str
    status: str  # graded | invalid | missing | crashed | timeout | error
    score: float = 0.0  # points awarded so far (autograded, plus manual ones already given)
    max_score: float = 0.0
    manual_pending: float = 0.0  # points waiting for the instructor (the written answer)
    reasons: list[str] = field(default_factory=list)
    failed_tests: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    sandbox: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """All reasons, one line."""
        return "; ".join(self.reasons)

    def save(self, course: CourseDir) -> None:
        """Write ``results/<student>.json``."""
        path = course.result(self.student)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, course: CourseDir, student: str) -> Result:
        """Read ``results/<student>.json``."""
        data = json.loads(course.result(student).read_text(encoding="utf-8"))
        return cls(**data)


def autograde(
    course: CourseDir,
    *,
    workers: int = 1,
    limits: Limits | None = None,
    students: list[str] | None = None,
    progress: bool = True,
) -> list[Result]:
    """Grade ``students`` (default: all collected) with ``workers`` processes at once."""
    from tqdm.auto import tqdm

    limits = limits or Limits()
    sandbox = make_sandbox(limits)
    students = students if students is not None else course.students()
    if not course.gradebook.is_file():
        raise FileNotFoundError(
            f"No gradebook at {course.gradebook}\n"
            "  How to fix it: run `python -m autograder release` first."
        )
    course.work.mkdir(parents=True, exist_ok=True)
    # Snapshot taken while nobody writes: every scratch gradebook starts from it.
    template = course.work / "template.db"
    shutil.copyfile(course.gradebook, template)
    threads = max(1, cpu_count() // max(1, workers))
    preload = grading_imports(nbformat.read(course.source_notebook, 4))
    results: list[Result] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {
                pool.submit(_grade_one, course, s, limits, sandbox, template, threads, preload): s
                for s in students
            }
            bar = tqdm(total=len(futures), desc="autograde", unit="nb", disable=not progress)
            for future in as_completed(futures):
                student = futures[future]
                scratch, result = future.result()
                _merge(course, student, scratch, result)
                result.save(course)
                results.append(result)
                if scratch is not None:
                    log = scratch / "worker.log"
                    if result.status != "graded" and log.is_file():
                        shutil.copyfile(log, course.result(student).with_suffix(".log"))
                    shutil.rmtree(scratch, ignore_errors=True)
                bar.set_postfix_str(f"{student}: {result.status}")
                bar.update()
            bar.close()
    finally:
        template.unlink(missing_ok=True)
    return sorted(results, key=lambda r: r.student)


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _grade_one(
    course: CourseDir,
    student: str,
    limits: Limits,
    sandbox: Sandbox,
    template: Path,
    threads: int,
    preload: list[str],
) -> tuple[Path | None, Result]:
    """Run the worker for ``student`` (in a pool thread); return its scratch folder and result."""
    started = time.monotonic()
    intake = load_intake(course, student)
    result = Result(student=student, status="graded", sandbox=sandbox.enforced + sandbox.notes)
    if intake.missing:
        result.status = "missing"
        result.reasons = list(intake.notes)
        return None, result
    scratch = course.work / student
    shutil.rmtree(scratch, ignore_errors=True)
    local = CourseDir(scratch, course.assignment, course.notebook)
    local.submitted(student).parent.mkdir(parents=True)
    (scratch / "source" / course.assignment).mkdir(parents=True)
    shutil.copyfile(course.submitted(student), local.submitted(student))
    shutil.copyfile(template, local.gradebook)
    job = {
        "root": str(scratch.resolve()),
        "assignment": course.assignment,
        "notebook": course.notebook,
        "student": student,
        "limits": limits.to_dict(),
        "preload": preload,
    }
    job_path = (scratch / "job.json").resolve()
    job_path.write_text(json.dumps(job), encoding="utf-8")
    # Unix socket paths are limited to ~100 bytes: keep the kernel's runtime dir short.
    runtime = tempfile.mkdtemp(prefix="ag-")
    # TMPDIR too: the kernel's connection file and the student's temporary files land there and
    # go when grading ends.
    env = {**os.environ, **KERNEL_ENV, "JUPYTER_RUNTIME_DIR": runtime, "TMPDIR": runtime}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    # The worker and its kernel see only their scratch and runtime folders, the Python
    # environment and the course data (bubblewrap, where it runs; autograder/sandbox.py).
    command = sandbox.wrap(
        [sys.executable, "-m", "autograder.worker", str(job_path)],
        writable=[scratch, Path(runtime)],
        readonly=[p for p in (shared_data_dir(), cache_dir()) if p is not None],
        hide=[course.root],
        env=sandbox_env(env) if sandbox.filesystem else env,
    )
    log_path = scratch / "worker.log"
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=scratch,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=sandbox.preexec,
            )
            try:
                proc.wait(timeout=limits.submission_timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                result.status = "timeout"
                result.reasons.append(
                    f"grading took longer than {limits.submission_timeout} s and was stopped: "
                    "look for a loop that never ends or a cell that trains for too long"
                )
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    done = scratch / "result.json"
    if result.status == "graded":
        if done.is_file():
            data = json.loads(done.read_text(encoding="utf-8"))
            result.status = data["status"]
            if data.get("reason"):
                result.reasons.append(data["reason"])
            result.reasons += _findings_reasons(data.get("findings", {}))
        else:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-300:]
            result.status = "crashed"
            result.reasons.append(
                f"the grading process ended without a result (exit code {proc.returncode}; "
                f"memory cap {limits.memory_mb} MiB?): {tail.strip().splitlines()[-1:]}"
            )
    result.reasons = intake.notes + _cell_reasons(course, student) + result.reasons
    result.seconds = round(time.monotonic() - started, 2)
    return scratch, result


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker and its kernel (the worker leads its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _findings_reasons(findings: dict) -> list[str]:
    reasons = list(findings.get("integrity", []))
    restored = sorted({item for f in findings.get("restored", []) for item in f["restored"]})
    if restored:
        reasons.append(
            "the notebook changed grading machinery, which was put back before the tests ran "
            f"(flagged for review): {', '.join(restored[:8])}"
        )
    if findings.get("cut_outputs"):
        reasons.append(f"output of {len(findings['cut_outputs'])} cell(s) was too long and cut")
    return reasons


def _cell_reasons(course: CourseDir, student: str) -> list[str]:
    """Deleted or edited test cells and untouched answers, read from the submitted notebook."""
    try:
        submitted = nbformat.read(course.submitted(student), 4)
        released = nbformat.read(course.release_notebook, 4)
    except Exception:  # unreadable submissions get their reason from the worker
        return []
    mine = {
        c.metadata.nbgrader["grade_id"]: c
        for c in submitted.cells
        if "grade_id" in c.metadata.get("nbgrader", {})
    }
    reasons = []
    for cell in released.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if not grade_id or not (is_grade(cell) or is_solution(cell)):
            continue
        theirs = mine.get(grade_id)
        if theirs is None:
            kind = "answer cell" if is_solution(cell) else "test cell"
            what = "graded as unanswered" if is_solution(cell) else "restored and graded"
            reasons.append(f"{kind} {grade_id} was deleted; {what}")
        elif is_grade(cell) and not is_solution(cell) and theirs.source != cell.source:
            reasons.append(f"test cell {grade_id} was edited; the original was restored and graded")
        elif is_solution(cell) and theirs.source == cell.source:
            reasons.append(f"{grade_id} is still the released stub (not answered)")
    return reasons


def _merge(course: CourseDir, student: str, scratch: Path | None, result: Result) -> None:
    """Write ``student``'s scores into the main gradebook (parent only: the single writer)."""
    local = CourseDir(scratch, course.assignment, course.notebook) if scratch else None
    # A killed worker can leave a sanitized but unexecuted notebook behind: only a finished
    # run counts.
    graded = result.status == "graded" and local is not None and local.autograded(student).is_file()
    target = course.autograded(student)
    if target.parent.exists():
        _make_writable(target.parent)
        shutil.rmtree(target.parent)
    with Gradebook(course.db_url, COURSE_ID) as main, warnings.catch_warnings():
        # nbgrader's add_submission trips a harmless SQLAlchemy autoflush warning.
        warnings.simplefilter("ignore", SAWarning)
        main.update_or_create_student(student)
        # Every grade is overwritten below, so a regrade never mixes old and new scores.
        main.update_or_create_submission(course.assignment, student)
        if graded:
            assert local is not None
            # Only the notebook: files the student's code wrote while running stay behind.
            target.parent.mkdir(parents=True)
            shutil.copyfile(local.autograded(student), target)
            with Gradebook(local.db_url, COURSE_ID) as part:
                _copy_scores(part, main, course.assignment, student)
        else:
            # Like nbgrader for a missing notebook: every cell scores zero, nothing pending.
            sub = main.find_submission(course.assignment, student)
            for nb in sub.notebooks:
                for grade in nb.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
            main.db.commit()
        _read_scores(main, course, student, result)


def _copy_scores(src: Gradebook, dst: Gradebook, assignment: str, student: str) -> None:
    for nb in src.find_submission(assignment, student).notebooks:
        target = dst.find_submission_notebook(nb.name, assignment, student)
        target.flagged = nb.flagged
        for grade in nb.grades:
            mine = dst.find_grade(grade.name, nb.name, assignment, student)
            mine.auto_score = grade.auto_score
            mine.needs_manual_grade = grade.needs_manual_grade
        for comment in nb.comments:
            mine = dst.find_comment(comment.name, nb.name, assignment, student)
            mine.auto_comment = comment.auto_comment
    dst.db.commit()


def _read_scores(gb: Gradebook, course: CourseDir, student: str, result: Result) -> None:
    sub = gb.find_submission(course.assignment, student)
    result.max_score = float(sub.max_score)
    result.score = float(sub.score)
    result.manual_pending = float(
        sum(g.max_score for nb in sub.notebooks for g in nb.grades if g.needs_manual_grade)
    )
    result.failed_tests = _failed_tests(course, student)
    notes = _run_errors(course, student)
    result.reasons = [r for r in result.reasons if r not in notes] + notes


def _run_errors(course: CourseDir, student: str, limit: int = 3) -> list[str]:
    """Errors in cells that are not tests (they explain why later tests failed)."""
    path = course.autograded(student)
    if not path.is_file():
        return []
    notes = []
    for index, cell in enumerate(nbformat.read(path, 4).cells):
        if cell.cell_type != "code" or is_grade(cell):
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if not errors:
            continue
        names = {o.ename for o in errors}
        if "CellTimeoutError" in names:
            notes.append(f"cell {index} ran past the per-cell time limit and was stopped")
        else:
            first = f"{errors[0].ename}: {errors[0].evalue}".strip().rstrip(":")
            notes.append(f"cell {index} raised {first[:200]}")
    if len(notes) > limit:
        notes = notes[:limit] + [f"... and {len(notes) - limit} more cells with errors"]
    return notes


def _failed_tests(course: CourseDir, student: str) -> dict[str, str]:
    """grade_id -> the last line of the error, for every test cell that lost points."""
    path = course.autograded(student)
    if not path.is_file():
        return {}
    failed = {}
    for cell in nbformat.read(path, 4).cells:
        if cell.cell_type != "code" or not is_grade(cell):
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                message = f"{out.ename}: {out.evalue}".strip()
                failed[cell.metadata.nbgrader["grade_id"]] = message[:400]
                break
            if out.output_type == "stream" and out.name == "stderr":
                failed[cell.metadata.nbgrader["grade_id"]] = "wrote to stderr: " + out.text[:200]
                break
    return failed


def _make_writable(folder: Path) -> None:
    # nbgrader leaves its outputs read-only (0444); the parent replaces them on regrade.
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
