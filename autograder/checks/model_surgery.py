"""Tasks 1 to 3: load VGG16, freeze and unfreeze it, replace its head.

Task 3's checks are in :mod:`autograder.checks.model_surgery_head`, re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from autograder.checks.common import (
    count,
    entry,
    isolated,
    lecture_bug_trainable,
    raise_if_error,
    require_module,
    shapes,
    title,
    trainable_names,
)
from autograder.checks.model_surgery_head import (
    HEAD_CRASH_HINT,
    HEAD_FLAGS_HINT,
    check_head_replacement,
    compare_head,
    compare_real_head,
)
from autograder.feedback import fail, summarize
from course.grading_inputs import (
    FREEZE_ORDERS,
    freeze_fixture,
    missing_weights_file,
    swap_vgg_head,
)
from solutions import transfer as reference

FREEZE_FIX = (
    "`model.classifier[3].requires_grad = True` only attaches a new attribute to the Linear "
    "module, and PyTorch never reads it. Call `model.classifier[3].requires_grad_(True)` (with "
    "the trailing underscore: it sets every parameter of the module), or loop: "
    "`for p in model.classifier[3].parameters(): p.requires_grad = True`. "
    "See Lesson 2: Freezing layers."
)


# --------------------------------------------------------------------------- task 1


def check_load_vgg16(record: Mapping[str, Any], seed: int) -> None:
    """Task 1: ``load_vgg16(weights)`` returns course.models' VGG16 and passes ``weights`` on.

    Recorded with ``weights="random"`` (no download can happen). A path to a missing file must
    raise the course's ``WeightsError``: that shows the argument reaches
    ``course.models.load_model`` instead of being ignored.
    """
    task = title("load")
    call = "load_vgg16(weights='random')"
    found_model = entry(record, "model")
    raise_if_error(task, found_model, call)
    model = require_module(task, found_model, call)
    with isolated(), torch.device("meta"):
        expected = reference.load_vgg16(weights="random")
    want, got = shapes(expected), dict(model.get("shapes", {}))
    if want != got:
        missing = [k for k in want if k not in got]
        wrong = [k for k in want if k in got and got[k] != want[k]]
        fail(
            task,
            "the model is not torchvision's VGG16 with its 1000-way ImageNet head.",
            expected=f"{type(expected).__name__} with {sum(math.prod(s) for s in want.values()):,} "
            "values in its state dict",
            found=f"{model.get('type')}; missing: {summarize(missing)}; "
            f"different shape: {summarize(wrong)}",
            hint="Return `load_model('vgg16', weights=weights)` from course.models unchanged; "
            "tasks 2 and 3 modify it later.",
        )
    want_label = getattr(expected, "weights_label", None)
    got_label = model.get("weights_label")
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
    check_missing_file(task, entry(record, "missing_file"), seed)


def check_missing_file(task: str, outcome: Any, seed: int) -> None:
    """A missing weights file must give the reference's error: its type, naming the file.

    The path is drawn from the seed, so only a function that passes ``weights`` on to
    ``course.models.load_model`` produces this outcome; the parent recomputes it.
    """
    path = missing_weights_file(seed)
    with isolated(), torch.device("meta"):
        try:
            reference.load_vgg16(weights=path)
        except Exception as error:  # the reference's outcome: WeightsError naming the path
            want_type = type(error).__name__
        else:  # pragma: no cover - the reference always refuses a missing file
            raise AssertionError(f"the reference loaded {path}")
    call = f"load_vgg16(weights={path!r})"
    if isinstance(outcome, Mapping) and "type" in outcome:
        found = f"{outcome.get('type')}: {str(outcome.get('message', ''))[:300]}"
        if outcome.get("type") == want_type and Path(path).name in str(outcome.get("message")):
            return
    else:
        found = "a model, as if the argument were ignored"
    fail(
        task,
        "the `weights` argument does not reach course.models.load_model.",
        expected=f"{call} to raise course.errors.{want_type} naming that file",
        found=found,
        hint="Pass the argument on: `load_model('vgg16', weights=weights)`, not a fixed value.",
    )


# --------------------------------------------------------------------------- task 2


def reference_trainable(seed: int, order: str) -> tuple[list[str], dict[str, list[int]], int]:
    """Parameter names the reference leaves trainable, every tensor's shape, head size."""
    model, classes = freeze_fixture(seed, order)
    with torch.device("meta"):
        model = reference.unfreeze(reference.freeze_backbone(model))
        if order == "head_after":
            swap_vgg_head(model, classes)
    head = model.classifier[6]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    return trainable, shapes(model), lecture_bug_trainable(head.in_features, head.out_features)


def check_freezing(record: Mapping[str, Any], seed: int) -> None:
    """Task 2: exactly fc6, fc7 and the head train; the lecture's bug is named with its fix.

    Two seeded VGG-shaped models (meta device, drawn widths, depths and class counts) were
    recorded: one in the lecture's order (the function, then a new head), one with its head
    replaced first. Both must leave exactly the reference's parameter names trainable.
    """
    task = title("freeze")
    for order in FREEZE_ORDERS:
        found = entry(record, order)
        raise_if_error(task, found, "freeze_and_unfreeze(<VGG-like model>)")
        model = require_module(task, found, "freeze_and_unfreeze(model)")
        expected, sizes, head_only = reference_trainable(seed, order)
        found_names = list(dict(model.get("requires_grad", {})))
        if dict(model.get("shapes", {})) != sizes or set(found_names) != set(
            n for n in sizes if n.endswith(("weight", "bias"))
        ):
            fail(
                task,
                "the returned model is not the model the function was given.",
                expected=f"the same VGG-shaped model ({len(sizes)} tensors, its own layer "
                "sizes), with some parameters frozen",
                found=f"a model with {len(dict(model.get('shapes', {})))} tensors of other "
                "names or shapes",
                hint="Change `requires_grad` on the model you receive and `return model`; "
                "do not build or load a new VGG16 (the grader also passes smaller VGG-shaped "
                "models).",
            )
        compare_trainable(task, model, expected, sizes, order == "head_before", head_only)


def compare_trainable(
    task: str,
    model: Mapping[str, Any],
    expected: list[str],
    sizes: Mapping[str, list[int]],
    head_first: bool,
    head_only: int,
) -> None:
    """Fail with the most specific diagnosis when the trainable parameters differ."""
    found = trainable_names(model)
    if set(found) == set(expected):
        return
    found_sizes = {**sizes, **dict(model.get("shapes", {}))}
    order = (
        "with the head replaced before your function ran"
        if head_first
        else "in the lecture's order (your function, then the new head)"
    )
    want = f"{count(expected, sizes):,} trainable parameters in {summarize(expected)}"
    got = f"{count(found, found_sizes):,} trainable parameters in {summarize(found)}"
    flagged = list(model.get("module_attribute", []))
    types = dict(model.get("modules", {}))
    if flagged:
        where = ", ".join(f"{name or 'model'} ({types.get(name, '?')})" for name in flagged[:6])
        fail(
            task,
            "this is the lecture's freezing bug: `requires_grad` was set on a module, "
            "not on its parameters.",
            expected=want,
            found=f"{got}\na plain `requires_grad` attribute on {where}; its parameters stayed "
            "frozen",
            hint=FREEZE_FIX,
        )
    if not head_first and count(found, found_sizes) == head_only:
        fail(
            task,
            f"only the new head trains ({head_only:,} parameters): a linear probe, "
            "which is what the lecture's code really ran, not fine-tuning fc6 and fc7.",
            expected=want,
            found=got,
            hint="After freezing everything, make fc6 (classifier[0]) and fc7 (classifier[3]) "
            "trainable again with `.requires_grad_(True)`. " + FREEZE_FIX,
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


__all__ = [
    "FREEZE_FIX",
    "HEAD_CRASH_HINT",
    "HEAD_FLAGS_HINT",
    "check_freezing",
    "check_head_replacement",
    "check_load_vgg16",
    "check_missing_file",
    "compare_head",
    "compare_real_head",
    "compare_trainable",
    "reference_trainable",
]
