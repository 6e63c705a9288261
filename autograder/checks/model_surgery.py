"""Tasks 1 to 3: load VGG16, freeze and unfreeze it, replace its head."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

from autograder.checks.common import (
    LECTURE_BUG_TRAINABLE,
    TASKS,
    _count,
    _isolated,
    _meta_model,
    _on_meta,
    _require_module,
    _shapes,
    _trainable,
)
from autograder.feedback import call_student, fail, summarize
from solutions import transfer as reference

_FREEZE_FIX = (
    "`model.classifier[3].requires_grad = True` only attaches a new attribute to the Linear "
    "module, and PyTorch never reads it. Call `model.classifier[3].requires_grad_(True)` (with "
    "the trailing underscore: it sets every parameter of the module), or loop: "
    "`for p in model.classifier[3].parameters(): p.requires_grad = True`. "
    "See Lesson 2: Freezing layers."
)


# --------------------------------------------------------------------------- task 1


def check_load_vgg16(load_vgg16: Callable[..., nn.Module]) -> None:
    """Task 1: ``load_vgg16(weights)`` returns course.models' VGG16 and passes ``weights`` on.

    Graded with ``weights="random"`` (no ImageNet download can happen here). A
    path to a missing file must raise the course's ``WeightsError``: that shows
    the argument reaches ``course.models.load_model`` instead of being ignored.
    """
    from course.errors import CourseError

    task = TASKS["load"]
    call = "load_vgg16(weights='random')"
    with _isolated():
        model = _require_module(task, _on_meta(task, load_vgg16, weights="random"), call)
        with torch.device("meta"):
            expected = reference.load_vgg16(weights="random")
    want, got = _shapes(expected), _shapes(model)
    if want != got:
        missing = [k for k in want if k not in got]
        wrong = [k for k in want if k in got and got[k] != want[k]]
        fail(
            task,
            "the model is not torchvision's VGG16 with its 1000-way ImageNet head.",
            expected=f"{type(expected).__name__} with {sum(math.prod(s) for s in want.values()):,} "
            "values in its state dict",
            found=f"{type(model).__name__}; missing: {summarize(missing)}; "
            f"different shape: {summarize(wrong)}",
            hint="Return `load_model('vgg16', weights=weights)` from course.models unchanged; "
            "tasks 2 and 3 modify it later.",
        )
    want_label = getattr(expected, "weights_label", None)
    got_label = getattr(model, "weights_label", None)
    if want_label != got_label:
        fail(
            task,
            "the model was not loaded through course.models.load_model.",
            expected=f"model.weights_label == {want_label!r}",
            found=f"model.weights_label == {got_label!r}",
            hint="Use `course.models.load_model('vgg16', weights=weights)`: it labels which "
            "weights a model carries, and gives a clear error when ImageNet weights are not "
            "available.",
        )
    missing_file = str(Path(tempfile.gettempdir()) / "no-such-dir-autograder" / "vgg16.pth")
    with _isolated(), torch.device("meta"):  # a student who ignores the path builds a VGG16
        try:
            load_vgg16(weights=missing_file)
        except CourseError:
            return
        except Exception as error:  # reported to the student
            found = f"{type(error).__name__}: {error}"
        else:
            found = "a model, as if the argument were ignored"
    fail(
        task,
        "the `weights` argument does not reach course.models.load_model.",
        expected=f"load_vgg16(weights={missing_file!r}) to raise course.errors.WeightsError",
        found=found,
        hint="Pass the argument on: `load_model('vgg16', weights=weights)`, not a fixed value.",
    )


# --------------------------------------------------------------------------- task 2


def _reference_trainable(head_first: bool) -> dict[str, nn.Parameter]:
    model = _meta_model("vgg16")
    with torch.device("meta"):
        if head_first:
            model = reference.replace_head(model, 10)
        model = reference.unfreeze(reference.freeze_backbone(model))
        if not head_first:
            model = reference.replace_head(model, 10)
    return _trainable(model)


def check_freezing(freeze_and_unfreeze: Callable[[nn.Module], nn.Module]) -> None:
    """Task 2: exactly fc6, fc7 and the head train; the lecture's bug is named with its fix.

    Two orders are tried on a VGG16 on the meta device: the lecture's (freeze,
    then task 3 replaces the head) and the reverse (head replaced first). Both
    must leave exactly the reference's parameter names trainable.
    """
    task = TASKS["freeze"]
    for head_first in (False, True):
        with _isolated():
            model = _meta_model("vgg16")
            if head_first:
                with torch.device("meta"):
                    model = reference.replace_head(model, 10)
            model = _require_module(
                task, call_student(task, freeze_and_unfreeze, model), "freeze_and_unfreeze(model)"
            )
            if not head_first:
                with torch.device("meta"):
                    model = reference.replace_head(model, 10)
            expected = _reference_trainable(head_first)
        _compare_trainable(task, model, expected, head_first)


def _compare_trainable(
    task: str, model: nn.Module, expected: dict[str, nn.Parameter], head_first: bool
) -> None:
    found = _trainable(model)
    if set(found) == set(expected):
        return
    order = (
        "with the head replaced before your function ran"
        if head_first
        else "in the lecture's order (your function, then the new head)"
    )
    want = f"{_count(expected):,} trainable parameters in {summarize(expected)}"
    got = f"{_count(found):,} trainable parameters in {summarize(found)}"
    flagged = [name for name, module in model.named_modules() if "requires_grad" in vars(module)]
    if flagged:
        where = ", ".join(
            f"{name or 'model'} ({type(model.get_submodule(name)).__name__})" for name in flagged
        )
        fail(
            task,
            "this is the lecture's freezing bug: `requires_grad` was set on a module, "
            "not on its parameters.",
            expected=want,
            found=f"{got}\na plain `requires_grad` attribute on {where}; its parameters stayed "
            "frozen",
            hint=_FREEZE_FIX,
        )
    if not head_first and _count(found) == LECTURE_BUG_TRAINABLE:
        fail(
            task,
            f"only the new head trains ({LECTURE_BUG_TRAINABLE:,} parameters): a linear probe, "
            "which is what the lecture's code really ran, not fine-tuning fc6 and fc7.",
            expected=want,
            found=got,
            hint="After freezing everything, make fc6 (classifier[0]) and fc7 (classifier[3]) "
            "trainable again with `.requires_grad_(True)`. " + _FREEZE_FIX,
        )
    extra = [n for n in found if n not in expected]
    missing = [n for n in expected if n not in found]
    if extra:
        fail(
            task,
            f"some parameters that must stay frozen are trainable ({order}).",
            expected=want,
            found=f"{got}\nshould be frozen: {summarize(extra)}",
            hint="Freeze everything first with `model.requires_grad_(False)`, then unfreeze "
            "only classifier[0] (fc6), classifier[3] (fc7) and classifier[6] (the head).",
        )
    head_missing = head_first and all(n.startswith("classifier.6.") for n in missing)
    fail(
        task,
        f"some parameters that must train are frozen ({order}).",
        expected=want,
        found=f"{got}\nshould train: {summarize(missing)}",
        hint=(
            "Unfreeze the head too (classifier[6]), so your function gives the same result "
            "whether the head is replaced before or after it runs."
            if head_missing
            else "fc6 is classifier[0] and fc7 is classifier[3] (the ReLU and Dropout layers "
            "between them have no parameters); call `.requires_grad_(True)` on each of them "
            "and on the head, classifier[6]."
        ),
    )


# --------------------------------------------------------------------------- task 3

#: (family, classes, on meta device). Structure is checked on all three; MobileNetV3-Small,
#: the one cheap to build for real, also runs an image and proves the rest kept its weights.
HEAD_CASES: tuple[tuple[str, int, bool], ...] = (
    ("vgg16", 10, True),
    ("resnet18", 7, True),
    ("mobilenet_v3_small", 3, False),
)


_HEAD_CRASH_HINT = (
    "Your function must work for other families too, each keeping its last layer in another "
    "place: VGG16 `model.classifier[6]`, ResNet `model.fc`, MobileNetV3 `model.classifier[3]`. "
    "Find the last `nn.Linear` in `model.named_modules()` and replace it there."
)


def check_head_replacement(replace_head: Callable[[nn.Module, int], nn.Module]) -> None:
    """Task 3: a fresh, trainable ``Linear(in_features, num_classes)`` replaces the last layer.

    Tried on VGG16, ResNet-18 and MobileNetV3-Small, each with a different
    number of classes, and compared with ``solutions.transfer.replace_head``.
    Meta-device models are only compared by structure: a student's new layer
    may live on the CPU, which is right for a real model.
    """
    task = TASKS["head"]
    for family, classes, meta in HEAD_CASES:
        with _isolated():
            # The reference needs only the architecture.
            ref = _meta_model(family)
            with torch.device("meta"):
                ref = reference.replace_head(ref, classes)
            head = reference.head_name(ref)
            model = _meta_model(family) if meta else _small_model(family)
            # Keeping the old parameters referenced also keeps their ids unique.
            old = dict(model.named_parameters())
            before = {} if meta else {n: p.detach().clone() for n, p in old.items()}
            call = f"replace_head(<{type(model).__name__}>, {classes})"
            answer = call_student(task, replace_head, model, classes, hint=_HEAD_CRASH_HINT)
            model = _require_module(task, answer, call)
            _compare_head(task, family, classes, call, model, ref, head, before, old)


def _small_model(name: str) -> nn.Module:
    return torchvision.models.get_model(name, weights=None)


def _compare_head(
    task: str,
    family: str,
    classes: int,
    call: str,
    model: nn.Module,
    ref: nn.Module,
    head: str,
    before: dict[str, torch.Tensor],
    old: dict[str, nn.Parameter],
) -> None:
    want, got = _shapes(ref), _shapes(model)
    ref_head = ref.get_submodule(head)
    expected = f"{family}.{head} = Linear({ref_head.in_features}, {classes})"
    if want != got:
        key = f"{head}.weight"
        if set(want) == set(got) and len(got[key]) == 2:
            out_f, in_f = got[key]
            found = f"{family}.{head} with weight shape {got[key]} = Linear({in_f}, {out_f})"
            if in_f != ref_head.in_features:
                hint = (
                    "Keep the old layer's input size: "
                    "`nn.Linear(old.in_features, num_classes)` where `old` is the layer you "
                    "replace; it differs between families."
                )
            else:
                hint = "Use the `num_classes` argument for the output size, not a fixed number."
            fail(
                task,
                f"the new head of {family} has the wrong shape.",
                expected=expected,
                found=found,
                hint=hint,
            )
        extra = [k for k in got if k not in want]
        missing = [k for k in want if k not in got]
        fail(
            task,
            f"{call} changed the wrong part of the model.",
            expected=expected + ", everything else unchanged",
            found=f"extra: {summarize(extra)}; missing: {summarize(missing)}",
            hint="Replace the last Linear layer in place (ResNet: `model.fc`; VGG and "
            "MobileNetV3: `model.classifier[-1]`) instead of adding a layer after it or "
            "wrapping the model.",
        )
    new_head = model.get_submodule(head)
    if not isinstance(new_head, nn.Linear) or new_head.weight is old.get(f"{head}.weight"):
        fail(
            task,
            f"the head of {family} was not replaced by a new layer.",
            expected=expected + " (a new layer)",
            found=f"{type(new_head).__name__} at {head}, the original object",
            hint="Assign a new `nn.Linear(old.in_features, num_classes)` to the head's place.",
        )
    frozen = [n for n, p in new_head.named_parameters() if not p.requires_grad]
    if frozen:
        fail(
            task,
            f"the new head of {family} is frozen.",
            expected="every parameter of the new head trainable",
            found=f"frozen: {', '.join(frozen)}",
            hint="A fresh nn.Linear is trainable; do not freeze it after creating it.",
        )
    now = dict(model.named_parameters())
    changed = [
        n
        for n, value in before.items()
        if not n.startswith(head + ".") and not torch.equal(now[n].detach(), value)
    ]
    if changed:
        fail(
            task,
            f"{call} changed layers other than the head.",
            expected="the rest of the model exactly as it came in",
            found=f"changed: {summarize(changed)}",
            hint="Only replace the last layer; do not reload or re-initialize the model.",
        )
    if before:  # real (small) models: run one image through
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 32, 32))
        if tuple(out.shape) != (1, classes):
            fail(
                task,
                f"{family} does not give {classes} scores per image.",
                expected=f"output shape (1, {classes})",
                found=f"{tuple(out.shape)}",
                hint="The last layer's out_features must be num_classes.",
            )
