"""Guess which torchvision model (and how many classes) a state dict was saved from.

Cheap by design: a student who passes the wrong file should not wait while every torchvision
model is built. Torchvision publishes each model's parameter count with its weights
(``meta["num_params"]``, no download needed), so only models whose size fits the file's,
after allowing for a replaced output layer, are built, on the meta device, and compared key
by key: usually one or two builds instead of about eighty.
"""

from __future__ import annotations

import functools
import math

import torch
from torchvision.models import get_model_weights

from course.models.builders import AUX_PREFIXES, available_models, quiet_kwargs, try_build_on_meta

#: How far a model's published size may be from the file's estimate and still be built.
#: The estimate is exact for a plain or fine-tuned torchvision file; the slack covers
#: auxiliary heads (Inception v3 counts them, files saved after ImageNet loading lack them).
_SIZE_SLACK = 1.25
_STATISTICS = ("running_mean", "running_var")


@functools.cache
def _published_sizes() -> dict[str, tuple[int, int]]:
    """``name -> (parameters, classes)`` of each model's default ImageNet weights."""
    sizes = {}
    for name in available_models():
        try:
            meta = get_model_weights(name).DEFAULT.meta
            sizes[name] = (int(meta["num_params"]), len(meta.get("categories") or ()) or 1000)
        except (KeyError, ValueError, AttributeError):  # a model without published weights
            continue
    return sizes


@functools.cache
def _meta_shapes(name: str) -> dict[str, tuple[int, ...]] | None:
    # Built on the "meta" device: shapes without memory or init cost. A few builders compute
    # widths with tensors (RegNet) and cannot run there; they are skipped (no guess for them).
    model = try_build_on_meta(name, quiet_kwargs(name))
    return None if model is None else {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _parameter_estimate(state: dict[str, torch.Tensor], classes: int) -> int:
    """The file's parameter count with a ``classes``-way output layer in place of its own.

    Counts floating tensors except BatchNorm statistics and auxiliary heads; the output layer
    is the last weight of 2 or 4 dimensions (torchvision defines the classifier last).
    """
    kept = {
        k: v
        for k, v in state.items()
        if v.is_floating_point() and not k.endswith(_STATISTICS) and not k.startswith(AUX_PREFIXES)
    }
    count = sum(v.numel() for v in kept.values())
    heads = [k for k, v in kept.items() if k.endswith("weight") and v.dim() in (2, 4)]
    if not heads:
        return count
    head = kept[heads[-1]]
    per_output = head[0].numel() + (heads[-1][: -len("weight")] + "bias" in kept)
    return count + (classes - head.shape[0]) * per_output


def candidates(state: dict[str, torch.Tensor]) -> list[str]:
    """Models whose published size fits the file's, closest first (nothing is built)."""
    scored = []
    for name, (params, classes) in _published_sizes().items():
        estimate = _parameter_estimate(state, classes)
        if estimate <= 0:
            continue
        distance = abs(math.log(estimate / params))
        if distance <= math.log(_SIZE_SLACK):
            scored.append((distance, name))
    return [name for _, name in sorted(scored)]


def guess_architecture(state: dict[str, torch.Tensor]) -> tuple[str, int | None] | None:
    """Which torchvision model a state_dict fits, and its number of classes if not 1000.

    A file fits a model when every key exists there with the same shape, except the output
    layer's (a fine-tuned head), and the only keys the file lacks are auxiliary heads.
    Only models of a fitting size are built (see :func:`candidates`).
    """
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for member in candidates(state):
        ref = _meta_shapes(member)
        if ref is None or not set(shapes) <= set(ref):
            continue
        if any(not k.startswith(AUX_PREFIXES) for k in set(ref) - set(shapes)):
            continue
        differ = [k for k in shapes if shapes[k] != ref[k]]
        if not differ:
            return member, None
        # Only the output layer may differ, and only in its number of outputs.
        if len(differ) <= 2 and all(
            len(shapes[k]) == len(ref[k]) and shapes[k][1:] == ref[k][1:] for k in differ
        ):
            outs = {shapes[k][0] for k in differ}
            if len(outs) == 1 and all(
                k.rsplit(".", 1)[0] == differ[0].rsplit(".", 1)[0] for k in differ
            ):
                return member, outs.pop()
    return None
