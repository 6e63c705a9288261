"""Task 1 of "Fine-tuning in stages": the parameter groups (:func:`check_groups`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autograder.checks.common import entry, raise_if_error
from autograder.checks.staged.shared import (
    TASKS,
    head_indices,
    held_indices,
    is_close,
    names_of,
    rate_of,
)
from autograder.feedback import fail
from course.grading_staged import groups_fixture


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
        head = head_indices(model)
        trainable = {i for i, p in enumerate(model.parameters()) if p.requires_grad}
        held_list = held_indices(groups)
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
                found=f"in two groups: {names_of(model, twice)}",
                hint="Leave the head's parameters out of the body group: compare them by "
                "identity, e.g. `head_ids = {id(p) for p in head_of(model).parameters()}`.",
            )
        frozen = held - trainable
        if frozen:
            fail(
                task,
                "the groups include frozen parameters.",
                expected=f"{call}: only the {len(trainable)} parameters with requires_grad",
                found=f"{len(held)} parameters, frozen ones included: {names_of(model, frozen)}",
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
                found=f"left out: {names_of(model, missing)}",
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
        rate = rate_of(groups)
        head_rates = {rate[i] for i in head & trainable}
        body_rates = {rate[i] for i in trainable - head}
        if all(is_close(r, head_lr) for r in head_rates) and all(
            is_close(r, body_lr) for r in body_rates
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
        if all(is_close(r, body_lr) for r in head_rates) and all(
            is_close(r, head_lr) for r in body_rates
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
