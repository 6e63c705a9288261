"""Build torchvision classifiers by name: the list of names, quiet random init, the meta device."""

from __future__ import annotations

import difflib
import functools
import warnings

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, list_models

from course.errors import CourseError

# Torchvision warns (on stderr) that GoogLeNet's and Inception v3's default random init "will
# change" unless init_weights is passed. nbgrader gives 0 points to a cell that writes to stderr,
# so we ask for today's init explicitly: same weights, no warning.
_QUIET_RANDOM_KWARGS: dict[str, dict[str, object]] = {
    "googlenet": {"init_weights": True},
    "inception_v3": {"init_weights": True},
}

#: Auxiliary classifiers that only exist during training; a state_dict saved from a model
#: loaded with ImageNet weights lacks them (torchvision drops them after loading).
AUX_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")


@functools.cache
def available_models() -> tuple[str, ...]:
    """Names of every torchvision image-classification model, e.g. ``"vgg16"``, ``"resnet18"``."""
    return tuple(list_models(module=torchvision.models))


def check_name(name: str) -> str:
    """Return ``name`` if torchvision has such a classifier, else raise naming close ones.

    Raises:
        CourseError: unknown name (with up to three close matches).
    """
    names = available_models()
    if name in names:
        return name
    close = difflib.get_close_matches(str(name), names, n=3)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise CourseError(
        f"{name!r} is not a torchvision classification model",
        f"{hint}Pick one of course.models.available_models(), e.g. 'vgg16' or 'resnet18'.",
    )


def quiet_kwargs(name: str) -> dict[str, object]:
    """Builder arguments that give torchvision's default init without a warning on stderr."""
    return dict(_QUIET_RANDOM_KWARGS.get(name, {}))


def try_build_on_meta(name: str, kwargs: dict[str, object]) -> nn.Module | None:
    """``name`` built on the meta device with ``kwargs``, or ``None`` if its builder cannot.

    A few builders compute widths with tensors (RegNet) and cannot run on the meta device.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.device("meta"):
                return get_model(name, weights=None, **kwargs)
    except Exception:
        return None


def build_on_meta(name: str) -> nn.Module:
    """Build torchvision model ``name`` with shapes only: no memory, no weights, instant.

    Layers on PyTorch's ``meta`` device know their shapes but hold no values, which is
    all it takes to read layer names, ``in_features`` or parameter counts of a large model.
    """
    model = try_build_on_meta(check_name(name), quiet_kwargs(name))
    if model is None:
        raise CourseError(
            f"torchvision's {name!r} cannot be built on the meta device.",
            f'Build it for real instead: load_model("{name}", "random").',
        )
    return model


def drop_aux_heads(model: nn.Module) -> None:
    """Remove GoogLeNet's / Inception's auxiliary heads, as torchvision does for ImageNet."""
    for attr in ("aux1", "aux2", "AuxLogits"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    if hasattr(model, "aux_logits"):
        model.aux_logits = False
