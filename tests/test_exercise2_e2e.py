"""Exercise 2 graded end to end through the CLI: reference at full marks, stubs at 0, hints.

``python -m autograder --assignment fine_tuning_in_stages`` setup, release, reference,
collect, autograde (sandboxed where bubblewrap runs), feedback and export, in one course
directory that also holds the first exercise's layout untouched.
"""

from __future__ import annotations

import csv

import nbformat
import pytest
from notebook_edits import with_source

from autograder.__main__ import main
from autograder.coursedir import CourseDir
from autograder.grade import Result
from autograder.limits import Limits
from autograder.sandbox_run import isolation

pytestmark = pytest.mark.slow

ASSIGNMENT = "fine_tuning_in_stages"

#: Task 3 with the classic bug: the "best" state is a reference to the live tensors.
BEST_BY_REFERENCE = '''\
def keep_best(model, train_epoch, validate, max_epochs, patience):
    """Keeps model.state_dict() itself: it follows every later epoch."""
    best_epoch, best_score, best_state = 0, None, None
    for epoch in range(1, max_epochs + 1):
        train_epoch(model)
        score = validate(model)
        if best_score is None or score > best_score:
            best_epoch, best_score, best_state = epoch, score, model.state_dict()
        elif epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    return best_epoch, best_score
'''
#: Task 4 without model.eval(): the model predicts in training mode.
PREDICT_IN_TRAINING_MODE = '''\
def predict(model, image_path, preprocessing, class_names, resize=256, crop=224):
    """Forgets model.eval()."""
    transform = T.Compose([T.ToImage(), T.Resize(resize), T.CenterCrop(crop),
                           T.ToDtype(torch.float32, scale=True),
                           T.Normalize(preprocessing.mean, preprocessing.std)])
    batch = transform(Image.open(image_path).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        probabilities = torch.softmax(model(batch), dim=1)[0]
    return class_names[int(probabilities.argmax())], float(probabilities.max())
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[CourseDir, dict[str, Result]]:
    root = tmp_path_factory.mktemp("e2e2")
    course = CourseDir(root / "grading", ASSIGNMENT, ASSIGNMENT)
    base = ["--course-dir", str(course.root), "--assignment", ASSIGNMENT]
    sandbox = ["--sandbox", "required" if isolation(Limits()).filesystem else "off"]
    assert main([*base, "setup"]) == 0
    assert main([*base, "release"]) == 0
    inbox = root / "inbox"
    assert main([*base, "reference", str(inbox / "reference" / f"{ASSIGNMENT}.ipynb")]) == 0
    ref = nbformat.read(inbox / "reference" / f"{ASSIGNMENT}.ipynb", 4)
    submissions = {
        "stubs": nbformat.read(course.release_notebook, 4),
        "byreference": with_source(ref, "task3-answer", BEST_BY_REFERENCE),
        "trainmode": with_source(ref, "task4-answer", PREDICT_IN_TRAINING_MODE),
    }
    for student, nb in submissions.items():
        (inbox / student).mkdir(parents=True)
        nbformat.write(nb, inbox / student / f"{ASSIGNMENT}.ipynb")
    assert main([*base, "collect", str(inbox)]) == 0
    assert main([*base, "autograde", "--workers", "2", "--no-progress", *sandbox]) == 0
    assert main([*base, "feedback"]) == 0
    assert main([*base, "export"]) == 0
    students = ["reference", *submissions]
    return course, {s: Result.load(course, s) for s in students}


def test_reference_gets_every_autograded_point(graded) -> None:
    _, results = graded
    r = results["reference"]
    assert r.status == "graded" and r.failed_tests == {}, r.failed_tests
    assert (r.score, r.max_score, r.manual_pending) == (12, 14, 2)


def test_stubs_get_zero_and_are_told_each_task_is_not_done(graded) -> None:
    _, results = graded
    r = results["stubs"]
    assert r.score == 0 and r.manual_pending == 0
    assert sorted(r.failed_tests) == [f"task{n}-test" for n in range(1, 5)]
    for message in r.failed_tests.values():
        assert "this task is not done yet" in message


def test_named_bugs_reach_the_student(graded) -> None:
    _, results = graded
    by_reference = results["byreference"]
    assert list(by_reference.failed_tests) == ["task3-test"]
    assert "it was a reference, not a copy" in by_reference.failed_tests["task3-test"]
    assert by_reference.score == 9
    train_mode = results["trainmode"]
    assert list(train_mode.failed_tests) == ["task4-test"]
    assert "model.eval()" in train_mode.failed_tests["task4-test"]


def test_outputs_live_in_the_assignments_own_folders(graded) -> None:
    course, _ = graded
    assert course.own == course.root / "assignments" / ASSIGNMENT
    assert not (course.root / "grades.csv").exists()
    rows = list(csv.DictReader(course.grades_csv.open(encoding="utf-8")))
    assert {row["student"]: row["score"] for row in rows}["reference"] == "12"
    page = course.feedback("byreference").read_text(encoding="utf-8")
    assert "Task 3 (keeping the best state)" in page and "deepcopy" in page
