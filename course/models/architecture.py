"""Guess which torchvision model (and how many classes) a state dict was saved from."""

from __future__ import annotations

import functools

import torch
from torchvision.models import get_model_builder

from course.models.builders import AUX_PREFIXES, available_models, quiet_kwargs, try_build_on_meta


@functools.cache
def _family_groups() -> dict[str, tuple[str, ...]]:
    # Models built by the same torchvision module share their top-level block names, so one
    # small representative per module tells whether a whole family can match at all.
    groups: dict[str, list[str]] = {}
    for n in available_models():
        groups.setdefault(get_model_builder(n).__module__, []).append(n)
    return {k: tuple(v) for k, v in groups.items()}


@functools.cache
def _meta_shapes(name: str) -> dict[str, tuple[int, ...]] | None:
    # Built on the "meta" device: shapes without memory or init cost. A few builders compute
    # widths with tensors (RegNet) and cannot run there; they are skipped (no guess for them).
    model = try_build_on_meta(name, quiet_kwargs(name))
    return None if model is None else {k: tuple(v.shape) for k, v in model.state_dict().items()}


def guess_architecture(state: dict[str, torch.Tensor]) -> tuple[str, int | None] | None:
    """Which torchvision model a state_dict fits, and its number of classes if not 1000.

    A file fits a model when every key exists there with the same shape, except the output
    layer's (a fine-tuned head), and the only keys the file lacks are auxiliary heads.
    """
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    top = {k.split(".", 1)[0] for k in shapes}
    for members in _family_groups().values():
        first = next((s for s in map(_meta_shapes, members) if s is not None), None)
        if first is None or not top <= {k.split(".", 1)[0] for k in first}:
            continue
        for member in members:
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
