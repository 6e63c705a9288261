"""What the hidden test cells run in your notebook: call your function, save what it returns.

Nothing here grades anything, and nothing here is secret but the seeds. When the autograder
runs your notebook, each hidden test cell calls :func:`record_task` with one of your
functions. Just before that cell runs, the autograder gives this module the task's seed
(:func:`begin_task`, one fresh seed per task and grading run, never known earlier). The
recorder builds that task's inputs from the seed (small models of varying shapes, images,
data), calls your function on them, and saves what comes back (tensors, parameter names and
flags, state dicts, transform outputs, error outcomes, trained weights) into a folder, tagged
with the task and its seed. The autograder then recomputes the expected results from the
same seed in a separate process that runs no code of yours, and compares.

Outside the autograder (your own runs, ``python -m course.check``) :func:`record_task` does
nothing: the folder is named by the environment variable :data:`RECORD_DIR_ENV`, which only
the autograder sets, and no seed is given.

The input builders (``*_fixture``) are public because the autograder rebuilds the very same
inputs from the same seed to compute the expected results.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypedDict

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

#: Environment variable the autograder sets in the grading kernel: the record folder.
RECORD_DIR_ENV = "COURSE_RECORD_DIR"
#: Longest error message or text kept from a call (the rest is cut).
MAX_TEXT = 2000
#: Largest state dict saved from a returned model, in values (a real VGG16 has 138 million).
MAX_STATE_VALUES = 20_000_000


class ErrorInfo(TypedDict):
    """A call of the student's function that raised: what the checks are told."""

    type: str
    message: str
    not_implemented: bool
    course_error: bool


class Envelope(TypedDict):
    """One record file: the task, the seed its inputs came from, and the recorded data."""

    task: str
    seed: int
    data: Any


# --------------------------------------------------------------------------- the recorder

#: task -> seed, set by :func:`begin_task` for the test cell that is starting.
_BEGUN: dict[str, int] = {}


def prefix_line(task: str, seed: int) -> str:
    """The one line of Python the autograder runs just before ``task``'s test cell.

    It hands the task's seed to :func:`begin_task`; nothing else in the kernel knows it
    before then.
    """
    recorder_for(task)  # KeyError for an unknown task
    return f"__import__('course.grading_record').grading_record.begin_task({task!r}, {int(seed)})"


def begin_task(task: str, seed: int) -> None:
    """Give ``task`` its seed for this run (called by the line :func:`prefix_line` writes)."""
    _BEGUN.clear()
    _BEGUN[str(task)] = int(seed)


def active() -> bool:
    """True when the autograder asked for results (it set :data:`RECORD_DIR_ENV`)."""
    return bool(os.environ.get(RECORD_DIR_ENV))


def save(name: str, data: Any) -> None:
    """Write ``data`` (tensors, numbers, strings, lists, dicts) as ``<name>.pt``."""
    folder = Path(os.environ[RECORD_DIR_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.partial"
    torch.save(data, partial)
    partial.replace(folder / f"{name}.pt")


def record_task(task: str, function: Callable[..., Any]) -> None:
    """Call ``function`` (your answer to ``task``) on the grader's inputs and save the results.

    Records only after :func:`begin_task` gave this task its seed (the autograder does, just
    before the test cell); otherwise it saves nothing. Quiet, and never raises: the visible
    tests that follow in the cell still run. A crash of your function is saved as its error
    message, which the autograder shows you.
    """
    if not active() or task not in _BEGUN:
        return
    seed = _BEGUN.pop(task)
    try:
        data = recorder_for(task)(function, seed)
    except Exception as error:  # saved and reported; the cell goes on
        data = {"error": describe_error(error)}
    save(task, Envelope(task=task, seed=seed, data=data))


def recorder_for(task: str) -> Callable[[Callable[..., Any], int], Any]:
    """The recorder of ``task``, in either exercise (the second's live in grading_staged)."""
    if task in RECORDERS:
        return RECORDERS[task]
    from course.grading_staged import RECORDERS as STAGED

    if task not in STAGED:
        raise KeyError(f"no recorder for task {task!r}")
    return STAGED[task]


def record_calls(name: str, function: Callable[..., Any], calls: Iterable[tuple]) -> None:
    """Generic recorder: ``function(*args)`` for each ``args`` in ``calls``, results saved."""
    if not active():
        return
    results = []
    for args in calls:
        value, error = call(function, *args)
        results.append({"error": error} if error else {"value": plain(value)})
    save(name, {"calls": results})


def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ErrorInfo | None]:
    """``(function(*args, **kwargs), None)``, or ``(None, error description)`` if it raised."""
    try:
        return function(*args, **kwargs), None
    except Exception as error:  # the student's error, saved
        return None, describe_error(error)


def describe_error(error: BaseException) -> ErrorInfo:
    """Type, message and whether it is the exercise's placeholder (NotImplementedError)."""
    from course.errors import CourseError

    return ErrorInfo(
        type=type(error).__name__,
        message=str(error)[:MAX_TEXT],
        not_implemented=isinstance(error, NotImplementedError),
        course_error=isinstance(error, CourseError),
    )


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as data ``torch.load(weights_only=True)`` accepts; anything else as its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value[:MAX_TEXT] if isinstance(value, str) else value
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").clone().as_subclass(torch.Tensor)
    if depth < 4 and isinstance(value, (list, tuple)) and len(value) <= 10_000:
        return [plain(v, depth + 1) for v in value]
    return {"repr": f"{type(value).__name__} ({value!r:.80})"}


def describe_module(model: Any) -> dict[str, Any]:
    """Architecture facts of a returned model: shapes, flags, module types, labels."""
    if not isinstance(model, nn.Module):
        return {"is_module": False, "repr": f"{type(model).__name__} ({model!r:.60})"}
    label = getattr(model, "weights_label", None)
    return {
        "is_module": True,
        "type": type(model).__name__,
        "weights_label": label if label is None or isinstance(label, str) else repr(label)[:80],
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
        "requires_grad": {n: bool(p.requires_grad) for n, p in model.named_parameters()},
        "modules": {n: type(m).__name__ for n, m in model.named_modules()},
        "module_attribute": [n for n, m in model.named_modules() if "requires_grad" in vars(m)],
    }


def state_of(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """The model's state dict on the CPU, or None when it is too large to save."""
    state = model.state_dict()
    if sum(v.numel() for v in state.values()) > MAX_STATE_VALUES:
        return None
    if any(v.is_meta for v in state.values()):
        return None
    return {k: v.detach().to("cpu").clone() for k, v in state.items()}


# --------------------------------------------------------------------------- inputs


def meta_model(name: str) -> nn.Module:
    """A torchvision model with its real architecture and no storage (instant to build)."""
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None)


def swap_vgg_head(model: nn.Module, classes: int = 10) -> None:
    """Put a new ``Linear(in, classes)`` at ``classifier[6]``, as task 3 will (meta device)."""
    with torch.device("meta"):
        model.classifier[6] = nn.Linear(model.classifier[6].in_features, classes)


def _draw(generator: torch.Generator, choices: tuple[Any, ...]) -> Any:
    """One of ``choices``, drawn with ``generator``."""
    return choices[int(torch.randint(len(choices), (1,), generator=generator))]


#: Tasks 1-2: widths, hidden sizes and class counts a seeded VGG-like model draws from.
CONV_WIDTHS = (8, 16, 24, 32, 48, 64, 96, 128)
HIDDEN_SIZES = (64, 96, 128, 256, 384, 512, 1024)


def vgg_like(seed: int) -> tuple[nn.Module, int]:
    """A seeded VGG-shaped model on the meta device, and the class count task 3 would give it.

    Like torchvision's VGG: ``features`` (2 to 5 blocks of 1 to 3 convolutions, with or
    without BatchNorm, each block ending in max pooling), ``avgpool`` and ``classifier`` =
    ``Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear``, so fc6, fc7 and the head sit at
    ``classifier[0]``, ``[3]`` and ``[6]`` as in VGG16, with drawn sizes.
    """
    generator = torch.Generator().manual_seed(seed)
    config: list[int | str] = []
    for _ in range(int(torch.randint(2, 6, (1,), generator=generator))):
        width = _draw(generator, CONV_WIDTHS)
        config += [width] * int(torch.randint(1, 4, (1,), generator=generator)) + ["M"]
    batch_norm = bool(torch.randint(2, (1,), generator=generator))
    pool = int(torch.randint(1, 8, (1,), generator=generator))
    hidden = (_draw(generator, HIDDEN_SIZES), _draw(generator, HIDDEN_SIZES))
    imagenet_classes = int(torch.randint(20, 1001, (1,), generator=generator))
    classes = int(torch.randint(2, 101, (1,), generator=generator))
    with torch.device("meta"):
        features = torchvision.models.vgg.make_layers(config, batch_norm=batch_norm)
        model = torchvision.models.VGG(features, num_classes=imagenet_classes, init_weights=False)
        model.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        model.classifier = nn.Sequential(
            nn.Linear(int(config[-2]) * pool * pool, hidden[0]),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(hidden[1], imagenet_classes),
        )
    return model, classes


#: Task 2: the two orders tried (task 3's new head after the function, or before it).
FREEZE_ORDERS = ("head_after", "head_before")


def freeze_fixture(seed: int, order: str) -> tuple[nn.Module, int]:
    """Task 2: the VGG-like model ``freeze_and_unfreeze`` gets in ``order``, and its classes.

    ``"head_before"`` has its new head already; ``"head_after"`` gets it after the call.
    """
    model, classes = vgg_like(seed + FREEZE_ORDERS.index(order))
    if order == "head_before":
        swap_vgg_head(model, classes)
    return model, classes


#: Task 3: (family, built for real). Real models get seeded random weights.
HEAD_CASES: tuple[tuple[str, bool], ...] = (
    ("vgg16", False),
    ("resnet18", False),
    ("mobilenet_v3_small", True),
)
#: Task 3: parameters frozen before ``replace_head`` runs; it must leave every flag alone.
HEAD_FROZEN = {
    "vgg16": ("features.",),
    "resnet18": ("conv1.", "bn1.", "layer1."),
    "mobilenet_v3_small": (),
}


def head_classes(family: str, seed: int) -> int:
    """Task 3: the number of classes ``replace_head`` is asked for on ``family`` (2 to 100)."""
    generator = torch.Generator().manual_seed(seed + [f for f, _ in HEAD_CASES].index(family))
    return int(torch.randint(2, 101, (1,), generator=generator))


def head_fixture(family: str, real: bool, seed: int) -> nn.Module:
    """The model task 3's ``replace_head`` receives: seeded weights (or meta), part frozen."""
    if real:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = torchvision.models.get_model(family, weights=None)
    else:
        model = meta_model(family)
    for name, param in model.named_parameters():
        param.requires_grad_(not name.startswith(HEAD_FROZEN[family]))
    return model


#: Task 4: (size, normalization, augment): the lecture's two protocols and a third mix
#: whose size (0 here) is drawn from the seed: see :func:`transform_cases`.
TRANSFORM_CASES: tuple[tuple[int, str, bool], ...] = (
    (224, "imagenet", False),
    (64, "imagenet", True),
    (0, "half", False),
)


def transform_cases(seed: int) -> tuple[tuple[int, str, bool], ...]:
    """Task 4: :data:`TRANSFORM_CASES` with the third size drawn from the seed (33 to 56)."""
    size = 33 + seed % 24
    return tuple((s or size, n, a) for s, n, a in TRANSFORM_CASES)


#: Task 4: how many times the random training crop is drawn per textured image.
CROP_DRAWS = 6


def transform_fixture(seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Task 4: constant-colour and smooth textured uint8 CHW 32x32 images."""
    generator = torch.Generator().manual_seed(seed)
    colour = torch.randint(0, 256, (3,), generator=generator, dtype=torch.uint8)
    constants = [
        torch.full((3, 32, 32), 0, dtype=torch.uint8),
        torch.full((3, 32, 32), 255, dtype=torch.uint8),
        colour.view(3, 1, 1).expand(3, 32, 32).clone(),
    ]
    textures = []
    for _ in range(2):
        coarse = torch.rand(1, 3, 8, 8, generator=generator)
        smooth = nn.functional.interpolate(coarse, size=(32, 32), mode="bicubic")[0]
        noise = 0.03 * torch.randn(3, 32, 32, generator=generator)
        textures.append(((smooth + noise).clamp(0, 1) * 255).round().to(torch.uint8))
    return constants, textures


def optimizer_fixture(seed: int) -> list[tuple[str, nn.Module]]:
    """Task 5: a VGG16 (10-way head) with a seeded random half of its tensors trainable, and
    a ResNet-18 with only layer4 and fc trainable (meta device)."""
    vgg = meta_model("vgg16")
    swap_vgg_head(vgg)
    generator = torch.Generator().manual_seed(seed)
    params = list(vgg.parameters())
    mask = torch.rand(len(params), generator=generator) < 0.5
    mask[-1] = True  # at least one trainable tensor
    for param, trainable in zip(params, mask.tolist(), strict=True):
        param.requires_grad_(trainable)
    resnet = meta_model("resnet18")
    resnet.requires_grad_(False)
    resnet.layer4.requires_grad_(True)
    resnet.fc.requires_grad_(True)
    return [("VGG16, some layers trainable", vgg), ("ResNet-18 (layer4, fc trainable)", resnet)]


def optimizer_args(seed: int) -> dict[str, float]:
    """Task 5: ``lr`` and ``momentum`` drawn from the seed (never the defaults)."""
    generator = torch.Generator().manual_seed(seed)
    lr = round(float(torch.randint(1, 100, (1,), generator=generator)) * 1e-3 + 1e-4, 4)
    momentum = round(float(torch.randint(50, 90, (1,), generator=generator)) / 100 + 0.005, 3)
    return {"lr": lr, "momentum": momentum}


#: Task 6: batch sizes tried (the second one is the whole data set at once).
STATS_BATCHES = (16, 50)


def stats_fixture(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Task 6: 50 small uint8 images whose brightness varies, sorted so minibatches differ.

    6x6 pixels keep the data small enough that dividing by N - 1 instead of N shows.
    """
    generator = torch.Generator().manual_seed(seed)
    n = 50
    brightness = torch.rand(n, 1, 1, 1, generator=generator)
    channel = torch.tensor([0.8, 0.5, 0.3]).view(1, 3, 1, 1)
    noise = torch.rand(n, 3, 6, 6, generator=generator)
    images = (255 * (0.6 * brightness * channel + 0.4 * noise)).round().to(torch.uint8)
    order = images.float().mean(dim=(1, 2, 3)).argsort()
    labels = torch.randint(0, 10, (n,), generator=generator)
    return images[order], labels


#: Task 7: epochs the training loop runs (3 minibatches each: 6 optimizer steps).
TRAIN_EPOCHS = 2
#: Task 7: the optimizer's settings.
TRAIN_LR, TRAIN_MOMENTUM = 0.05, 0.9


class EpochShuffle(torch.utils.data.Sampler[int]):
    """Task 7: a new seeded order each epoch, counted when an epoch's first batch is drawn.

    A plain shuffled loader draws its order when ``iter()`` is called; a progress bar (tqdm)
    calls ``iter()`` once more than it loops, which would change the order and so the
    trained weights. Here ``iter()`` alone changes nothing.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        # A generator: this body runs when the first index is needed, not at iter().
        generator = torch.Generator().manual_seed(self.seed + 7919 * self.epoch)
        self.epoch += 1
        yield from torch.randperm(self.n, generator=generator).tolist()


def training_fixture(
    seed: int,
) -> tuple[nn.Module, torch.optim.Optimizer, DataLoader, DataLoader, TensorDataset]:
    """Task 7: a tiny network, its SGD, and a seeded 4-class toy problem (8x8 colour patterns).

    Everything the loop sees is drawn from the seed: data, initial weights, the shuffle
    order and, under ``torch.manual_seed(training_rng_seed(seed))`` around the call,
    dropout's masks. So a correct loop run here and the reference loop run by the grader end
    with the same weights (float32 on the CPU). The network has BatchNorm and Dropout, so
    skipping ``model.train()`` or evaluating in training mode changes those weights (running
    statistics) or the accuracy; a missing ``zero_grad`` changes every step after the first.
    The evaluation set has 60 examples in batches of 24, 24 and 12, so averaging per-batch
    accuracies shows.
    """
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.rand(4, 3, 8, 8, generator=generator)

    def make(n_per_class: int) -> TensorDataset:
        labels = torch.arange(4).repeat_interleave(n_per_class)
        noise = 1.3 * torch.randn(len(labels), 3, 8, 8, generator=generator)
        return TensorDataset(patterns[labels] + noise, labels)

    train_set, eval_set = make(24), make(15)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(3 * 8 * 8, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(32, 4),
        )
    model.eval()  # as after an evaluation: a loop must call model.train() itself
    optimizer = torch.optim.SGD(model.parameters(), lr=TRAIN_LR, momentum=TRAIN_MOMENTUM)
    train_loader = DataLoader(
        train_set,
        batch_size=32,
        sampler=EpochShuffle(len(train_set), seed + 2),
        generator=torch.Generator().manual_seed(seed + 2),
    )
    eval_loader = DataLoader(
        eval_set, batch_size=24, generator=torch.Generator().manual_seed(seed + 3)
    )
    return model, optimizer, train_loader, eval_loader, train_set


def training_rng_seed(seed: int) -> int:
    """Task 7: the global torch seed set around the call (dropout's masks)."""
    return (seed + 4) % 2**63


# --------------------------------------------------------------------------- per task


def _on_meta(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, dict | None]:
    """Call a model builder on the meta device (instant); if that fails, call it normally."""
    try:
        with torch.device("meta"):
            return function(*args, **kwargs), None
    except Exception:  # retried for real, where errors become feedback
        return call(function, *args, **kwargs)


def missing_weights_file(seed: int) -> str:
    """Task 1: a weights path, drawn from the seed, that does not exist."""
    token = f"{seed % 2**64:016x}"
    return f"/no-such-dir-autograder-{token[:6]}/vgg16-{token[6:]}.pth"


def _record_load(load_vgg16: Callable[..., Any], seed: int) -> dict[str, Any]:
    model, error = _on_meta(load_vgg16, weights="random")
    out: dict[str, Any] = {"model": {"error": error} if error else describe_module(model)}
    del model
    with torch.device("meta"):  # a student who ignores the path builds a VGG16
        _, error = call(load_vgg16, weights=missing_weights_file(seed))
    out["missing_file"] = error or {"returned": True}
    return out


def _record_freeze(freeze_and_unfreeze: Callable[..., Any], seed: int) -> dict[str, Any]:
    out = {}
    for order in FREEZE_ORDERS:
        model, classes = freeze_fixture(seed, order)
        result, error = call(freeze_and_unfreeze, model)
        if error:
            out[order] = {"error": error}
            continue
        if order == "head_after" and isinstance(result, nn.Module):
            try:
                swap_vgg_head(result, classes)
            except Exception:  # not a VGG any more: the description shows it
                pass
        out[order] = describe_module(result)
    return out


def _record_head(replace_head: Callable[..., Any], seed: int) -> dict[str, Any]:
    out = {}
    for family, real in HEAD_CASES:
        classes = head_classes(family, seed)
        model = head_fixture(family, real, seed)
        old = dict(model.named_parameters())
        result, error = call(replace_head, model, classes)
        if error:
            out[family] = {"error": error}
            continue
        entry = describe_module(result)
        if isinstance(result, nn.Module):
            now = dict(result.named_parameters())
            entry["same_objects"] = [n for n, p in now.items() if old.get(n) is p]
            if real:
                entry["state"] = state_of(result)
        out[family] = entry
    return out


def _tensor_or_description(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() == 3 and value.numel() <= 3 * 512 * 512:
        return {"tensor": value.detach().to("cpu").clone().as_subclass(torch.Tensor)}
    if isinstance(value, torch.Tensor):
        return {"described": f"{type(value).__name__} {tuple(value.shape)} {value.dtype}"}
    return {"described": type(value).__name__}


def _apply(transform: Callable[..., Any], image: torch.Tensor) -> Any:
    out, error = call(transform, image.clone())
    return {"error": error} if error else _tensor_or_description(out)


def _record_transforms(build_transforms: Callable[..., Any], seed: int) -> dict[str, Any]:
    constants, textures = transform_fixture(seed)
    out = {}
    for size, normalization, augment in transform_cases(seed):
        key = f"{size}-{normalization}-{augment}"
        result, error = call(build_transforms, size, normalization, augment=augment)
        if error:
            out[key] = {"error": error}
            continue
        if not (
            isinstance(result, (tuple, list)) and len(result) == 2 and all(map(callable, result))
        ):
            out[key] = {"form": f"{type(result).__name__} ({result!r:.80})"}
            continue
        train_tf, eval_tf = result
        draws = CROP_DRAWS if augment else 1
        out[key] = {
            "eval_constants": [_apply(eval_tf, image) for image in constants],
            "train_constants": [_apply(train_tf, image) for image in constants],
            "eval_textures": [_apply(eval_tf, image) for image in textures],
            "train_textures": [
                [_apply(train_tf, image) for _ in range(draws)] for image in textures
            ],
        }
    return out


def _record_optimizer(make_optimizer: Callable[..., Any], seed: int) -> dict[str, Any]:
    out = []
    for _, model in optimizer_fixture(seed):
        opt, error = call(make_optimizer, model, **optimizer_args(seed))
        if error:
            out.append({"error": error})
            continue
        index = {id(p): i for i, p in enumerate(model.parameters())}
        groups = []
        for group in getattr(opt, "param_groups", None) or []:
            settings = {k: plain(v) for k, v in group.items() if k != "params"}
            settings["params"] = [index.get(id(p), -1) for p in group.get("params", [])]
            groups.append(settings)
        out.append(
            {
                "type": f"{type(opt).__module__}.{type(opt).__qualname__}",
                "is_optimizer": isinstance(opt, torch.optim.Optimizer),
                "groups": groups,
            }
        )
    return {"models": out}


def _record_stats(channel_stats: Callable[..., Any], seed: int) -> dict[str, Any]:
    images, labels = stats_fixture(seed)
    dataset = TensorDataset(images.float() / 255, labels)
    out = {}
    for batch_size in STATS_BATCHES:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
        result, error = call(channel_stats, loader)
        if error:
            out[str(batch_size)] = {"error": error}
            continue
        try:
            mean, std = result
            out[str(batch_size)] = {
                "mean": torch.as_tensor(mean, dtype=torch.float64).flatten()[:16].tolist(),
                "std": torch.as_tensor(std, dtype=torch.float64).flatten()[:16].tolist(),
            }
        except Exception:  # any shape problem is reported as the form
            out[str(batch_size)] = {"form": f"{type(result).__name__} ({result!r:.80})"}
    return out


def _record_train(train_and_evaluate: Callable[..., Any], seed: int) -> dict[str, Any]:
    model, optimizer, train_loader, eval_loader, _ = training_fixture(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(training_rng_seed(seed))
        result, error = call(
            train_and_evaluate, model, optimizer, train_loader, eval_loader, epochs=TRAIN_EPOCHS
        )
    out: dict[str, Any] = {"state": state_of(model)}
    if error:
        out["error"] = error
        return out
    try:
        losses, reported = result
        out["losses"] = [float(v) for v in list(losses)[:10_000]]
        out["accuracy"] = float(reported)
    except Exception:  # any form problem is reported as the form
        out["form"] = f"{type(result).__name__} ({result!r:.80})"
    return out


#: Task key -> recorder.
RECORDERS: dict[str, Callable[[Callable[..., Any], int], Any]] = {
    "load": _record_load,
    "freeze": _record_freeze,
    "head": _record_head,
    "transforms": _record_transforms,
    "optimizer": _record_optimizer,
    "stats": _record_stats,
    "train": _record_train,
}
