"""Exercise 2's checks: the reference passes on several seeds, and each named bug gets its hint.

Every answer runs through the recorder (as in the grading kernel) and a ``weights_only``
round trip (as the trusted parent loads records), then through the check.
"""

from __future__ import annotations

import copy
import io
import tempfile
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2 as T

from autograder.checks import staged as checks
from autograder.feedback import CheckFailure
from course import grading_staged as recorders
from course.models import IMAGENET_PREPROCESSING
from solutions import staged as reference
from solutions.staged import head_of, param_groups

SEEDS = (3, 2024, 987654321)
GRADE_IDS = {"groups": "task1-test", "stages": "task2-test", "best": "task3-test"}
GRADE_IDS["predict"] = "task4-test"


def grade(task: str, answer, seed: int = SEEDS[0]) -> str:
    """Record ``answer`` for ``task`` as the kernel would, then check it: "" or the message."""
    buffer = io.BytesIO()
    data = recorders.RECORDERS[task](answer, seed)
    torch.save({"task": task, "seed": seed, "data": data}, buffer)  # as record_task saves it
    buffer.seek(0)
    record = torch.load(buffer, weights_only=True)
    try:
        checks.CHECKS[GRADE_IDS[task]].compare(record, seed)
    except CheckFailure as failure:
        return str(failure)
    return ""


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "task, answer",
    [
        ("groups", reference.param_groups),
        ("stages", reference.train_in_stages),
        ("best", reference.keep_best),
        ("predict", reference.predict),
    ],
)
def test_reference_passes(task: str, answer, seed: int) -> None:
    assert grade(task, answer, seed) == ""


@pytest.mark.parametrize("task", sorted(GRADE_IDS))
def test_stub_is_not_done_yet(task: str) -> None:
    def stub(*args, **kwargs):
        raise NotImplementedError("Not done yet: replace this line with your code")

    message = grade(task, stub)
    assert "this task is not done yet" in message and "NotImplementedError" in message


def test_check_names_the_task_and_the_crash() -> None:
    message = grade("groups", lambda model, head_lr, body_lr: model.no_such_thing)
    assert message.startswith("Task 1 (parameter groups): your function raised an error.")
    assert "AttributeError" in message


# --------------------------------------------------------------------------- task 1


def groups_with_frozen(model, head_lr, body_lr):
    head = {id(p) for p in head_of(model).parameters()}
    return [
        {"params": [p for p in model.parameters() if id(p) not in head], "lr": body_lr},
        {"params": list(head_of(model).parameters()), "lr": head_lr},
    ]


def groups_same_rate(model, head_lr, body_lr):
    return [{**group, "lr": head_lr} for group in param_groups(model, head_lr, body_lr)]


def groups_swapped(model, head_lr, body_lr):
    return param_groups(model, body_lr, head_lr)


def groups_twice(model, head_lr, body_lr):
    trainable = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": trainable, "lr": body_lr},
        {"params": list(head_of(model).parameters()), "lr": head_lr},
    ]


@pytest.mark.parametrize(
    "answer, words",
    [
        (groups_with_frozen, "the groups include frozen parameters"),
        (groups_same_rate, "both groups have the same learning rate"),
        (groups_swapped, "the two rates are swapped"),
        (groups_twice, "a parameter is in more than one group"),
        (lambda m, h, b: {"params": list(m.parameters())}, "must return a list of parameter"),
    ],
)
def test_groups_bugs_are_named(answer, words: str) -> None:
    assert words in grade("groups", answer)


# --------------------------------------------------------------------------- task 2


def stages_without_unfreezing(model, train_epoch, head_epochs, body_epochs, head_lr, body_lr,
                              momentum=0.9):  # fmt: skip
    model.requires_grad_(False)
    head_of(model).requires_grad_(True)
    optimizer = torch.optim.SGD(head_of(model).parameters(), lr=head_lr, momentum=momentum)
    for _ in range(head_epochs):
        train_epoch(model, optimizer)
    optimizer = torch.optim.SGD(param_groups(model, head_lr, body_lr), momentum=momentum)
    for _ in range(body_epochs):
        train_epoch(model, optimizer)
    return model


def stages_same_rate(model, train_epoch, head_epochs, body_epochs, head_lr, body_lr,
                     momentum=0.9):  # fmt: skip
    model.requires_grad_(False)
    head_of(model).requires_grad_(True)
    optimizer = torch.optim.SGD(head_of(model).parameters(), lr=head_lr, momentum=momentum)
    for _ in range(head_epochs):
        train_epoch(model, optimizer)
    model.requires_grad_(True)
    optimizer = torch.optim.SGD(model.parameters(), lr=head_lr, momentum=momentum)
    for _ in range(body_epochs):
        train_epoch(model, optimizer)
    return model


def stages_old_optimizer(model, train_epoch, head_epochs, body_epochs, head_lr, body_lr,
                         momentum=0.9):  # fmt: skip
    model.requires_grad_(False)
    head_of(model).requires_grad_(True)
    optimizer = torch.optim.SGD(param_groups(model, head_lr, body_lr), momentum=momentum)
    for _ in range(head_epochs):
        train_epoch(model, optimizer)
    model.requires_grad_(True)
    for _ in range(body_epochs):
        train_epoch(model, optimizer)
    return model


def stages_never_frozen(model, train_epoch, head_epochs, body_epochs, head_lr, body_lr,
                        momentum=0.9):  # fmt: skip
    optimizer = torch.optim.SGD(param_groups(model, head_lr, body_lr), momentum=momentum)
    for _ in range(head_epochs + body_epochs):
        train_epoch(model, optimizer)
    return model


def stages_extra_epoch(model, train_epoch, head_epochs, body_epochs, head_lr, body_lr,
                       momentum=0.9):  # fmt: skip
    reference.train_in_stages(model, train_epoch, head_epochs, body_epochs - 1, head_lr, body_lr,
                              momentum)  # fmt: skip
    return model


def stages_nudged(model, *args, **kwargs):
    reference.train_in_stages(model, *args, **kwargs)
    with torch.no_grad():
        head_of(model).bias.add_(0.01)
    return model


@pytest.mark.parametrize(
    "answer, words",
    [
        (stages_without_unfreezing, "stage 2 never unfroze the body"),
        (stages_same_rate, "unfrozen without lowering its learning rate"),
        (stages_old_optimizer, "stage 2's optimizer still holds only the head"),
        (stages_never_frozen, "the body was not frozen"),
        (stages_extra_epoch, "train_epoch was not called once per epoch"),
        (stages_nudged, "the weights after training are not the reference's"),
        (lambda model, *a, **k: reference.train_in_stages(model, *a, **k) and None, "return the"),
    ],
)
def test_stages_bugs_are_named(answer, words: str) -> None:
    assert words in grade("stages", answer)


# --------------------------------------------------------------------------- task 3


def best_loop(model, train_epoch, validate, max_epochs, patience, save, restore, stop=True):
    best_epoch, best_score, best_state = 0, None, None
    for epoch in range(1, max_epochs + 1):
        train_epoch(model)
        score = validate(model)
        if best_score is None or score > best_score:
            best_epoch, best_score, best_state = epoch, score, save(model)
        elif stop and epoch - best_epoch >= patience:
            break
    if restore:
        restore(model, best_state)
    return best_epoch, best_score


def best_by_reference(model, train_epoch, validate, max_epochs, patience):
    return best_loop(model, train_epoch, validate, max_epochs, patience,
                     lambda m: m.state_dict(), lambda m, s: m.load_state_dict(s))  # fmt: skip


def best_shallow_copy(model, train_epoch, validate, max_epochs, patience):
    def save(m):
        return m.state_dict().copy()  # copies the dict, not the tensors

    return best_loop(model, train_epoch, validate, max_epochs, patience, save,
                     lambda m, s: m.load_state_dict(s))  # fmt: skip


def best_not_restored(model, train_epoch, validate, max_epochs, patience):
    return best_loop(model, train_epoch, validate, max_epochs, patience,
                     lambda m: copy.deepcopy(m.state_dict()), None)  # fmt: skip


def best_parameters_only(model, train_epoch, validate, max_epochs, patience):
    return best_loop(
        model, train_epoch, validate, max_epochs, patience,
        lambda m: {n: p.detach().clone() for n, p in m.named_parameters()},
        lambda m, s: m.load_state_dict(s, strict=False),
    )  # fmt: skip


def best_no_early_stop(model, train_epoch, validate, max_epochs, patience):
    return best_loop(model, train_epoch, validate, max_epochs, patience,
                     lambda m: copy.deepcopy(m.state_dict()),
                     lambda m, s: m.load_state_dict(s), stop=False)  # fmt: skip


def best_from_zero(model, train_epoch, validate, max_epochs, patience):
    epoch, score = reference.keep_best(model, train_epoch, validate, max_epochs, patience)
    return epoch - 1, score


@pytest.mark.parametrize(
    "answer, words",
    [
        (best_by_reference, "it was a reference, not a copy"),
        (best_shallow_copy, "it was a reference, not a copy"),
        (best_not_restored, "the best state was never restored"),
        (best_parameters_only, "BatchNorm's running statistics are the last epoch's"),
        (best_no_early_stop, "training did not stop early"),
        (best_from_zero, "the best epoch or its score is not the one returned"),
    ],
)
def test_best_bugs_are_named(answer, words: str) -> None:
    assert words in grade("best", answer)


def test_reference_bug_says_the_dict_shares_the_model_tensors() -> None:
    assert "shares its tensors with the model" in grade("best", best_by_reference)


# --------------------------------------------------------------------------- task 4


def make_predict(
    *, eval_mode=True, no_grad=True, stats=None, crop=True, squash=False, scale=True,
    bgr=False, softmax=True,
):  # fmt: skip
    """``predict`` with one of the usual mistakes switched on."""

    def predict(model, image_path, preprocessing, class_names, resize=256, crop_size=None,
                **kwargs):  # fmt: skip
        size = kwargs.get("crop", crop_size)
        image = T.ToImage()(Image.open(image_path).convert("RGB"))
        if bgr:
            image = image.flip(0)
        steps = [T.Resize((size, size)) if squash else T.Resize(resize)]
        if crop and not squash:
            steps.append(T.CenterCrop(size))
        used = stats or preprocessing
        steps += [T.ToDtype(torch.float32, scale=scale), T.Normalize(used.mean, used.std)]
        batch = T.Compose(steps)(image).unsqueeze(0)
        if eval_mode:
            model.eval()
        with torch.set_grad_enabled(not no_grad):
            logits = model(batch)
        values = torch.softmax(logits, dim=1)[0] if softmax else logits[0]
        index = int(values.argmax())
        return class_names[index], float(values[index])

    return predict


@pytest.mark.parametrize(
    "answer, words",
    [
        (make_predict(eval_mode=False), "the model predicted in training mode"),
        (make_predict(no_grad=False), "the forward pass recorded gradients"),
        (make_predict(stats=IMAGENET_PREPROCESSING), "normalized with ImageNet's mean/std"),
        (make_predict(crop=False), "resized but not center-cropped"),
        (make_predict(squash=True), "squeezed to a square"),
        (make_predict(scale=False), "not scaled from 0-255 to 0-1"),
        (make_predict(bgr=True), "BGR order"),
        (make_predict(softmax=False), "the predicted class or probability is not the"),
    ],
)
@pytest.mark.parametrize("seed", [SEEDS[0], 2**61 + 12345])
def test_predict_bugs_are_named(answer, words: str, seed: int) -> None:
    assert words in grade("predict", answer, seed)


def test_predict_with_pil_resizing_passes() -> None:
    """Resizing the PIL image instead of the tensor is a legitimate way: within tolerance."""

    def predict(model, image_path, preprocessing, class_names, resize=256, crop=224):
        image = Image.open(image_path).convert("RGB")
        image = T.CenterCrop(crop)(T.Resize(resize)(image))
        batch = T.Compose(
            [T.ToImage(), T.ToDtype(torch.float32, scale=True),
             T.Normalize(preprocessing.mean, preprocessing.std)]
        )(image).unsqueeze(0)  # fmt: skip
        model.eval()
        with torch.inference_mode():
            probabilities = model(batch).softmax(dim=1)[0]
        return class_names[int(probabilities.argmax())], float(probabilities.max())

    for seed in SEEDS:
        assert grade("predict", predict, seed) == ""


def test_predict_may_read_the_models_own_preprocessing() -> None:
    """``model.preprocessing`` is the same statistics as the argument (as in course.models)."""

    def predict(model, image_path, preprocessing, class_names, resize=256, crop=224):
        return reference.predict(model, image_path, model.preprocessing, class_names, resize, crop)

    assert grade("predict", predict) == ""


def test_inputs_vary_with_the_seed() -> None:
    """Hard-coded answers fail: rates, epochs, scores, sizes and class names change."""
    rates = {recorders.groups_fixture(s)[1:] for s in range(6)}
    stages = {str(recorders.stages_fixture(s)[2]) for s in range(6)}
    scores = {tuple(recorders.best_fixture(s)[2]) for s in range(4)}
    with tempfile.TemporaryDirectory() as folder:
        cases = [recorders.predict_fixture(s, Path(folder)) for s in range(2)]
    sizes = {(c["resize"], c["crop"], tuple(c["class_names"])) for run in cases for c in run}
    assert len(rates) > 1 and len(stages) > 1 and len(scores) == 4 and len(sizes) == 4


def test_head_of_is_the_last_linear() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))
    assert head_of(model) is model[2][0]
