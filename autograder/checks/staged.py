"""The checks of "Fine-tuning in stages": recorded results against :mod:`solutions.staged`.

Each check runs in the trusted grading process. It gets what the student's kernel recorded
for one task (:mod:`course.grading_staged`, loaded with ``weights_only=True``) and that task's
seed, rebuilds the same inputs, runs the reference on them and compares. Scores come from
what the trusted side recomputes: the groups the function returned, the weights training
left, the class and probability predicted. What the kernel watched (which parameters were
trainable at each epoch, the optimizer's rates, ``load_state_dict`` calls, the model's mode
and input in ``predict``) names the usual mistakes in the hints.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms import v2 as T

from autograder.checks.common import entry, isolated, raise_if_error
from autograder.feedback import fail, summarize
from autograder.scoring import Check
from autograder.tasks import Task, checks_of, register_tasks
from course.grading_staged import (
    BestWatcher,
    EpochWatcher,
    best_fixture,
    groups_fixture,
    predict_fixture,
    stages_fixture,
)
from course.models import IMAGENET_PREPROCESSING
from solutions import staged as reference

ASSIGNMENT = "fine_tuning_in_stages"
#: Task key -> (number, label, points): the source of the table at the end of this module.
ROWS = {
    "groups": (1, "parameter groups", 3),
    "stages": (2, "training in stages", 3),
    "best": (3, "keeping the best state", 3),
    "predict": (4, "predict", 3),
}
#: Task key -> how feedback names it, e.g. "Task 1 (parameter groups)".
TASKS = {key: f"Task {number} ({label})" for key, (number, label, _) in ROWS.items()}
#: Weights after training may differ by float rounding between the kernel and this process.
STATE_TOLERANCE = {"atol": 1e-4, "rtol": 1e-3}
#: Model input: resizing with PIL instead of tensors moves values by at most 0.026 (measured).
INPUT_TOLERANCE = 0.1
#: Predicted probability: PIL-resized inputs change it by less than 0.001 (measured).
PROBABILITY_TOLERANCE = 0.005
SGD = f"{torch.optim.SGD.__module__}.{torch.optim.SGD.__qualname__}"


def _close(a: float | None, b: float) -> bool:
    return isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def _held(groups: Sequence[Mapping[str, Any]]) -> list[int]:
    return [int(i) for g in groups for i in g.get("params", [])]


def _rates(groups: Sequence[Mapping[str, Any]]) -> dict[int, Any]:
    return {int(i): g.get("lr") for g in groups for i in g.get("params", [])}


def _names(model: torch.nn.Module, indices: Any) -> str:
    names = [n for n, _ in model.named_parameters()]
    return summarize(names[i] for i in sorted(indices) if 0 <= i < len(names))


def _head(model: torch.nn.Module) -> set[int]:
    index = {id(p): i for i, p in enumerate(model.parameters())}
    return {index[id(p)] for p in reference.head_of(model).parameters()}


# --------------------------------------------------------------------------- task 1


def check_groups(record: Mapping[str, Any], seed: int) -> None:
    """Task 1: the trainable parameters, each once, the head at head_lr and the body at body_lr."""
    task = TASKS["groups"]
    models, head_lr, body_lr = groups_fixture(seed)
    for (label, model), found in zip(models, entry(record, "models"), strict=True):
        call = f"param_groups(<{label}>, head_lr={head_lr:g}, body_lr={body_lr:g})"
        raise_if_error(task, found, call)
        if "form" in found:
            fail(
                task,
                "the function must return a list of parameter groups.",
                expected=f"{call} to return a list of dicts such as {{'params': [...], 'lr': ...}}",
                found=str(found["form"]),
                hint="Return `[{'params': body, 'lr': body_lr}, {'params': head, 'lr': head_lr}]`"
                ", which torch.optim.SGD accepts as it is.",
            )
        groups = list(entry(found, "groups"))
        head = _head(model)
        trainable = {i for i, p in enumerate(model.parameters()) if p.requires_grad}
        held_list = _held(groups)
        held = set(held_list)
        if -1 in held:
            fail(
                task,
                "a group holds something that is not a parameter of the model.",
                expected=f"{call}: only tensors from model.parameters()",
                found=f"{held_list.count(-1)} other object(s)",
                hint="Put the parameters themselves in 'params' (not names, copies or modules).",
            )
        twice = sorted({i for i in held_list if held_list.count(i) > 1})
        if twice:
            fail(
                task,
                "a parameter is in more than one group (torch.optim refuses that).",
                expected=f"{call}: each trainable parameter in exactly one group",
                found=f"in two groups: {_names(model, twice)}",
                hint="Leave the head's parameters out of the body group: compare them by "
                "identity, e.g. `head_ids = {id(p) for p in head_of(model).parameters()}`.",
            )
        frozen = held - trainable
        if frozen:
            fail(
                task,
                "the groups include frozen parameters.",
                expected=f"{call}: only the {len(trainable)} parameters with requires_grad",
                found=f"{len(held)} parameters, frozen ones included: {_names(model, frozen)}",
                hint="Keep only parameters that train: `[p for p in model.parameters() if "
                "p.requires_grad]`. A frozen parameter in an optimizer is wasted work, and "
                "weight decay or momentum would still change it.",
            )
        missing = trainable - held
        if missing:
            fail(
                task,
                "some trainable parameters are in no group.",
                expected=f"{call}: all {len(trainable)} trainable parameters",
                found=f"left out: {_names(model, missing)}",
                hint="The body group holds every trainable parameter that is not the head's.",
            )
        if any("lr" not in g for g in groups):
            fail(
                task,
                "a group has no learning rate of its own.",
                expected=f"{call}: 'lr' in every group",
                found=f"groups with the keys {[sorted(g) for g in groups]}",
                hint="Give each dict its rate: {'params': ..., 'lr': ...}.",
            )
        rate = _rates(groups)
        head_rates = {rate[i] for i in head & trainable}
        body_rates = {rate[i] for i in trainable - head}
        if all(_close(r, head_lr) for r in head_rates) and all(
            _close(r, body_lr) for r in body_rates
        ):
            continue
        found_text = f"head at {sorted(head_rates)}, body at {sorted(body_rates)}"
        expected = f"{call}: head at {head_lr:g}, body at {body_lr:g}"
        if len(head_rates | body_rates) == 1:
            fail(
                task,
                "both groups have the same learning rate.",
                expected=expected,
                found=found_text,
                hint="Discriminative rates: the pretrained body learns more slowly than the "
                "new head. Use `head_lr` for the head's group and `body_lr` for the body's.",
            )
        if all(_close(r, body_lr) for r in head_rates) and all(
            _close(r, head_lr) for r in body_rates
        ):
            fail(
                task,
                "the two rates are swapped.",
                expected=expected,
                found=found_text,
                hint="The head is the last nn.Linear (`head_of(model)`); it gets `head_lr`.",
            )
        fail(
            task,
            "the groups have the wrong learning rates.",
            expected=expected,
            found=found_text,
            hint="The head is `head_of(model)`, the model's last nn.Linear; everything else "
            "that trains is the body.",
        )


# --------------------------------------------------------------------------- task 2


def _same_state(found: Any, expected: Mapping[str, torch.Tensor], keys: Any = None) -> bool:
    if not isinstance(found, Mapping):
        return False
    keys = list(expected) if keys is None else list(keys)
    for key in keys:
        value = found.get(key)
        if not isinstance(value, torch.Tensor) or value.shape != expected[key].shape:
            return False
        if not torch.allclose(value.float(), expected[key].float(), **STATE_TOLERANCE):
            return False
    return True


def check_stages(record: Mapping[str, Any], seed: int) -> None:
    """Task 2: stage 1 trains the head alone, stage 2 everything with the body slower.

    The weights the kernel saved must be the reference's after the same schedule on the same
    minibatches; the epochs it watched (flags, groups, rates) name the mistake when not.
    """
    task = TASKS["stages"]
    with isolated(seed):
        model, batches, args = stages_fixture(seed)
        watcher = EpochWatcher(model, batches)
        reference.train_in_stages(model, watcher, **args)
        expected_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    shown = ", ".join(f"{k}={v:g}" for k, v in args.items())
    call = f"train_in_stages(model, train_epoch, {shown})"
    raise_if_error(task, record, call)
    if record.get("returned_model") is not True:
        fail(
            task,
            "the function must return the model it trained.",
            expected=f"{call} to return model",
            found="something else",
            hint="End the function with `return model`.",
        )
    calls = list(entry(record, "calls"))
    n_head, n_body = args["head_epochs"], args["body_epochs"]
    if len(calls) != n_head + n_body:
        fail(
            task,
            "train_epoch was not called once per epoch.",
            expected=f"{n_head} head epochs, then {n_body} epochs of everything: "
            f"{n_head + n_body} calls of train_epoch(model, optimizer)",
            found=f"{len(calls)} calls",
            hint="Call train_epoch(model, optimizer) in two loops: `range(head_epochs)`, "
            "then `range(body_epochs)`.",
        )
    head = _head(model)
    everything = set(range(len(list(model.parameters()))))
    for number, note in enumerate(calls, start=1):
        stage = 1 if number <= n_head else 2
        where = f"epoch {number} (stage {stage})"
        if note.get("optimizer") != SGD or "groups" not in note:
            fail(
                task,
                "train_epoch did not get an SGD optimizer.",
                expected=f"{where}: torch.optim.SGD",
                found=str(note.get("optimizer", "?")).rpartition(".")[2],
                hint="Stage 1: `torch.optim.SGD(head.parameters(), lr=head_lr, "
                "momentum=momentum)`; stage 2: `torch.optim.SGD(param_groups(model, head_lr, "
                "body_lr), momentum=momentum)`.",
            )
        trainable = set(note.get("trainable", []))
        groups = list(note["groups"])
        held = set(_held(groups))
        rate = _rates(groups)
        if stage == 1:
            if trainable != head:
                fail(
                    task,
                    "stage 1 must train the head alone: the body was not frozen.",
                    expected=f"{where}: only the head trainable ({_names(model, head)})",
                    found=f"trainable: {_names(model, trainable)}",
                    hint="Freeze everything, then unfreeze the head: "
                    "`model.requires_grad_(False)`, `head_of(model).requires_grad_(True)`.",
                )
            if held != head:
                fail(
                    task,
                    "the stage 1 optimizer must hold the head's parameters only.",
                    expected=f"{where}: {_names(model, head)}",
                    found=_names(model, held),
                    hint="Build it from `head_of(model).parameters()`.",
                )
            if not all(_close(rate[i], args["head_lr"]) for i in held):
                fail(
                    task,
                    "stage 1 trains the head at the wrong rate.",
                    expected=f"{where}: lr={args['head_lr']:g}",
                    found=f"lr={sorted({str(rate[i]) for i in held})}",
                    hint="Stage 1 uses head_lr.",
                )
        else:
            if trainable == head:
                fail(
                    task,
                    "stage 2 never unfroze the body: only the head trained all along.",
                    expected=f"{where}: every parameter trainable",
                    found=f"trainable: {_names(model, trainable)}",
                    hint="Before stage 2, unfreeze the whole model: `model.requires_grad_(True)`.",
                )
            if trainable != everything:
                fail(
                    task,
                    "stage 2 must train every parameter.",
                    expected=f"{where}: all {len(everything)} parameters trainable",
                    found=f"frozen: {_names(model, everything - trainable)}",
                    hint="Unfreeze with `model.requires_grad_(True)` (the method, with the "
                    "underscore).",
                )
            if held <= head:
                fail(
                    task,
                    "stage 2's optimizer still holds only the head: the body is unfrozen but "
                    "nothing updates it.",
                    expected=f"{where}: an optimizer over all {len(everything)} parameters",
                    found=f"only {_names(model, held)}",
                    hint="After unfreezing, build a NEW optimizer: the stage 1 optimizer (or "
                    "one built before unfreezing) knows only the head's parameters. "
                    "`torch.optim.SGD(param_groups(model, head_lr, body_lr), momentum=momentum)`.",
                )
            if held != everything:
                fail(
                    task,
                    "stage 2's optimizer does not hold every parameter.",
                    expected=f"{where}: all {len(everything)} parameters",
                    found=f"left out: {_names(model, everything - held)}",
                    hint="Use `param_groups(model, head_lr, body_lr)` after unfreezing (and "
                    "make task 1 pass first).",
                )
            body_rates = {rate[i] for i in everything - head}
            head_rates = {rate[i] for i in head}
            if any(_close(r, args["head_lr"]) for r in body_rates):
                fail(
                    task,
                    "the body was unfrozen without lowering its learning rate.",
                    expected=f"{where}: body at lr={args['body_lr']:g}, head at "
                    f"lr={args['head_lr']:g}",
                    found=f"body at lr={sorted(map(str, body_rates))}",
                    hint="A pretrained body trained at the head's rate forgets what it knew. "
                    "Give it `body_lr` with `param_groups(model, head_lr, body_lr)`.",
                )
            if not all(_close(r, args["body_lr"]) for r in body_rates) or not all(
                _close(r, args["head_lr"]) for r in head_rates
            ):
                fail(
                    task,
                    "stage 2 uses the wrong learning rates.",
                    expected=f"{where}: body at lr={args['body_lr']:g}, head at "
                    f"lr={args['head_lr']:g}",
                    found=f"body at {sorted(map(str, body_rates))}, head at "
                    f"{sorted(map(str, head_rates))}",
                    hint="Use `param_groups(model, head_lr, body_lr)` (and make task 1 pass "
                    "first).",
                )
        wrong_momentum = [
            g.get("momentum") for g in groups if g.get("momentum") != args["momentum"]
        ]
        if wrong_momentum:
            fail(
                task,
                "the optimizer's momentum is not the one asked for.",
                expected=f"{where}: momentum={args['momentum']:g}",
                found=f"momentum={wrong_momentum[0]}",
                hint="Pass `momentum=momentum` to both optimizers.",
            )
    if not _same_state(entry(record, "state"), expected_state):
        fail(
            task,
            "the weights after training are not the reference's.",
            expected="the weights the same schedule gives on the same minibatches",
            found="different weights",
            hint="Do nothing besides the two stages: no extra training steps, no changes to "
            "the weights, and each stage's optimizer made right before its loop.",
        )


# --------------------------------------------------------------------------- task 3


def check_best(record: Mapping[str, Any], seed: int) -> None:
    """Task 3: early stopping after ``patience`` epochs, and the best epoch's weights restored."""
    task = TASKS["best"]
    with isolated(seed):
        model, batches, scores, patience = best_fixture(seed)
        watcher = BestWatcher(model, batches, scores)
        best_epoch, best_score = reference.keep_best(
            model, watcher.train_epoch, watcher.validate, len(scores), patience
        )
        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        epochs = watcher.epochs
        # The weights after the last epoch, for the hints: the same run without a restore.
        last_model, batches, _, _ = best_fixture(seed)
        last = BestWatcher(last_model, batches, scores)
        for _ in range(epochs):
            last.train_epoch(last_model)
        last_state = {k: v.detach().clone() for k, v in last_model.state_dict().items()}
    shown = [f"{s:.4f}" for s in scores]
    call = f"keep_best(model, train_epoch, validate, max_epochs={len(scores)}, patience={patience})"
    raise_if_error(task, record, call)
    ran = int(entry(record, "epochs"))
    if ran != epochs:
        no_stop = ran == len(scores)
        fail(
            task,
            "training did not stop early." if no_stop else "training stopped at the wrong epoch.",
            expected=f"validation scores {', '.join(shown)}: best at epoch {best_epoch}, so "
            f"stop after epoch {epochs} ({patience} epochs without improvement)",
            found=f"{ran} epochs trained",
            hint="After each epoch, if the score did not improve on the best so far and "
            "`epoch - best_epoch >= patience`, break out of the loop."
            + (" Count epochs from 1." if not no_stop else ""),
        )
    if int(entry(record, "validations")) != ran:
        fail(
            task,
            "validate must be called once after each epoch.",
            expected=f"{ran} calls of validate(model)",
            found=f"{record.get('validations')}",
            hint="Call `score = validate(model)` right after `train_epoch(model)` and use it.",
        )
    if "form" in record:
        fail(
            task,
            "the result has the wrong form.",
            expected=f"{call} to return (best_epoch, best_score)",
            found=str(record["form"]),
            hint="Return the epoch (counted from 1) and the score of the best epoch.",
        )
    found_epoch, found_score = record.get("best_epoch"), record.get("best_score")
    if found_epoch != best_epoch or not _close(found_score, best_score):
        fail(
            task,
            "the best epoch or its score is not the one returned.",
            expected=f"validation scores {', '.join(shown)}: ({best_epoch}, {best_score:.4f})",
            found=f"({found_epoch}, {found_score})",
            hint="An epoch is the best when its score is strictly higher than every earlier "
            "one; count epochs from 1.",
        )
    state = entry(record, "state")
    if _same_state(state, best_state):
        return
    loads = list(record.get("loads", []))
    expected = f"the weights of epoch {best_epoch} (best score {best_score:.4f})"
    if _same_state(state, last_state):
        if not loads:
            fail(
                task,
                "the best state was never restored: the model keeps its last epoch's weights.",
                expected=expected,
                found=f"the weights of the last epoch, {epochs}",
                hint="After the loop, `model.load_state_dict(best_state)`.",
            )
        fail(
            task,
            "the saved best state tracked the last epoch: it was a reference, not a copy.",
            expected=expected,
            found=f"the weights of the last epoch, {epochs}"
            + (
                " (the dict restored shares its tensors with the model)"
                if any(load.get("shares_storage") for load in loads)
                else ""
            ),
            hint="`model.state_dict()` returns the model's live tensors, and `dict.copy()` "
            "copies only the dict: every later epoch overwrites them. Save "
            "`copy.deepcopy(model.state_dict())` (or `{k: v.clone() for k, v in ...}`).",
        )
    params = [n for n, _ in model.named_parameters()]
    buffers = [k for k in best_state if k not in params]
    if _same_state(state, best_state, params) and _same_state(state, last_state, buffers):
        fail(
            task,
            "only the parameters were restored; BatchNorm's running statistics are the last "
            "epoch's.",
            expected=expected + ", buffers included",
            found="the best parameters with the last epoch's running_mean / running_var",
            hint="Save and restore the whole `model.state_dict()` (deep-copied): it holds "
            "buffers such as BatchNorm's running statistics, not only parameters.",
        )
    fail(
        task,
        "the weights left in the model are not the best epoch's.",
        expected=expected,
        found="other weights",
        hint="Save a deep copy of `model.state_dict()` whenever the score improves, and "
        "`model.load_state_dict(best_state)` once, after the loop.",
    )


# --------------------------------------------------------------------------- task 4

#: Preparation mistakes the hints name: variant -> (problem, hint).
MISTAKES = {
    "imagenet": (
        "the image was normalized with ImageNet's mean/std, not this model's.",
        "Normalize with the statistics you are given: `T.Normalize(preprocessing.mean, "
        "preprocessing.std)`. Models trained with other preprocessing (such as the offline "
        "MobileNetV2's (p - 128) / 128) expect their own.",
    ),
    "squash": (
        "the image was squeezed to a square instead of resized and center-cropped.",
        "`T.Resize(resize)` (one number: the shorter side, keeping the aspect ratio), then "
        "`T.CenterCrop(crop)`.",
    ),
    "noscale": (
        "the pixels were not scaled from 0-255 to 0-1 before normalizing.",
        "Use `T.ToDtype(torch.float32, scale=True)` (scale=True divides uint8 values by 255).",
    ),
    "bgr": (
        "the colour channels are in BGR order.",
        "Open the file with PIL, `Image.open(path).convert('RGB')` (OpenCV reads BGR).",
    ),
    "nonorm": (
        "the image was not normalized.",
        "End the transform with `T.Normalize(preprocessing.mean, preprocessing.std)`.",
    ),
}


def prepared(path: str, preprocessing: Any, resize: int, crop: int, variant: str) -> torch.Tensor:
    """The model input for ``path``: the reference's (``"right"``) or a known mistake's."""
    from PIL import Image

    image = T.ToImage()(Image.open(path).convert("RGB"))
    if variant == "bgr":
        image = image.flip(0)
    if variant == "squash":
        image = T.Resize((crop, crop), antialias=True)(image)
    else:
        image = T.Resize(resize, antialias=True)(image)
        if variant != "nocrop":
            image = T.CenterCrop(crop)(image)
    image = T.ToDtype(torch.float32, scale=variant != "noscale")(image)
    stats = IMAGENET_PREPROCESSING if variant == "imagenet" else preprocessing
    if variant != "nonorm":
        image = T.Normalize(list(stats.mean), list(stats.std))(image)
    return image.unsqueeze(0)


def _matches(found: torch.Tensor, want: torch.Tensor) -> bool:
    return found.shape == want.shape and float((found - want).abs().max()) <= INPUT_TOLERANCE


def check_predict(record: Mapping[str, Any], seed: int) -> None:
    """Task 4: the class and probability the reference predicts, from the same model input."""
    task = TASKS["predict"]
    calls = list(entry(record, "calls"))
    with tempfile.TemporaryDirectory(prefix="predict-check-") as folder, isolated(seed):
        cases = predict_fixture(seed, Path(folder))
        jobs = [(case, image) for case in cases for image in case["images"]]
        for (case, image), found in zip(jobs, calls, strict=True):
            check_one_prediction(task, case, image, found)


def check_one_prediction(
    task: str, case: Mapping[str, Any], image: str, found: Mapping[str, Any]
) -> None:
    """Compare one recorded ``predict`` call with the reference (see :func:`check_predict`)."""
    stats, resize, crop = case["preprocessing"], case["resize"], case["crop"]
    call = (
        f"predict(model, '{Path(image).name}', preprocessing, class_names, resize={resize}, "
        f"crop={crop})"
    )
    model = case["model"]
    want_class, want_probability = reference.predict(
        model, image, stats, list(case["class_names"]), resize=resize, crop=crop
    )
    raise_if_error(task, found, call)
    forwards = list(found.get("forwards", []))
    if not forwards:
        fail(
            task,
            "the model was never called.",
            expected=f"{call} to run the model on the prepared image",
            found="no forward pass",
            hint="Call `model(batch)` on the transformed image with a batch dimension "
            "(`.unsqueeze(0)`).",
        )
    first = forwards[0]
    if first.get("training") is not False:
        fail(
            task,
            "the model predicted in training mode.",
            expected="model.eval() before the forward pass",
            found="training mode: dropout active, BatchNorm using the batch's statistics",
            hint="Call `model.eval()` first: a model fresh from training is still in training "
            "mode, and its predictions then change from call to call.",
        )
    if first.get("grad_enabled") is not False:
        fail(
            task,
            "the forward pass recorded gradients.",
            expected="the forward pass inside `with torch.no_grad():`",
            found="autograd enabled",
            hint="Wrap the prediction in `with torch.no_grad():` (or `torch.inference_mode()`):"
            " it saves memory and time, and the result needs no gradient.",
        )
    want_input = prepared(image, stats, resize, crop, "right")
    seen = first.get("input")
    if isinstance(seen, torch.Tensor) and not _matches(seen.float(), want_input):
        shape = tuple(seen.shape)
        for variant in ("nocrop", *MISTAKES):
            if _matches(seen.float(), prepared(image, stats, resize, crop, variant)):
                if variant == "nocrop":
                    problem, hint = (
                        "the image was resized but not center-cropped.",
                        f"After `T.Resize({resize})`, take `T.CenterCrop({crop})`: the model "
                        f"expects a {crop}x{crop} input.",
                    )
                else:
                    problem, hint = MISTAKES[variant]
                fail(
                    task,
                    problem,
                    expected=f"{call}: the model's input {tuple(want_input.shape)}, "
                    "resized, center-cropped, scaled to 0-1, normalized with its own mean/std",
                    found=f"an input {shape} that matches this mistake",
                    hint=hint,
                )
        if shape != tuple(want_input.shape):
            fail(
                task,
                "the model got an input of the wrong shape.",
                expected=f"{call}: an input of shape {tuple(want_input.shape)}",
                found=f"{shape}",
                hint=f"`T.Resize({resize})`, `T.CenterCrop({crop})`, then `.unsqueeze(0)` for "
                "the batch dimension.",
            )
        fail(
            task,
            "the model's input is not the prepared image.",
            expected=f"{call}: Resize({resize}), CenterCrop({crop}), ToDtype(float32, "
            "scale=True), Normalize(preprocessing.mean, preprocessing.std)",
            found=f"an input {shape} whose values differ by up to "
            f"{float((seen.float() - want_input).abs().max()):.3f}",
            hint="Build the transform in that order from torchvision.transforms.v2, applied "
            "to the RGB image.",
        )
    result = found.get("result")
    if not (
        isinstance(result, list)
        and len(result) == 2
        and isinstance(result[0], str)
        and isinstance(result[1], (int, float))
    ):
        fail(
            task,
            "the result has the wrong form.",
            expected=f"{call} to return (class name, probability): a str and a float",
            found=f"{result!r:.120}",
            hint="Return `class_names[index], float(probabilities[index])`.",
        )
    name, probability = result
    if name == want_class and abs(probability - want_probability) <= PROBABILITY_TOLERANCE:
        return
    if not 0 <= probability <= 1:
        hint = "Turn the logits into probabilities with `torch.softmax(logits, dim=1)`."
    else:
        hint = (
            "Take the softmax over the classes (`dim=1` of the (1, classes) output), its "
            "argmax, and return the class's name from `class_names` with its probability."
        )
    fail(
        task,
        "the predicted class or probability is not the reference's.",
        expected=f"{call}: ({want_class!r}, {want_probability:.4f})",
        found=f"({name!r}, {probability:.4f})",
        hint=hint,
    )


#: The exercise's tasks: key (record + recorder), test cell, number, label, check, points.
TABLE: tuple[Task, ...] = register_tasks(
    ASSIGNMENT,
    (
        Task(key, f"task{number}-test", number, label, check, points)
        for (key, (number, label, points)), check in zip(
            ROWS.items(), (check_groups, check_stages, check_best, check_predict), strict=True
        )
    ),
)
#: grade_id of each test cell -> how it is scored (derived from :data:`TABLE`).
CHECKS: dict[str, Check] = checks_of(TABLE)
