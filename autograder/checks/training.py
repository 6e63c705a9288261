"""Tasks 5 and 7: the optimizer over trainable parameters, and a short training run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from autograder.checks.common import TASKS, entry, isolated, raise_if_error
from autograder.feedback import fail, summarize
from course.grading_record import (
    OPTIMIZER_ARGS,
    TRAIN_EPOCHS,
    optimizer_fixture,
    training_fixture,
)
from course.training import evaluate
from solutions import transfer as reference

#: Optimizer settings that must be SGD's defaults (or the arguments given).
SETTINGS = ("lr", "momentum", "weight_decay", "dampening", "nesterov")

# --------------------------------------------------------------------------- task 5


def check_optimizer(record: Mapping[str, Any], seed: int) -> None:
    """Task 5: SGD over exactly the trainable parameters, with the given lr and momentum."""
    task = TASKS["optimizer"]
    args = ", ".join(f"{k}={v}" for k, v in OPTIMIZER_ARGS.items())
    recorded = entry(record, "models")
    for (label, model), found in zip(optimizer_fixture(seed), recorded, strict=True):
        call = f"make_optimizer(<{label}>, {args})"
        raise_if_error(task, found, call)
        with isolated():
            ref = reference.make_optimizer(model, **OPTIMIZER_ARGS)
        want_type = f"{type(ref).__module__}.{type(ref).__qualname__}"
        if not found.get("is_optimizer") or found.get("type") != want_type:
            fail(
                task,
                "the function must return the lecture's optimizer.",
                expected=f"{call} to return torch.optim.{type(ref).__name__}",
                found=str(found.get("type", "?")).rpartition(".")[2],
                hint="Return `torch.optim.SGD(params, lr=lr, momentum=momentum)`.",
            )
        names = [n for n, _ in model.named_parameters()]
        index = {id(p): i for i, p in enumerate(model.parameters())}
        want = {index[id(p)] for g in ref.param_groups for p in g["params"]}
        groups = list(found.get("groups", []))
        held_list = [int(i) for g in groups for i in g.get("params", [])]
        held = set(held_list)
        frozen = [names[i] for i in sorted(held - want) if 0 <= i < len(names)]
        frozen += ["<not a parameter of the model>"] * held_list.count(-1)
        missing = [names[i] for i in sorted(want - held)]
        if frozen or missing:
            fail(
                task,
                "the optimizer holds the wrong parameters.",
                expected=f"{call}: the {len(want)} trainable tensors "
                f"({summarize(names[i] for i in sorted(want))})",
                found=f"{len(held_list)} tensors; frozen ones included: {summarize(frozen)}; "
                f"trainable ones left out: {summarize(missing)}",
                hint="Give SGD only parameters that train: "
                "`[p for p in model.parameters() if p.requires_grad]`. It must work for any "
                "model, so do not pick layers by name.",
            )
        ref_group = ref.param_groups[0]
        for group in groups:
            for key in SETTINGS:
                if group.get(key) != ref_group[key]:
                    fail(
                        task,
                        f"the optimizer's {key} is not the one asked for.",
                        expected=f"{call}: {key}={ref_group[key]}",
                        found=f"{key}={group.get(key)}",
                        hint="Pass the function's `lr` and `momentum` arguments to SGD and "
                        "leave the other settings at their defaults (the lecture's).",
                    )


# --------------------------------------------------------------------------- task 7


def mean_loss(model: nn.Module, dataset: torch.utils.data.TensorDataset) -> float:
    """Cross-entropy of ``model`` over the whole data set, in evaluation mode."""
    model.eval()
    with torch.no_grad():
        images, labels = dataset.tensors
        return nn.functional.cross_entropy(model(images), labels).item()


def check_training(record: Mapping[str, Any], seed: int) -> None:
    """Task 7: the loop lowers the loss, steps once per minibatch, and reports accuracy in %.

    The loss before and after and the accuracy are measured here, on the trained weights the
    kernel saved (the numbers the function returns are not trusted); the step count,
    ``zero_grad`` and train/eval modes were watched in the kernel while it ran.
    """
    task = TASKS["train"]
    call = f"train_and_evaluate(model, optimizer, train_loader, eval_loader, epochs={TRAIN_EPOCHS})"
    raise_if_error(task, record, call)
    with isolated():
        model, train_loader, eval_loader, train_set = training_fixture(seed)
        loss_before = mean_loss(model, train_set)
        state = entry(record, "state")
        try:
            model.load_state_dict(dict(state))
        except Exception:  # a model whose tensors changed shape or name
            fail(
                task,
                "the model's parameters changed shape or name during training.",
                expected="the same model, with trained weights",
                found="a state dict that does not fit the model",
                hint="Train the model you are given; do not replace its layers.",
            )
        loss_after = mean_loss(model, train_set)
        accuracy = evaluate(model, eval_loader)
    batches = TRAIN_EPOCHS * len(train_loader)
    if "form" in record:
        fail(
            task,
            "the result has the wrong form.",
            expected=f"{call} to return (losses, accuracy): a list of floats and a float",
            found=str(record["form"]),
            hint="Append `loss.item()` after each minibatch and return `losses, accuracy`.",
        )
    steps = int(entry(record, "steps"))
    if steps != batches:
        fail(
            task,
            "the optimizer did not take one step per minibatch.",
            expected=f"{batches} calls to optimizer.step() ({TRAIN_EPOCHS} epochs x "
            f"{len(train_loader)} minibatches)",
            found=f"{steps}",
            hint="Inside the loop over train_loader: zero_grad, forward, loss, backward, step.",
        )
    accumulated = int(entry(record, "accumulated_steps"))
    if accumulated:
        fail(
            task,
            "gradients piled up from earlier minibatches.",
            expected="each step to use only the current minibatch's gradient",
            found=f"{accumulated} of {batches} steps used accumulated gradients",
            hint="Call `optimizer.zero_grad()` before `loss.backward()` in every iteration.",
        )
    if record.get("first_mode") is not True:
        fail(
            task,
            "the model was not in training mode while it trained.",
            expected="model.train() before the training loop",
            found="model.eval() mode",
            hint="Call `model.train()` at the start of each epoch (dropout must be active).",
        )
    losses = list(entry(record, "losses"))
    if len(losses) != batches:
        fail(
            task,
            "the function must return one loss per minibatch.",
            expected=f"{batches} losses",
            found=f"{len(losses)}",
            hint="Append `loss.item()` inside the loop over minibatches, as in the lecture's plot.",
        )
    if not loss_after < 0.8 * loss_before:
        fail(
            task,
            "the loss did not fall.",
            expected=f"cross-entropy on the training set to fall below {0.8 * loss_before:.3f} "
            f"(from {loss_before:.3f})",
            found=f"{loss_after:.3f}",
            hint="Use `nn.functional.cross_entropy(model(images), labels)`, call "
            "`loss.backward()` and `optimizer.step()` for every minibatch.",
        )
    if record.get("last_mode") is not False:
        fail(
            task,
            "the model was evaluated in training mode (dropout still active).",
            expected="model.eval() before the loop over eval_loader",
            found="the last forward pass ran in training mode",
            hint="Call `model.eval()` and wrap the evaluation loop in `with torch.no_grad():`.",
        )
    reported = float(entry(record, "accuracy"))
    if math.isclose(reported, accuracy, abs_tol=1e-3):
        return
    if math.isclose(reported * 100, accuracy, abs_tol=1e-3):
        hint = "Report the accuracy in percent (0-100), as the lecture does: multiply by 100."
    else:
        hint = (
            "Count correct predictions over the whole eval_loader and divide by the number "
            "of examples; averaging per-batch accuracies is wrong when batches differ "
            "in size."
        )
    fail(
        task,
        "the reported accuracy does not match the trained model's.",
        expected=f"{accuracy:.2f} (% correct on eval_loader, re-measured after training)",
        found=f"{reported:.4g}",
        hint=hint,
    )
