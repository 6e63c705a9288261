"""Every kind of bad submission gets a grade and a reason, and harms no other submission.

One batch of submissions of the tiny exercise (``test_pipeline.TINY_SOURCE``) is collected
from an LMS-style zip and autograded with two workers; each test then checks one case in the
summary, the gradebook, the autograded notebook and the feedback. Attacks on the grader (a
kernel that writes the gradebook or a classmate's originals, a displayhook partial-credit
trick, an unresponsive kernel) score what the code deserves. A last test regrades some of
them with one worker and compares the scores.
"""

from __future__ import annotations

import copy
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from notebook_edits import grade_id, with_source, without
from test_pipeline import make_tiny_course, reference

from autograder.coursedir import COURSE_ID, CourseDir
from autograder.grade import Result, autograde
from autograder.intake import collect, verify_originals
from autograder.limits import Limits, network_namespace_available
from autograder.report import export_csv, feedback, summary_table
from autograder.sandbox_run import isolation

pytestmark = pytest.mark.slow

#: Tight limits keep the batch short; the memory cap is above what the kernel needs (the
#: recorder imports torch: about 3.4 GiB of address space) and below the hog's 10 GiB.
#: The cell timeout leaves room for `import torch, torchvision` (the recorder), which took 7 s
#: outside and 9 s inside the sandbox on the shared 2-core machine at load average 8-11.
LIMITS = Limits(cell_timeout=25, submission_timeout=240, memory_mb=8192, max_output_chars=5000)

WRONG_SQUARE = "def square(x):\n    return 0\n"
#: Passes the visible test (3 -> 9) and fails the hidden one (-4 -> -16).
SNEAKY_SQUARE = "def square(x):\n    return abs(x) * x\n"


def _with_cell(nb: nbformat.NotebookNode, code: str, before: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` with a code cell inserted before the cell ``before`` (a grade id)."""
    out = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(out.cells) if grade_id(c) == before)
    out.cells.insert(index, nbformat.v4.new_code_cell(code))
    return out


def _attack_on_course(course: CourseDir) -> str:
    """Code that tries to raise its score in the gradebook and to delete a classmate's files."""
    root = course.root.resolve()
    gradebook, classmate = str(root / "gradebook.db"), str(root / "originals" / "good")
    return (
        "import sqlite3, shutil\n"
        f"for db in ('gradebook.db', '../../gradebook.db', {gradebook!r}):\n"
        "    try:\n"
        "        con = sqlite3.connect(db)\n"
        '        con.execute("CREATE TRIGGER t AFTER UPDATE ON grade BEGIN "\n'
        '                    "UPDATE grade SET auto_score = 99; END")\n'
        "        con.commit()\n"
        "    except Exception as error:\n"
        "        print('gradebook:', error)\n"
        f"shutil.rmtree({classmate!r}, ignore_errors=True)\n"
        f"print(open({gradebook!r}).read()[:20])\n"
    )


def _submissions(course: CourseDir) -> dict[str, bytes]:
    """LMS file name -> bytes, one (or more) per case."""
    good = reference(course)
    released = nbformat.read(course.release_notebook, 4)
    wrong = with_source(good, "square-answer", WRONG_SQUARE)
    nb = nbformat.writes
    name = "{}_1001_2002_tiny.ipynb".format
    files = {
        name("good"): nb(good).encode(),
        name("malformed"): nb(good).encode()[:-200],
        name("empty"): b"",
        "wrongname_1001_2002_Untitled.ipynb": nb(good).encode(),
        "missing_1001_2002_tiny.py": b"def square(x):\n    return x * x\n",
        name("deleted"): nb(without(good, "cube-test")).encode(),
        name("edited"): nb(with_source(wrong, "square-test", "pass")).encode(),
        name("stubs"): nb(released).encode(),
        name("loop"): nb(_with_cell(good, "while True:\n    pass", "square-test")).encode(),
        name("dies"): nb(_with_cell(good, "import os\nos._exit(1)", "cube-test")).encode(),
        name("flood"): nb(_with_cell(good, "print('x' * 10_000_000)", "square-test")).encode(),
        # (The locked setup cell would be restored by nbgrader, so the import sits in an answer.)
        name("importerror"): nb(
            with_source(
                good, "square-answer", "import a_module_that_is_not_installed\n" + WRONG_SQUARE
            )
        ).encode(),
        name("shadow"): nb(
            _with_cell(
                with_source(good, "square-answer", SNEAKY_SQUARE),
                "import sys, types\n"
                "open('autograder.py', 'w').write('def fail(*a, **k):\\n    pass\\n')\n"
                "fake = types.ModuleType('autograder.feedback')\n"
                "fake.fail = lambda *a, **k: None\n"
                "sys.modules['autograder.feedback'] = fake\n"
                "sys.modules['autograder'].feedback = fake\n",
                "square-test",
            )
        ).encode(),
        # A file named like the grading package, uploaded next to the notebook.
        "shadow_1001_2002_autograder.py": b"raise SystemExit('this must never be imported')\n",
        name("hidetraceback"): nb(
            _with_cell(
                wrong,
                "ip = get_ipython()\n"
                "ip.showtraceback = lambda *a, **k: None\n"
                "ip.set_custom_exc((Exception,), lambda *a, **k: None)\n"
                "import builtins\n"
                "builtins.AssertionError = type('AssertionError', (Exception,), {})\n",
                "square-test",
            )
        ).encode(),
        name("transformer"): nb(
            _with_cell(
                wrong,
                "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
                "square-test",
            )
        ).encode(),
        name("network"): nb(
            _with_cell(
                good,
                "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=3)",
                "square-test",
            )
        ).encode(),
        name("memory"): nb(
            _with_cell(good, "hog = bytearray(10 * 1024**3)", "square-test")
        ).encode(),
        # (Left out where there is no sandbox: the planted trigger would then stop grading,
        # which test_isolation checks on its own.)
        name("gradebook"): nb(
            _with_cell(
                with_source(good, "cube-answer", "def cube(x):\n    return 0\n"),
                _attack_on_course(course),
                "square-test",
            )
        ).encode(),
        # nbgrader's partial-credit rule took a test cell's first execute_result as its score.
        name("displayhook"): nb(
            with_source(
                good,
                "square-answer",
                "def square(x):\n"
                "    get_ipython().displayhook(\"'x'\")\n"
                "    raise NotImplementedError\n",
            )
        ).encode(),
        name("unresponsive"): nb(
            _with_cell(
                good,
                "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n"
                "    pass",
                "cube-test",
            )
        ).encode(),
        name("noisy"): nb(
            with_source(
                good,
                "square-answer",
                "import sys, warnings\n"
                "warnings.simplefilter('always')\n\n"
                "def square(x):\n"
                "    warnings.warn('square() will move to another module', FutureWarning)\n"
                "    sys.stderr.write('\\r 50%|#####     | 1/2 [00:00<00:00, 9.1it/s]')\n"
                "    sys.stderr.write('\\n')\n"
                "    return x * x\n",
            )
        ).encode(),
    }
    if not isolation(LIMITS).filesystem:
        del files[name("gradebook")]
    return files


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[CourseDir, dict[str, Result]]:
    root = tmp_path_factory.mktemp("bad")
    course = make_tiny_course(root)
    files = _submissions(course)
    archive = root / "lms-export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    collect(course, archive)
    (root / "gradebook-before.sha").write_text(_digest(course), encoding="utf-8")
    results = autograde(course, workers=2, limits=LIMITS, progress=False)
    feedback(course)
    export_csv(course)
    print(summary_table(results))  # shown by pytest -s; handy when a case regresses
    return course, {r.student: r for r in results}


def _digest(course: CourseDir) -> str:
    """Hash of the graded cells' definitions in the gradebook (what a trigger would change)."""
    import hashlib
    import sqlite3

    con = sqlite3.connect(course.gradebook)
    try:
        rows = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        con.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _case(graded, student: str) -> Result:
    return graded[1][student]


def _auto(result: Result) -> float:
    """Points autograding can give (the written answer waits for the instructor)."""
    return result.max_score - result.manual_pending


def test_good_submission_is_unaffected(graded) -> None:
    r = _case(graded, "good")
    assert r.status == "graded" and r.failed_tests == {}
    assert r.score == 3 and r.manual_pending == 1 and r.max_score == 4


def test_malformed_json(graded) -> None:
    r = _case(graded, "malformed")
    assert (r.status, r.score) == ("invalid", 0)
    assert "not valid JSON" in r.reason


def test_empty_file(graded) -> None:
    r = _case(graded, "empty")
    assert (r.status, r.score) == ("invalid", 0) and "empty" in r.reason


def test_wrong_file_name_is_graded_with_a_note(graded) -> None:
    r = _case(graded, "wrongname")
    assert r.status == "graded" and r.score == 3
    assert "wrong file name" in r.reason and "'Untitled.ipynb'" in r.reason


def test_missing_notebook(graded) -> None:
    r = _case(graded, "missing")
    assert (r.status, r.score) == ("missing", 0)
    assert "no notebook" in r.reason and "tiny.py" in r.reason


def test_deleted_test_cell_is_restored_and_graded(graded) -> None:
    course, _ = graded
    r = _case(graded, "deleted")
    assert r.status == "graded" and r.score == 3
    assert "cube-test was deleted; restored and graded" in r.reason
    cells = nbformat.read(course.autograded("deleted"), 4).cells
    assert any(grade_id(c) == "cube-test" for c in cells)


def test_edited_test_cell_is_replaced_by_the_original(graded) -> None:
    r = _case(graded, "edited")
    # The real test is back and fails the wrong square (and the cube built on it).
    assert r.status == "graded" and r.score == 0
    assert "square(3) should be 9" in r.failed_tests["square-test"]
    assert "test cell square-test was edited" in r.reason


def test_untouched_stubs_score_zero(graded) -> None:
    r = _case(graded, "stubs")
    assert r.score == 0 and r.manual_pending == 0
    assert "square-answer is still the released stub" in r.reason
    assert "NotImplementedError" in r.failed_tests["square-test"]


def test_infinite_loop_is_stopped_and_the_rest_graded(graded) -> None:
    r = _case(graded, "loop")
    assert r.status == "graded" and r.score == 3
    assert "ran past the per-cell time limit" in r.reason


def test_kernel_death(graded) -> None:
    r = _case(graded, "dies")
    assert (r.status, r.score) == ("crashed", 0)
    assert "kernel died" in r.reason


def test_huge_output_is_cut(graded) -> None:
    course, _ = graded
    r = _case(graded, "flood")
    assert r.status == "graded" and r.score == 3
    assert "too long and cut" in r.reason
    assert course.autograded("flood").stat().st_size < 200_000


def test_exception_at_import(graded) -> None:
    r = _case(graded, "importerror")
    assert r.status == "graded" and r.score == 0  # square was never defined
    assert "no result was recorded" in r.failed_tests["square-test"]
    assert (
        "raised ModuleNotFoundError: No module named 'a_module_that_is_not_installed'" in r.reason
    )


def test_shadowing_the_grading_package_does_not_help(graded) -> None:
    course, _ = graded
    r = _case(graded, "shadow")
    # Grading code never runs in the kernel: the fake modules change nothing, the sneaky
    # square fails the recorded call square(-4); the cube test passes.
    assert r.score == 1
    assert "square(-4) should be 16" in r.failed_tests["square-test"]
    # The uploaded autograder.py stays among the originals, never beside the notebook.
    assert (course.originals("shadow") / "autograder.py").is_file()
    assert not (course.autograded("shadow").parent / "autograder.py").exists()


def test_hiding_tracebacks_does_not_hide_failures(graded) -> None:
    r = _case(graded, "hidetraceback")
    assert r.score == 0 and "square-test" in r.failed_tests


def test_rewriting_cells_records_nothing(graded) -> None:
    r = _case(graded, "transformer")
    assert r.score == 0
    assert "no result was recorded" in r.failed_tests["square-test"]


def test_kernel_cannot_touch_the_gradebook_or_classmates(graded) -> None:
    if not isolation(LIMITS).filesystem:
        pytest.skip("bubblewrap cannot run here: the kernel is not sandboxed")
    course, results = graded
    r = _case(graded, "gradebook")
    assert r.status == "graded" and r.score == 2  # the wrong cube loses its point, no more
    assert "cube-test" in r.failed_tests
    assert _case(graded, "good").score == 3
    assert verify_originals(course) == []
    root = course.root.parent
    assert _digest(course) == (root / "gradebook-before.sha").read_text(encoding="utf-8")
    # Inside the sandbox those paths lead to empty folders: sqlite made a new, empty file.
    text = str(nbformat.read(course.autograded("gradebook"), 4).cells)
    assert "gradebook: no such table" in text


def test_displayhook_gives_no_partial_credit(graded) -> None:
    r = _case(graded, "displayhook")
    assert r.score == 0 and "NotImplementedError" in r.failed_tests["square-test"]


def test_unresponsive_kernel_is_crashed_with_a_reason(graded) -> None:
    r = _case(graded, "unresponsive")
    assert (r.status, r.score) == ("crashed", 0)
    assert "stopped responding" in r.reason and "ignored the interrupt" in r.reason


def test_network_is_cut(graded) -> None:
    if not network_namespace_available():
        pytest.skip("unprivileged user namespaces are not available: network cannot be cut here")
    r = _case(graded, "network")
    assert r.score == 3  # the failed connection costs nothing else
    assert "Network is unreachable" in r.reason
    assert any("no network" in x for x in r.sandbox)


def test_memory_cap(graded) -> None:
    r = _case(graded, "memory")
    assert r.status == "graded" and r.score == 3
    assert "MemoryError" in r.reason


def test_warnings_and_progress_bars_cost_nothing(graded) -> None:
    r = _case(graded, "noisy")
    assert r.status == "graded" and r.score == 3 and r.failed_tests == {}


def test_gradebook_matches_the_results(graded) -> None:
    course, results = graded
    with Gradebook(course.db_url, COURSE_ID) as gb:
        subs = {s.student.id: s for s in gb.find_assignment("tiny").submissions}
        assert sorted(subs) == sorted(results)
        for student, result in results.items():
            assert subs[student].score == pytest.approx(result.score), student
    assert verify_originals(course) == []
    assert not course.work.exists() or not any(course.work.iterdir())


def test_every_student_gets_feedback_and_a_csv_row(graded) -> None:
    course, results = graded
    for student, result in results.items():
        page = course.feedback(student).read_text(encoding="utf-8")
        assert f"Score: {result.score:g} / {result.max_score:g}" in page
        for reason in result.reasons:
            assert reason.split(":")[0].replace("'", "&#x27;") in page
    rows = course.grades_csv.read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(results) + 1


def _orphan_kernels() -> list[str]:
    """Grading kernels whose runtime folder is gone, i.e. whose grader was killed."""
    prefix = str(Path(tempfile.gettempdir()) / "ag-")
    time.sleep(1)  # let the kernel notice
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "ipykernel_launcher" in " ".join(args) and "-f" in args:
            connection = args[args.index("-f") + 1]
            if connection.startswith(prefix) and not Path(connection).parent.exists():
                found.append(" ".join(args))
    return found


def test_submission_timeout_kills_the_grading(graded) -> None:
    course, results = graded
    short = Limits(cell_timeout=60, submission_timeout=6, memory_mb=3072)
    (r,) = autograde(course, workers=1, limits=short, students=["loop"], progress=False)
    assert (r.status, r.score) == ("timeout", 0)
    assert "longer than 6 s" in r.reason
    assert not (course.work / "loop").exists()
    assert _orphan_kernels() == []
    # Regrade with the batch's limits so the other tests see the original result.
    autograde(course, workers=1, limits=LIMITS, students=["loop"], progress=False)


def test_one_worker_gives_the_same_scores(graded) -> None:
    course, results = graded
    again = autograde(
        course,
        workers=1,
        limits=LIMITS,
        students=["good", "edited", "deleted", "noisy"],
        progress=False,
    )
    for r in again:
        assert (r.status, r.score, sorted(r.failed_tests)) == (
            results[r.student].status,
            results[r.student].score,
            sorted(results[r.student].failed_tests),
        )
