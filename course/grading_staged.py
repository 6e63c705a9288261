"""What the hidden tests of "Fine-tuning in stages" run in your notebook: inputs and recorders.

Nothing here grades anything, and nothing here is secret (see :mod:`course.grading_record`,
which calls these recorders). Each recorder builds the task's inputs from the seed the
autograder chose for that task (tiny models, tiny tensors, tiny images), calls your function
on them and returns plain data for the grader: what your function returned and what it did
to the model and optimizer. The grader rebuilds the same inputs from the same seed in a
separate process, runs its reference and compares. The input builders are public for that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torchvision
from torch import nn

from course.grading_record import call, plain, state_of
from course.grading_staged_predict import (
    CLASS_POOL,
    image_array,
    predict_fixture,
    predict_model,
    record_predict,
)

# --------------------------------------------------------------------------- shared


def small_cnn(seed: int, classes: int = 4, *, dropout: float = 0.0) -> nn.Sequential:
    """A tiny convolutional classifier with BatchNorm; its head is the last ``nn.Linear``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [
            nn.Conv2d(3, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.Conv2d(6, 8, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        ]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(8, classes))
        return nn.Sequential(*layers)


def parameter_index(model: nn.Module) -> dict[int, int]:
    """``id(parameter)`` -> its position in ``model.parameters()``."""
    return {id(p): i for i, p in enumerate(model.parameters())}


def trainable_indices(model: nn.Module) -> list[int]:
    """Positions of the parameters that require grad."""
    return [i for i, p in enumerate(model.parameters()) if p.requires_grad]


def describe_groups(groups: Any, index: Mapping[int, int]) -> dict[str, Any]:
    """Parameter groups (a list of dicts, or an optimizer's) as plain data.

    Each parameter becomes its position in the model (-1: not one of the model's).
    """
    if isinstance(groups, torch.optim.Optimizer):
        groups = groups.param_groups
    if not isinstance(groups, (list, tuple)):
        return {"form": f"{type(groups).__name__} ({groups!r:.80})"}
    out = []
    for group in groups[:100]:
        if not isinstance(group, Mapping) or "params" not in group:
            return {"form": f"a list holding {type(group).__name__} ({group!r:.80})"}
        params = group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        settings = {str(k): plain(v) for k, v in group.items() if k != "params"}
        settings["params"] = [index.get(id(p), -1) for p in params]
        out.append(settings)
    return {"groups": out}


# --------------------------------------------------------------------------- task 1


def groups_fixture(seed: int) -> tuple[list[tuple[str, nn.Module]], float, float]:
    """Task 1: two models with part of the body frozen, and the two learning rates."""
    generator = torch.Generator().manual_seed(seed)
    small = small_cnn(seed)
    body = [p for p in small.parameters()][:-2]
    mask = torch.rand(len(body), generator=generator) < 0.5
    mask[0], mask[-1] = False, True  # at least one frozen and one trainable body tensor
    for param, trainable in zip(body, mask.tolist(), strict=True):
        param.requires_grad_(trainable)
    with torch.device("meta"):
        mobilenet = torchvision.models.get_model("mobilenet_v2", weights=None, num_classes=10)
    frozen = int(torch.randint(5, 16, (1,), generator=generator))
    mobilenet.features[:frozen].requires_grad_(False)
    head_lr = (0.01, 0.02, 0.05, 0.1)[int(torch.randint(0, 4, (1,), generator=generator))]
    body_lr = head_lr / (5, 10, 20, 100)[int(torch.randint(0, 4, (1,), generator=generator))]
    models = [
        ("a small CNN, some body layers frozen", small),
        (f"MobileNetV2 (10 classes), features[:{frozen}] frozen", mobilenet),
    ]
    return models, head_lr, body_lr


def record_groups(param_groups: Callable[..., Any], seed: int) -> dict[str, Any]:
    """Task 1: the groups ``param_groups(model, head_lr, body_lr)`` returns for each model."""
    models, head_lr, body_lr = groups_fixture(seed)
    out = []
    for _, model in models:
        result, error = call(param_groups, model, head_lr, body_lr)
        if error:
            out.append({"error": error})
            continue
        if not isinstance(result, (list, tuple)) and not isinstance(result, torch.optim.Optimizer):
            try:  # a generator of dicts is acceptable to an optimizer: keep its items
                result = list(result)
            except TypeError:
                pass
        out.append(describe_groups(result, parameter_index(model)))
    return {"models": out}


# --------------------------------------------------------------------------- tasks 2 and 3


def toy_batches(seed: int, classes: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Three fixed minibatches of 8 colour 8x8 images: a pattern per class plus noise."""
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.rand(classes, 3, 8, 8, generator=generator)
    labels = torch.arange(classes).repeat(6)[torch.randperm(6 * classes, generator=generator)]
    images = patterns[labels] + 0.5 * torch.randn(len(labels), 3, 8, 8, generator=generator)
    return [(images[i : i + 8], labels[i : i + 8]) for i in range(0, len(labels), 8)]


def run_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[tuple[torch.Tensor, ...]]
) -> None:
    """One epoch of plain training over ``batches``."""
    model.train()
    for images, labels in batches:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()


class EpochWatcher:
    """The ``train_epoch(model, optimizer)`` task 2 receives: it notes, then trains one epoch.

    Each call notes which parameters require grad and what the optimizer holds (the groups,
    their rates and momentum), then trains one epoch on the task's fixed minibatches.
    """

    def __init__(self, model: nn.Module, batches: list[tuple[torch.Tensor, ...]]) -> None:
        self.model = model
        self.index = parameter_index(model)
        self.batches = batches
        self.calls: list[dict[str, Any]] = []

    def __call__(self, model: nn.Module, optimizer: Any) -> None:
        """Note the model's and optimizer's state, then train one epoch."""
        note: dict[str, Any] = {
            "same_model": model is self.model,
            "trainable": trainable_indices(self.model),
            "optimizer": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
        }
        note.update(describe_groups(getattr(optimizer, "param_groups", None), self.index))
        self.calls.append(note)
        if isinstance(optimizer, torch.optim.Optimizer):
            run_epoch(self.model, optimizer, self.batches)


def stages_fixture(seed: int) -> tuple[nn.Module, list[tuple[torch.Tensor, ...]], dict[str, Any]]:
    """Task 2: a small CNN, its minibatches, and the schedule's arguments."""
    generator = torch.Generator().manual_seed(seed)
    draw = lambda n: int(torch.randint(0, n, (1,), generator=generator))  # noqa: E731
    head_lr = (0.05, 0.1, 0.2)[draw(3)]
    args = {
        "head_epochs": 1 + draw(2),
        "body_epochs": 2 + draw(2),
        "head_lr": head_lr,
        "body_lr": head_lr / (5, 10, 20)[draw(3)],
        "momentum": (0.8, 0.9)[draw(2)],
    }
    return small_cnn(seed + 1), toy_batches(seed + 2), args


def record_stages(train_in_stages: Callable[..., Any], seed: int) -> dict[str, Any]:
    """Task 2: every epoch's flags and optimizer, the returned value, the final weights."""
    model, batches, args = stages_fixture(seed)
    watcher = EpochWatcher(model, batches)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        result, error = call(train_in_stages, model, watcher, **args)
    out: dict[str, Any] = {"calls": watcher.calls, "state": state_of(model)}
    if error:
        out["error"] = error
    else:
        out["returned_model"] = result is model
    return out


def best_fixture(seed: int) -> tuple[nn.Module, list[tuple[torch.Tensor, ...]], list[float], int]:
    """Task 3: a small CNN, its minibatches, the validation scores of each epoch, patience.

    The scores rise to a peak at epoch 2-4, then stay below it; the run must stop
    ``patience`` epochs after the peak, before the last epoch allowed.
    """
    generator = torch.Generator().manual_seed(seed)
    peak = 2 + int(torch.randint(0, 3, (1,), generator=generator))
    patience = 2 + int(torch.randint(0, 2, (1,), generator=generator))
    epochs = peak + patience + 2
    rising = torch.sort(torch.rand(peak, generator=generator) * 0.3 + 0.4).values
    rising[-1] = 0.8 + 0.1 * float(torch.rand(1, generator=generator))
    falling = rising[-1] - 0.05 - 0.3 * torch.rand(epochs - peak, generator=generator)
    scores = [round(float(v), 4) for v in torch.cat([rising, falling])]
    return small_cnn(seed + 1), toy_batches(seed + 2), scores, patience


class BestWatcher:
    """Task 3's callbacks: ``train_epoch(model)`` trains one epoch, ``validate(model)`` scores.

    It also notes each call to ``model.load_state_dict`` and whether the dict passed shares
    storage with the live model (a reference to ``state_dict()``, not a copy).
    """

    def __init__(
        self, model: nn.Module, batches: list[tuple[torch.Tensor, ...]], scores: list[float]
    ) -> None:
        self.model = model
        self.batches = batches
        self.scores = scores
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.5)
        self.epochs = 0
        self.validations = 0
        self.loads: list[dict[str, bool]] = []
        original = model.load_state_dict

        def load_state_dict(state: Any, *args: Any, **kwargs: Any) -> Any:
            live = {t.data_ptr() for t in model.state_dict().values()}
            shared = isinstance(state, Mapping) and any(
                isinstance(v, torch.Tensor) and v.data_ptr() in live for v in state.values()
            )
            self.loads.append({"shares_storage": shared})
            return original(state, *args, **kwargs)

        model.load_state_dict = load_state_dict  # type: ignore[method-assign]

    def train_epoch(self, model: nn.Module) -> None:
        """One epoch of training (the optimizer is the grader's)."""
        self.epochs += 1
        run_epoch(self.model, self.optimizer, self.batches)

    def validate(self, model: nn.Module) -> float:
        """The validation score after the epoch just trained."""
        self.validations += 1
        return self.scores[min(self.epochs, len(self.scores)) - 1] if self.epochs else 0.0


def record_best(keep_best: Callable[..., Any], seed: int) -> dict[str, Any]:
    """Task 3: epochs run, loads, what ``keep_best`` returned and the weights it left."""
    model, batches, scores, patience = best_fixture(seed)
    watcher = BestWatcher(model, batches, scores)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        result, error = call(
            keep_best, model, watcher.train_epoch, watcher.validate, len(scores), patience
        )
    del model.load_state_dict  # the original method again
    out: dict[str, Any] = {
        "epochs": watcher.epochs,
        "validations": watcher.validations,
        "loads": watcher.loads,
        "state": state_of(model),
    }
    if error:
        out["error"] = error
        return out
    try:
        epoch, score = result
        out["best_epoch"], out["best_score"] = int(epoch), float(score)
    except Exception:  # reported as the form
        out["form"] = f"{type(result).__name__} ({result!r:.80})"
    return out


# Task 4 (predict) lives in :mod:`course.grading_staged_predict`; its names are imported above.


#: Task key -> recorder (looked up by :func:`course.grading_record.record_task`).
RECORDERS: dict[str, Callable[[Callable[..., Any], int], Any]] = {
    "groups": record_groups,
    "stages": record_stages,
    "best": record_best,
    "predict": record_predict,
}

#: The public names, task 4's (from :mod:`course.grading_staged_predict`) included.
__all__ = [
    "CLASS_POOL",
    "RECORDERS",
    "BestWatcher",
    "EpochWatcher",
    "best_fixture",
    "describe_groups",
    "groups_fixture",
    "image_array",
    "parameter_index",
    "predict_fixture",
    "predict_model",
    "record_best",
    "record_groups",
    "record_predict",
    "record_stages",
    "run_epoch",
    "small_cnn",
    "stages_fixture",
    "toy_batches",
    "trainable_indices",
]
