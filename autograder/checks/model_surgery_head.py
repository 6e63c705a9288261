"""Task 3: replace the head (``replace_head``), on VGG16, ResNet-18 and MobileNetV3-Small.

Part of :mod:`autograder.checks.model_surgery`, which re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torchvision
from torch import nn

from autograder.checks.common import (
    entry,
    isolated,
    raise_if_error,
    require_module,
    shapes,
    title,
)
from autograder.feedback import fail, summarize
from course.grading_inputs import (
    HEAD_CASES,
    HEAD_FROZEN,
    head_classes,
    head_fixture,
    meta_model,
)
from solutions import transfer as reference

HEAD_CRASH_HINT = (
    "Your function must work for other families too, each keeping its last layer in another "
    "place: VGG16 `model.classifier[6]`, ResNet `model.fc`, MobileNetV3 `model.classifier[3]`. "
    "Find the last `nn.Linear` in `model.named_modules()` and replace it there."
)
HEAD_FLAGS_HINT = (
    "replace_head must only swap the last layer: leave `requires_grad` of every other "
    "parameter as it came in (freezing is task 2's job). Run in the lecture's order "
    "(freeze_and_unfreeze first, then replace_head), a replace_head that freezes the model "
    "undoes the unfreezing of fc6 and fc7, and only the new head trains: the lecture's bug."
)


def check_head_replacement(record: Mapping[str, Any], seed: int) -> None:
    """Task 3: a fresh, trainable ``Linear(in_features, num_classes)`` replaces the last layer.

    Recorded on VGG16, ResNet-18 (meta device, part of each frozen) and a seeded
    MobileNetV3-Small, each with a different number of classes, and compared with
    ``solutions.transfer.replace_head``. Every other parameter must keep its value and its
    ``requires_grad`` flag.
    """
    task = title("head")
    for family, real in HEAD_CASES:
        classes = head_classes(family, seed)
        found = entry(record, family)
        model_type = type(meta_model(family)).__name__
        call = f"replace_head(<{model_type}>, {classes})"
        raise_if_error(task, found, call, hint=HEAD_CRASH_HINT)
        model = require_module(task, found, call)
        with isolated():
            ref = reference.replace_head(meta_model(family), classes)
        compare_head(task, family, classes, call, model, ref, seed, real)


def compare_head(
    task: str,
    family: str,
    classes: int,
    call: str,
    model: Mapping[str, Any],
    ref: nn.Module,
    seed: int,
    real: bool,
) -> None:
    """Compare one recorded ``replace_head`` result with the reference ``ref``."""
    head = reference.head_name(ref)
    want, got = shapes(ref), dict(model.get("shapes", {}))
    ref_head = ref.get_submodule(head)
    expected = f"{family}.{head} = Linear({ref_head.in_features}, {classes})"
    if want != got:
        key = f"{head}.weight"
        if set(want) == set(got) and len(got[key]) == 2:
            out_f, in_f = got[key]
            found = f"{family}.{head} with weight shape {tuple(got[key])} = Linear({in_f}, {out_f})"
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
    new_type = dict(model.get("modules", {})).get(head)
    if new_type != "Linear" or f"{head}.weight" in model.get("same_objects", []):
        fail(
            task,
            f"the head of {family} was not replaced by a new layer.",
            expected=expected + " (a new layer)",
            found=f"{new_type} at {head}, the original object",
            hint="Assign a new `nn.Linear(old.in_features, num_classes)` to the head's place.",
        )
    flags = dict(model.get("requires_grad", {}))
    frozen = [n for n, flag in flags.items() if n.startswith(head + ".") and not flag]
    if frozen:
        fail(
            task,
            f"the new head of {family} is frozen.",
            expected="every parameter of the new head trainable",
            found=f"frozen: {', '.join(frozen)}",
            hint="A fresh nn.Linear is trainable; do not freeze it after creating it.",
        )
    came_in = {n: not n.startswith(HEAD_FROZEN[family]) for n, _ in ref.named_parameters()}
    flipped = [
        n for n, flag in flags.items() if not n.startswith(head + ".") and came_in.get(n) != flag
    ]
    if flipped:
        froze = [n for n in flipped if came_in.get(n)]
        fail(
            task,
            f"{call} changed which of the other layers train.",
            expected="requires_grad of every layer but the head exactly as it came in",
            found=(f"frozen by your function: {summarize(froze)}; " if froze else "")
            + f"changed: {summarize(flipped)}",
            hint=HEAD_FLAGS_HINT,
        )
    if real:
        compare_real_head(task, family, classes, call, model, head, seed)


def compare_real_head(
    task: str,
    family: str,
    classes: int,
    call: str,
    model: Mapping[str, Any],
    head: str,
    seed: int,
) -> None:
    """A real (seeded) model: every other tensor unchanged, and one image gives the scores."""
    state = model.get("state")
    if not isinstance(state, Mapping):
        fail(
            task,
            f"the model returned by {call} could not be inspected.",
            expected="a model of ordinary size on the CPU",
            found="a model too large (or on the meta device) to compare",
            hint="Only replace the last layer; do not build a new model.",
        )
    before = head_fixture(family, True, seed).state_dict()
    changed = [
        n
        for n, value in before.items()
        if not n.startswith(head + ".")
        and not (
            isinstance(state.get(n), torch.Tensor)
            and state[n].shape == value.shape
            and torch.equal(state[n], value)
        )
    ]
    if changed:
        fail(
            task,
            f"{call} changed layers other than the head.",
            expected="the rest of the model exactly as it came in",
            found=f"changed: {summarize(changed)}",
            hint="Only replace the last layer; do not reload or re-initialize the model.",
        )
    with isolated():
        rebuilt = reference.replace_head(
            torchvision.models.get_model(family, weights=None), classes
        )
        rebuilt.load_state_dict(dict(state))
        rebuilt.eval()
        with torch.no_grad():
            out = rebuilt(torch.zeros(1, 3, 32, 32))
    if tuple(out.shape) != (1, classes):
        fail(
            task,
            f"{family} does not give {classes} scores per image.",
            expected=f"output shape (1, {classes})",
            found=f"{tuple(out.shape)}",
            hint="The last layer's out_features must be num_classes.",
        )
