"""Tasks 2 and 3 of "Fine-tuning in stages": training in stages, keeping the best state.

Mirrors the "tasks 2 and 3" recorders of :mod:`course.grading_staged`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from autograder.checks.common import entry, isolated, raise_if_error
from autograder.checks.staged.shared import (
    SGD,
    STATE_TOLERANCE,
    TASKS,
    head_indices,
    held_indices,
    is_close,
    names_of,
    rate_of,
)
from autograder.feedback import fail
from course.grading_staged import (
    BestWatcher,
    EpochWatcher,
    best_fixture,
    stages_fixture,
)
from solutions import staged as reference

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
    head = head_indices(model)
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
        held = set(held_indices(groups))
        rate = rate_of(groups)
        if stage == 1:
            if trainable != head:
                fail(
                    task,
                    "stage 1 must train the head alone: the body was not frozen.",
                    expected=f"{where}: only the head trainable ({names_of(model, head)})",
                    found=f"trainable: {names_of(model, trainable)}",
                    hint="Freeze everything, then unfreeze the head: "
                    "`model.requires_grad_(False)`, `head_of(model).requires_grad_(True)`.",
                )
            if held != head:
                fail(
                    task,
                    "the stage 1 optimizer must hold the head's parameters only.",
                    expected=f"{where}: {names_of(model, head)}",
                    found=names_of(model, held),
                    hint="Build it from `head_of(model).parameters()`.",
                )
            if not all(is_close(rate[i], args["head_lr"]) for i in held):
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
                    found=f"trainable: {names_of(model, trainable)}",
                    hint="Before stage 2, unfreeze the whole model: `model.requires_grad_(True)`.",
                )
            if trainable != everything:
                fail(
                    task,
                    "stage 2 must train every parameter.",
                    expected=f"{where}: all {len(everything)} parameters trainable",
                    found=f"frozen: {names_of(model, everything - trainable)}",
                    hint="Unfreeze with `model.requires_grad_(True)` (the method, with the "
                    "underscore).",
                )
            if held <= head:
                fail(
                    task,
                    "stage 2's optimizer still holds only the head: the body is unfrozen but "
                    "nothing updates it.",
                    expected=f"{where}: an optimizer over all {len(everything)} parameters",
                    found=f"only {names_of(model, held)}",
                    hint="After unfreezing, build a NEW optimizer: the stage 1 optimizer (or "
                    "one built before unfreezing) knows only the head's parameters. "
                    "`torch.optim.SGD(param_groups(model, head_lr, body_lr), momentum=momentum)`.",
                )
            if held != everything:
                fail(
                    task,
                    "stage 2's optimizer does not hold every parameter.",
                    expected=f"{where}: all {len(everything)} parameters",
                    found=f"left out: {names_of(model, everything - held)}",
                    hint="Use `param_groups(model, head_lr, body_lr)` after unfreezing (and "
                    "make task 1 pass first).",
                )
            body_rates = {rate[i] for i in everything - head}
            head_rates = {rate[i] for i in head}
            if any(is_close(r, args["head_lr"]) for r in body_rates):
                fail(
                    task,
                    "the body was unfrozen without lowering its learning rate.",
                    expected=f"{where}: body at lr={args['body_lr']:g}, head at "
                    f"lr={args['head_lr']:g}",
                    found=f"body at lr={sorted(map(str, body_rates))}",
                    hint="A pretrained body trained at the head's rate forgets what it knew. "
                    "Give it `body_lr` with `param_groups(model, head_lr, body_lr)`.",
                )
            if not all(is_close(r, args["body_lr"]) for r in body_rates) or not all(
                is_close(r, args["head_lr"]) for r in head_rates
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
    if found_epoch != best_epoch or not is_close(found_score, best_score):
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
