"""Tasks 5 and 7: the optimizer over trainable parameters, and a short training run."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from autograder.checks.common import entry, isolated, raise_if_error, title
from autograder.feedback import fail, summarize
from course.grading_inputs import (
    TRAIN_EPOCHS,
    optimizer_args,
    optimizer_fixture,
    training_fixture,
    training_rng_seed,
)
from solutions import transfer as reference

#: Optimizer settings that must be SGD's defaults (or the arguments given).
SETTINGS = ("lr", "momentum", "weight_decay", "dampening", "nesterov")

# --------------------------------------------------------------------------- task 5


def check_optimizer(record: Mapping[str, Any], seed: int) -> None:
    """Task 5: SGD over exactly the trainable parameters, with the given lr and momentum."""
    task = title("optimizer")
    given = optimizer_args(seed)
    args = ", ".join(f"{k}={v}" for k, v in given.items())
    recorded = entry(record, "models")
    for (label, model), found in zip(optimizer_fixture(seed), recorded, strict=True):
        call = f"make_optimizer(<{label}>, {args})"
        raise_if_error(task, found, call)
        with isolated():
            ref = reference.make_optimizer(model, **given)
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

#: How close the student's trained weights must be to the reference's (float32 on the CPU:
#: the same operations give the same numbers; a different loss reduction order differs by
#: about 1e-7).
WEIGHT_ATOL, WEIGHT_RTOL = 1e-5, 1e-4


@dataclass(frozen=True)
class LoopVariant:
    """The reference loop, or one of the mistakes students make in it, with its hint."""

    name: str
    problem: str
    expected: str
    hint: str
    zero_grad: bool = True
    train_mode: bool = True
    eval_mode: bool = True
    step: bool = True


#: The reference first, then each mistake whose weights the grader recomputes to name it.
VARIANTS: tuple[LoopVariant, ...] = (
    LoopVariant("reference", "", "", ""),
    LoopVariant(
        "no zero_grad",
        "gradients piled up from earlier minibatches.",
        "each step to use only the current minibatch's gradient",
        "Call `optimizer.zero_grad()` before `loss.backward()` in every iteration.",
        zero_grad=False,
    ),
    LoopVariant(
        "no train()",
        "the model was not in training mode while it trained.",
        "model.train() before the training loop",
        "Call `model.train()` at the start of each epoch (dropout and BatchNorm must be active).",
        train_mode=False,
    ),
    LoopVariant(
        "no eval()",
        "the model was evaluated in training mode (dropout still active, BatchNorm "
        "statistics still updating).",
        "model.eval() before the loop over eval_loader",
        "Call `model.eval()` and wrap the evaluation loop in `with torch.no_grad():`.",
        eval_mode=False,
    ),
    LoopVariant(
        "no step",
        "the weights did not train.",
        "one optimizer.step() per minibatch",
        "Use `nn.functional.cross_entropy(model(images), labels)`, call "
        "`loss.backward()` and `optimizer.step()` for every minibatch.",
        step=False,
    ),
)


def reference_loop(seed: int, variant: LoopVariant) -> tuple[dict[str, torch.Tensor], list, float]:
    """Run the task's loop (or ``variant``'s mistake) on the seed's inputs, as the kernel did.

    Returns the final state dict, the minibatch losses and the accuracy in percent.
    """
    model, optimizer, train_loader, eval_loader, _ = training_fixture(seed)
    losses = []
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(training_rng_seed(seed))
        for _ in range(TRAIN_EPOCHS):
            if variant.train_mode:
                model.train()
            for images, labels in train_loader:
                loss = nn.functional.cross_entropy(model(images), labels)
                if variant.zero_grad:
                    optimizer.zero_grad()
                loss.backward()
                if variant.step:
                    optimizer.step()
                losses.append(loss.item())
        if variant.eval_mode:
            model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, labels in eval_loader:
                correct += (model(images).argmax(dim=1) == labels).sum().item()
                total += labels.numel()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, losses, 100.0 * correct / total


def same_state(found: Any, want: Mapping[str, torch.Tensor]) -> bool:
    """True when ``found`` holds the same tensors as ``want``, within the tolerance."""
    if not isinstance(found, Mapping) or set(found) != set(want):
        return False
    for key, value in want.items():
        other = found[key]
        if not isinstance(other, torch.Tensor) or other.shape != value.shape:
            return False
        if value.is_floating_point():
            close = torch.allclose(
                other.double(), value.double(), atol=WEIGHT_ATOL, rtol=WEIGHT_RTOL
            )
            if not close:
                return False
        elif not torch.equal(other, value):
            return False
    return True


def check_training(record: Mapping[str, Any], seed: int) -> None:
    """Task 7: the loop's trained weights, losses and accuracy equal the reference loop's.

    The kernel ran the student's loop on seeded data, weights and dropout masks, and saved
    the model's final state (weights and BatchNorm statistics), the losses and the accuracy.
    Here the reference loop runs on the same inputs: the weights must match within float32
    tolerance. When they do not, the usual mistakes (no ``zero_grad``, no ``model.train()``,
    evaluation in training mode, no step) are rerun too, and the one that reproduces the
    student's weights is named with its fix. Nothing was watched in the kernel.
    """
    task = title("train")
    call = f"train_and_evaluate(model, optimizer, train_loader, eval_loader, epochs={TRAIN_EPOCHS})"
    raise_if_error(task, record, call)
    if "form" in record:
        fail(
            task,
            "the result has the wrong form.",
            expected=f"{call} to return (losses, accuracy): a list of floats and a float",
            found=str(record["form"]),
            hint="Append `loss.item()` after each minibatch and return `losses, accuracy`.",
        )
    found_state = entry(record, "state")
    want_state, want_losses, want_accuracy = reference_loop(seed, VARIANTS[0])
    batches = len(want_losses)
    if not same_state(found_state, want_state):
        for variant in VARIANTS[1:]:
            if same_state(found_state, reference_loop(seed, variant)[0]):
                fail(
                    task,
                    variant.problem,
                    expected=variant.expected,
                    found=f"the weights after training are those of a loop with '{variant.name}'",
                    hint=variant.hint,
                )
        fail(
            task,
            "the weights after training differ from the reference loop's.",
            expected=f"{call}: the weights of {TRAIN_EPOCHS} epochs x "
            f"{batches // TRAIN_EPOCHS} minibatches of SGD steps on the given model",
            found=summarize_difference(found_state, want_state),
            hint="Inside the loop over train_loader: forward, "
            "`nn.functional.cross_entropy`, `optimizer.zero_grad()`, `loss.backward()`, "
            "`optimizer.step()`, one step per minibatch; `model.train()` before training and "
            "`model.eval()` before evaluating. Train the model and optimizer you are given.",
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
    if not all(
        math.isclose(float(a), b, rel_tol=1e-4, abs_tol=1e-5)
        for a, b in zip(losses, want_losses, strict=True)
    ):
        fail(
            task,
            "the returned losses are not the minibatch losses of this run.",
            expected=f"({', '.join(f'{v:.4f}' for v in want_losses[:3])}, ...)",
            found=f"({', '.join(f'{float(v):.4f}' for v in losses[:3])}, ...)",
            hint="Append `loss.item()` of each minibatch, in order, right after computing it.",
        )
    reported = float(entry(record, "accuracy"))
    if math.isclose(reported, want_accuracy, abs_tol=1e-3):
        return
    if math.isclose(reported * 100, want_accuracy, abs_tol=1e-3):
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
        expected=f"{want_accuracy:.2f} (% correct on eval_loader, recomputed after training)",
        found=f"{reported:.4g}",
        hint=hint,
    )


def summarize_difference(found: Any, want: Mapping[str, torch.Tensor]) -> str:
    """Which tensors differ, and by how much at most."""
    if not isinstance(found, Mapping):
        return "no weights were saved (the model was too large or replaced)"
    if set(found) != set(want):
        return f"other tensors: {summarize(sorted(set(found) ^ set(want)))}"
    parts = []
    for key, value in want.items():
        other = found[key]
        if not isinstance(other, torch.Tensor) or other.shape != value.shape:
            parts.append(f"{key} (shape)")
        elif value.is_floating_point():
            gap = (other.double() - value.double()).abs().max().item()
            if not gap <= WEIGHT_ATOL + WEIGHT_RTOL * value.abs().max().item():
                parts.append(f"{key} (off by up to {gap:.3g})")
        elif not torch.equal(other, value):
            parts.append(f"{key} (differs)")
    return "differ: " + ", ".join(parts[:6])
