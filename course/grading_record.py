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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course.grading_inputs import (  # noqa: F401 - re-exported: the input builders
    CONV_WIDTHS,
    CROP_DRAWS,
    FREEZE_ORDERS,
    HEAD_CASES,
    HEAD_FROZEN,
    HIDDEN_SIZES,
    STATS_BATCHES,
    TRAIN_EPOCHS,
    TRAIN_LR,
    TRAIN_MOMENTUM,
    TRANSFORM_CASES,
    EpochShuffle,
    freeze_fixture,
    head_classes,
    head_fixture,
    meta_model,
    missing_weights_file,
    optimizer_args,
    optimizer_fixture,
    stats_fixture,
    swap_vgg_head,
    training_fixture,
    training_rng_seed,
    transform_cases,
    transform_fixture,
    vgg_like,
)
from course.record_names import RECORD_DIR_ENV

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


# --------------------------------------------------------------------------- per task


def _on_meta(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, dict | None]:
    """Call a model builder on the meta device (instant); if that fails, call it normally."""
    try:
        with torch.device("meta"):
            return function(*args, **kwargs), None
    except Exception:  # retried for real, where errors become feedback
        return call(function, *args, **kwargs)


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
