"""The real exercise through the whole pipeline, driven by its command line.

Submissions built from the student release: the reference solutions, the lecture's freezing
code, the untouched stubs, honest variants (noisy output, a deleted task, a replace_head that
freezes the model) and the attacks of issue 10 (copying from ``solutions``, reading the
checks' source, patching torch, nbgrader's displayhook partial credit). Each must score what
its own code deserves. The written answer (task 8) is graded by hand: the
autograder leaves it pending (``needs_manual_grade``), the summary and the CSV report its
points as ``manual_pending``, and "full marks" below means every autograded point.
"""

from __future__ import annotations

import base64
import copy
import csv
import io
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from notebook_edits import grade_id, with_source, without

from autograder.__main__ import main
from autograder.coursedir import COURSE_ID, CourseDir
from autograder.grade import Result
from autograder.intake import verify_originals
from autograder.limits import Limits
from autograder.release import exercise_source, fill_from_source
from autograder.sandbox_run import isolation
from autograder.tasks import tasks_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not exercise_source("transfer_learning").is_file(), reason="exercise source not written yet"
    ),
]

#: What the lecture's notebooks ran to "unfreeze the last 3 layers" (DESIGN.md).
LECTURE_FREEZING = '''\
def freeze_and_unfreeze(model):
    """The lecture's code, bug included."""
    for param in model.parameters():
        param.requires_grad = False
    model.classifier[1].requires_grad = True
    model.classifier[3].requires_grad = True
    return model
'''


#: A correct loop that shows a progress bar and warns: stderr noise must cost nothing.
NOISY_TRAINING = '''\
import sys
import warnings

from tqdm.auto import tqdm


def train_and_evaluate(model, optimizer, train_loader, eval_loader, epochs=1):
    """Train, then evaluate; chatty on stderr."""
    warnings.warn("this loop is chatty", UserWarning)
    losses = []
    for _ in range(epochs):
        model.train()
        for images, labels in tqdm(train_loader, disable=False, file=sys.stderr):
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    sys.stderr.write("\\n")
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in eval_loader:
            correct += (model(images).argmax(dim=1) == labels).sum().item()
            total += labels.numel()
    return losses, 100.0 * correct / total
'''

#: Freezes everything before swapping the head: in the lecture's order, the lecture's bug.
FREEZING_HEAD = """\
def replace_head(model, num_classes):
    model.requires_grad_(False)
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent, _, attribute = name.rpartition(".")
    old = model.get_submodule(name)
    setattr(model.get_submodule(parent), attribute, nn.Linear(old.in_features, num_classes))
    return model
"""

#: Wrong statistics (averages of per-batch stds), with torch's comparisons patched to agree.
PATCHED_TORCH = """\
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
"""
WRONG_STATS = """\
def channel_stats(loader):
    means, stds = [], []
    for images, _ in loader:
        means.append(images.mean(dim=(0, 2, 3)))
        stds.append(images.std(dim=(0, 2, 3)))
    return tuple(torch.stack(means).mean(0).tolist()), tuple(torch.stack(stds).mean(0).tolist())
"""


#: Tasks whose records are small enough to forge as constants inside a notebook cell.
SMALL_TASKS = ("load", "freeze", "optimizer", "stats", "train")
#: The seed the constant forgers computed their records with (not the grader's).
FORGED_SEED = 12345


def _forged_records() -> str:
    """Records of the reference answers for :data:`FORGED_SEED`, as base64 (what a forger
    could compute once, offline, and share with a class)."""
    import torch

    from course.grading_record import RECORDERS
    from solutions import exercise as answers

    functions = {
        "load": answers.load_vgg16,
        "freeze": answers.freeze_and_unfreeze,
        "optimizer": answers.make_optimizer,
        "stats": answers.channel_stats,
        "train": answers.train_and_evaluate,
    }
    buffer = io.BytesIO()
    torch.save({key: RECORDERS[key](functions[key], FORGED_SEED) for key in SMALL_TASKS}, buffer)
    return base64.b64encode(buffer.getvalue()).decode()


#: Constants: every record replaced by a correct record for another seed, tagged with the
#: seed the forger learns when the task's cell starts.
CONSTANTS_FORGER = """\
import base64, io
import course.grading_record as _gr
_FORGED = torch.load(io.BytesIO(base64.b64decode("{data}")), weights_only=True)
_real_record_task = _gr.record_task
def _record_task(task, function):
    if task not in {tasks}:
        return _real_record_task(task, function)
    seed = _gr._BEGUN.pop(task, 0)
    if task in _FORGED:
        _gr.save(task, {{"task": task, "seed": seed, "data": _FORGED[task]}})
_gr.record_task = _record_task
"""
#: Recorder rewrite: builds each task's inputs from the learned seed and records plausible
#: results (the inputs handed back) without calling the student's function.
RECORDER_FORGER = """\
import course.grading_record as _gr
def _plausible(*args, **kwargs):
    return args[0] if args else kwargs.get("weights")
def _record_task(task, function):
    seed = _gr._BEGUN.pop(task, 0)
    _gr.save(task, {"task": task, "seed": seed, "data": _gr.RECORDERS[task](_plausible, seed)})
_gr.record_task = _record_task
"""
#: Record files written straight into the record folder before any test runs, and the
#: recorder silenced so they stay.
DIRECT_FORGER = """\
import base64, io, os, pathlib
import course.grading_record as _gr
_FORGED = torch.load(io.BytesIO(base64.b64decode("{data}")), weights_only=True)
_folder = pathlib.Path(os.environ.get(_gr.RECORD_DIR_ENV, "records"))
_folder.mkdir(parents=True, exist_ok=True)
for _task, _data in _FORGED.items():
    torch.save({{"task": _task, "seed": {seed}, "data": _data}}, _folder / f"{{_task}}.pt")
_gr.save = lambda *args, **kwargs: None
"""
#: A correct task 1 whose cell also forges task 2's record (a constant, as above).
HIDDEN_FORGER = (
    'def load_vgg16(weights="random"):\n'
    '    return load_model("vgg16", weights=weights)\n' + CONSTANTS_FORGER
)


def _after_setup(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    out = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(out.cells) if grade_id(c) == "setup") + 1
    out.cells.insert(index, nbformat.v4.new_code_cell(source))
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[CourseDir, dict[str, Result]]:
    root = tmp_path_factory.mktemp("e2e")
    course = CourseDir(root / "grading")
    base = ["--course-dir", str(course.root)]
    # Sandboxed where bubblewrap runs; elsewhere the unsandboxed path, said explicitly.
    sandbox = ["--sandbox", "required" if isolation(Limits()).filesystem else "off"]
    forged = _forged_records()
    every = repr(tuple(t.key for t in tasks_for("transfer_learning")))
    assert main([*base, "setup"]) == 0
    assert main([*base, "release"]) == 0
    released = nbformat.read(course.release_notebook, 4)
    ref = fill_from_source(released, nbformat.read(course.source_notebook, 4))
    deleted = without(ref, "task5-answer", "task5-test")
    submissions = {
        "reference": ref,
        "lecture": with_source(ref, "task2-answer", LECTURE_FREEZING),
        "stubs": released,
        "noisy": with_source(ref, "task7-answer", NOISY_TRAINING),
        "deleted": deleted,
        "freezinghead": with_source(ref, "task3-answer", FREEZING_HEAD),
        "copier": with_source(ref, "task3-answer", "from solutions.transfer import replace_head"),
        "spy": _after_setup(
            ref,
            "import inspect\nimport autograder.checks.inputs as m\nprint(inspect.getsource(m))",
        ),
        "patcher": with_source(_after_setup(ref, PATCHED_TORCH), "task6-answer", WRONG_STATS),
        "displayhook": with_source(
            ref,
            "task1-answer",
            'def load_vgg16(weights="random"):\n'
            "    get_ipython().displayhook(\"'x'\")\n"
            "    raise NotImplementedError\n",
        ),
        "forger-constants": _after_setup(
            released, CONSTANTS_FORGER.format(data=forged, tasks=every)
        ),
        "forger-recorder": _after_setup(released, RECORDER_FORGER),
        "forger-direct": _after_setup(released, DIRECT_FORGER.format(data=forged, seed=0)),
        "forger-hidden": with_source(
            released, "task1-answer", HIDDEN_FORGER.format(data=forged, tasks="('freeze',)")
        ),
    }
    inbox = root / "inbox"
    inbox.mkdir()
    for student, nb in submissions.items():
        nbformat.write(nb, inbox / f"{student}_100_200_transfer_learning.ipynb")
    assert main([*base, "collect", str(inbox)]) == 0
    assert main([*base, "autograde", "--workers", "2", "--no-progress", *sandbox]) == 0
    assert main([*base, "feedback"]) == 0
    assert main([*base, "export"]) == 0
    results = {s: Result.load(course, s) for s in submissions}
    return course, results


def _sandboxed() -> None:
    if not isolation(Limits()).filesystem:
        pytest.skip("bubblewrap cannot run here: the kernel is not sandboxed")


def _points(course: CourseDir, cell_id: str) -> float:
    with Gradebook(course.db_url, COURSE_ID) as gb:
        return float(gb.find_graded_cell(cell_id, course.notebook, course.assignment).max_score)


def test_reference_gets_every_autograded_point(graded) -> None:
    course, results = graded
    r = results["reference"]
    assert r.status == "graded" and r.failed_tests == {}, r.failed_tests
    assert r.manual_pending == _points(course, "task8-answer") == 2
    assert r.score == r.max_score - r.manual_pending == 18
    with Gradebook(course.db_url, COURSE_ID) as gb:
        written = gb.find_grade("task8-answer", course.notebook, course.assignment, "reference")
        assert written.needs_manual_grade and written.auto_score is None


def test_lecture_freezing_loses_exactly_the_freezing_points(graded) -> None:
    course, results = graded
    r = results["lecture"]
    assert sorted(r.failed_tests) == ["task2-test"]
    assert r.score == results["reference"].score - _points(course, "task2-test")
    message = r.failed_tests["task2-test"]
    # The feedback names the bug: `requires_grad` set on a module, as in the lecture.
    assert "lecture's freezing bug" in message and "requires_grad" in message


def test_untouched_stubs_get_zero(graded) -> None:
    _, results = graded
    r = results["stubs"]
    assert r.score == 0 and r.manual_pending == 0
    assert all("NotImplementedError" in m for m in r.failed_tests.values())
    assert "task1-answer is still the released stub" in r.reason


def test_gradebook_csv_and_feedback_agree(graded) -> None:
    course, results = graded
    with Gradebook(course.db_url, COURSE_ID) as gb:
        scores = {s.student.id: s.score for s in gb.find_assignment(course.assignment).submissions}
    assert scores == pytest.approx({s: r.score for s, r in results.items()})
    assert all(r.status == "graded" for r in results.values())
    with open(course.grades_csv, newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    for student, r in results.items():
        assert float(rows[student]["score"]) == r.score
        assert float(rows[student]["manual_pending"]) == r.manual_pending
    assert rows["reference"]["autograded_max"] == rows["reference"]["score"]
    for student, r in results.items():
        page = Path(course.feedback(student)).read_text(encoding="utf-8")
        assert f"Score: {r.score:g} / {r.max_score:g}" in page
    assert "task2-test" in course.feedback("lecture").read_text(encoding="utf-8")
    assert verify_originals(course) == []


def test_student_check_passes_the_reference(graded, capsys: pytest.CaptureFixture[str]) -> None:
    from course.check import main as check

    course, _ = graded
    assert check([str(course.submitted("reference"))]) == 0
    out = capsys.readouterr().out
    assert "Ready to submit" in out and "FAIL" not in out


def test_stderr_noise_costs_nothing(graded) -> None:
    _, results = graded
    r = results["noisy"]
    assert r.score == 18 and r.failed_tests == {}


def test_deleted_task_is_restored_and_graded(graded) -> None:
    _, results = graded
    r = results["deleted"]
    assert r.status == "graded" and r.score == 16 and sorted(r.failed_tests) == ["task5-test"]
    assert "answer cell task5-answer was deleted; graded as unanswered" in r.reason
    assert "test cell task5-test was deleted; restored and graded" in r.reason


def test_replace_head_that_freezes_the_model_loses_task_3(graded) -> None:
    _, results = graded
    r = results["freezinghead"]
    assert r.score == 15 and sorted(r.failed_tests) == ["task3-test"]
    assert "changed which of the other layers train" in r.failed_tests["task3-test"]


def test_copying_from_solutions_does_not_import(graded) -> None:
    _sandboxed()
    _, results = graded
    r = results["copier"]
    assert r.score == 15 and sorted(r.failed_tests) == ["task3-test"]
    assert "No module named 'solutions" in r.reason or "ModuleNotFoundError" in r.reason


def test_checks_cannot_be_read_from_the_kernel(graded) -> None:
    _sandboxed()
    course, results = graded
    r = results["spy"]
    assert r.score == 18 and "ModuleNotFoundError" in r.reason
    for path in (course.autograded("spy"), course.feedback("spy")):
        text = path.read_text(encoding="utf-8")
        assert "def check_transforms" not in text and "solutions.transfer" not in text


def test_patched_torch_in_the_kernel_changes_nothing(graded) -> None:
    _, results = graded
    r = results["patcher"]
    assert r.score == 15 and sorted(r.failed_tests) == ["task6-test"]
    assert "the lecture's way" in r.failed_tests["task6-test"]


def test_displayhook_gives_no_partial_credit(graded) -> None:
    _, results = graded
    r = results["displayhook"]
    assert r.score == 17 and sorted(r.failed_tests) == ["task1-test"]


def test_feedback_shows_no_grader_source_or_paths(graded) -> None:
    course, results = graded
    for student in results:
        page = course.feedback(student).read_text(encoding="utf-8")
        assert "from autograder.checks import" not in page
        assert str(course.root.resolve()) not in page
        assert "autograder/checks" not in page


@pytest.mark.parametrize(
    "student", ["forger-constants", "forger-recorder", "forger-direct", "forger-hidden"]
)
def test_forgers_score_nothing_for_stub_answers(graded, student: str) -> None:
    """Held-out forger families (issue 17.3): every task whose own answer is a stub gets 0."""
    _, results = graded
    r = results[student]
    assert r.status == "graded"
    stubs = {task.grade_id for task in tasks_for("transfer_learning")}
    if student == "forger-hidden":
        stubs.discard("task1-test")  # its own answer is real; the forger rides along
        assert r.score == 1 and "task1-test" not in r.failed_tests
    else:
        assert r.score == 0
    assert set(r.failed_tests) == stubs, r.failed_tests
