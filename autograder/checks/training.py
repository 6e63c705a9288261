"""Tasks 5 and 7: the optimizer over trainable parameters, and a short training run."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks.common import (
    TASKS,
    _isolated,
    _meta_model,
)
from autograder.feedback import call_student, fail, summarize
from solutions import transfer as reference

# --------------------------------------------------------------------------- task 5


def _optimizer_models() -> list[tuple[str, nn.Module]]:
    """VGG16 as in task 2, and a ResNet-18 with only layer4 and fc trainable (meta device)."""
    vgg = _meta_model("vgg16")
    with torch.device("meta"):
        vgg = reference.unfreeze(reference.freeze_backbone(reference.replace_head(vgg, 10)))
    resnet = _meta_model("resnet18")
    resnet.requires_grad_(False)
    resnet.layer4.requires_grad_(True)
    resnet.fc.requires_grad_(True)
    return [("VGG16 (fc6, fc7, head trainable)", vgg), ("ResNet-18 (layer4, fc trainable)", resnet)]


def check_optimizer(make_optimizer: Callable[..., torch.optim.Optimizer]) -> None:
    """Task 5: SGD over exactly the trainable parameters, with the given lr and momentum."""
    task = TASKS["optimizer"]
    lr, momentum = 0.005, 0.8  # not the defaults, so fixed values show up
    for label, model in _optimizer_models():
        with _isolated():
            call = f"make_optimizer(<{label}>, lr={lr}, momentum={momentum})"
            opt = call_student(task, make_optimizer, model, lr=lr, momentum=momentum)
            ref = reference.make_optimizer(model, lr=lr, momentum=momentum)
        if not isinstance(opt, torch.optim.Optimizer) or type(opt) is not type(ref):
            fail(
                task,
                "the function must return the lecture's optimizer.",
                expected=f"{call} to return torch.optim.{type(ref).__name__}",
                found=type(opt).__name__,
                hint="Return `torch.optim.SGD(params, lr=lr, momentum=momentum)`.",
            )
        names = {id(p): n for n, p in model.named_parameters()}
        held = {id(p) for g in opt.param_groups for p in g["params"]}
        want = {id(p) for g in ref.param_groups for p in g["params"]}
        order = list(names)  # model order reads better than set order
        frozen = [names[i] for i in order if i in held - want]
        frozen += ["<not a parameter of the model>"] * len((held - want) - set(names))
        missing = [names[i] for i in order if i in want - held]
        if frozen or missing:
            fail(
                task,
                "the optimizer holds the wrong parameters.",
                expected=f"{call}: the {len(want)} trainable tensors "
                f"({summarize(names[i] for i in order if i in want)})",
                found=f"{len(held)} tensors; frozen ones included: {summarize(frozen)}; "
                f"trainable ones left out: {summarize(missing)}",
                hint="Give SGD only parameters that train: "
                "`[p for p in model.parameters() if p.requires_grad]`. It must work for any "
                "model, so do not pick layers by name.",
            )
        ref_group = ref.param_groups[0]
        for group in opt.param_groups:
            for key in ("lr", "momentum", "weight_decay", "dampening", "nesterov"):
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


class _WatchedSGD(torch.optim.SGD):
    """SGD that counts steps and notices gradients accumulated over several backward passes."""

    def __init__(self, params: list[nn.Parameter], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.steps = 0
        self.accumulated_steps = 0
        self._latest: dict[int, torch.Tensor] = {}
        for p in params:
            p.register_hook(self._remember(id(p)))

    def _remember(self, key: int) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            self._latest[key] = grad.detach().clone()

        return hook

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        self.steps += 1
        for group in self.param_groups:
            for p in group["params"]:
                latest = self._latest.get(id(p))
                if p.grad is not None and latest is not None:
                    if not torch.allclose(p.grad, latest, atol=1e-7, rtol=1e-5):
                        self.accumulated_steps += 1
                        break
        return super().step(closure)


def _training_fixture() -> tuple[nn.Module, DataLoader, DataLoader, TensorDataset]:
    """A 4-class toy problem (8x8 colour patterns plus noise) and a tiny MLP with dropout.

    The noise is strong enough that accuracy stays below 100% (about 78% after three
    epochs), so averaging per-batch accuracies gives a different, detectably wrong number.
    """
    generator = torch.Generator().manual_seed(5)
    patterns = torch.rand(4, 3, 8, 8, generator=generator)

    def make(n_per_class: int) -> TensorDataset:
        labels = torch.arange(4).repeat_interleave(n_per_class)
        noise = 1.3 * torch.randn(len(labels), 3, 8, 8, generator=generator)
        return TensorDataset(patterns[labels] + noise, labels)

    train_set, eval_set = make(32), make(15)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4)
    )
    train_loader = DataLoader(
        train_set, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(3)
    )
    # 60 examples in batches of 24, 24, 12: averaging per-batch accuracies would be wrong.
    eval_loader = DataLoader(eval_set, batch_size=24)
    return model, train_loader, eval_loader, train_set


def _mean_loss(model: nn.Module, dataset: TensorDataset) -> float:
    model.eval()
    with torch.no_grad():
        images, labels = dataset.tensors
        return nn.functional.cross_entropy(model(images), labels).item()


def check_training(train_and_evaluate: Callable[..., tuple[Sequence[float], float]]) -> None:
    """Task 7: the loop lowers the loss, steps once per minibatch, and reports accuracy in %.

    The check measures the loss itself before and after (it does not trust the
    numbers the function returns), watches the optimizer for missing
    ``zero_grad`` calls, and re-evaluates the trained model with
    ``course.training.evaluate``.
    """
    from course.training import evaluate

    task = TASKS["train"]
    epochs = 3
    with _isolated(seed=0):
        model, train_loader, eval_loader, train_set = _training_fixture()
        optimizer = _WatchedSGD(list(model.parameters()), lr=0.05, momentum=0.9)
        loss_before = _mean_loss(model, train_set)
        modes: list[bool] = []
        handle = model.register_forward_hook(lambda m, i, o: modes.append(m.training))
        call = f"train_and_evaluate(model, optimizer, train_loader, eval_loader, epochs={epochs})"
        try:
            result = call_student(
                task, train_and_evaluate, model, optimizer, train_loader, eval_loader, epochs=epochs
            )
        finally:
            handle.remove()
        loss_after = _mean_loss(model, train_set)
        accuracy = evaluate(model, eval_loader)
    batches = epochs * len(train_loader)
    try:
        losses, reported = result
        losses = [float(v) for v in losses]
        reported = float(reported)
    except Exception:  # any form problem gets the same explanation
        fail(
            task,
            "the result has the wrong form.",
            expected=f"{call} to return (losses, accuracy): a list of floats and a float",
            found=f"{type(result).__name__} ({result!r:.80})",
            hint="Append `loss.item()` after each minibatch and return `losses, accuracy`.",
        )
    if optimizer.steps != batches:
        fail(
            task,
            "the optimizer did not take one step per minibatch.",
            expected=f"{batches} calls to optimizer.step() ({epochs} epochs x "
            f"{len(train_loader)} minibatches)",
            found=f"{optimizer.steps}",
            hint="Inside the loop over train_loader: zero_grad, forward, loss, backward, step.",
        )
    if optimizer.accumulated_steps:
        fail(
            task,
            "gradients piled up from earlier minibatches.",
            expected="each step to use only the current minibatch's gradient",
            found=f"{optimizer.accumulated_steps} of {batches} steps used accumulated gradients",
            hint="Call `optimizer.zero_grad()` before `loss.backward()` in every iteration.",
        )
    if not modes or modes[0] is False:
        fail(
            task,
            "the model was not in training mode while it trained.",
            expected="model.train() before the training loop",
            found="model.eval() mode",
            hint="Call `model.train()` at the start of each epoch (dropout must be active).",
        )
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
    if modes[-1] is True:
        fail(
            task,
            "the model was evaluated in training mode (dropout still active).",
            expected="model.eval() before the loop over eval_loader",
            found="the last forward pass ran in training mode",
            hint="Call `model.eval()` and wrap the evaluation loop in `with torch.no_grad():`.",
        )
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
