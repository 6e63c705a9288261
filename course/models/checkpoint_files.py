"""Local weights files: read a state dict safely, check it against the architecture, load it.

Every problem becomes a ``WeightsError`` that names the file, what does not fit (missing,
unexpected and reshaped keys) and, when the file fits another torchvision model or another
number of classes, exactly how to load it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torchvision.models import get_model

from course.errors import WeightsError
from course.models.architecture import guess_architecture
from course.models.builders import AUX_PREFIXES, drop_aux_heads, quiet_kwargs, try_build_on_meta
from course.models.imagenet import imagenet_weights_file
from course.models.messages import few, short_error

# Wrappers add these to every key: DataParallel/DistributedDataParallel ("module.") and
# torch.compile ("_orig_mod."). A file saved from a wrapped model is still the same network.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def load_file(name: str, path: Path, *, num_classes: int | None) -> nn.Module:
    """Torchvision model ``name`` filled from the weights file ``path``.

    Raises:
        WeightsError: the file is unreadable, holds no state dict, or does not fit ``name``.
    """
    state = read_state_dict(path)
    kwargs = quiet_kwargs(name)
    if name in ("googlenet", "inception_v3") and path.name == imagenet_weights_file(name).name:
        # torchvision's own ImageNet file for these two expects inputs re-normalized inside
        # the model (transform_input=True, which torchvision sets when it loads them). That
        # flag is not in the state_dict, so without this the model would silently see
        # differently scaled inputs.
        kwargs["transform_input"] = True
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    # Check on the meta device first (shapes only: no memory, no random init to throw away),
    # so a file for the wrong model fails fast. RegNet cannot be built there: build it for real.
    model = try_build_on_meta(name, kwargs) or get_model(name, weights=None, **kwargs)

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing and all(k.startswith(AUX_PREFIXES) for k in missing):
        # A file saved from an ImageNet-loaded GoogLeNet/Inception has no auxiliary heads:
        # drop them here too, exactly as torchvision does after loading its own weights.
        drop_aux_heads(model)
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [
        (k, tuple(state[k].shape), tuple(expected[k].shape))
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or reshaped:
        raise WeightsError(
            f"{path} does not fit {name}"
            + (f" with num_classes={num_classes}" if num_classes is not None else "")
            + ": "
            + mismatch_summary(missing, unexpected, reshaped),
            mismatch_remedy(name, state),
        )
    if next(model.parameters()).is_meta:
        if {n for n, _ in model.named_buffers()} <= set(expected):
            # Every tensor is about to be overwritten by the file: allocate without init.
            model = model.to_empty(device="cpu")
        else:  # a buffer the file does not carry needs its real initial value
            model = get_model(name, weights=None, **kwargs)
            if not any(k.startswith(AUX_PREFIXES) for k in expected):
                drop_aux_heads(model)
    model.load_state_dict(state)
    return model


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors saved in ``path`` (a state dict, or a checkpoint dict holding one).

    Only tensors and plain containers are unpickled (``weights_only=True``); the prefixes
    that DataParallel and ``torch.compile`` add to every key are removed.

    Raises:
        WeightsError: unreadable file, whole pickled model, or no tensors.
    """
    try:
        # weights_only=True: unpickling an arbitrary file can run arbitrary code, so only
        # tensors and plain containers are allowed in.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        text = str(err)
        if "Weights only load failed" in text:
            problem = (
                f"{path} holds Python objects other than tensors (for example a whole model "
                "saved with torch.save(model, path)), which are not loaded for safety"
            )
            remedy = (
                "save the weights alone with torch.save(model.state_dict(), path) and load "
                "that file"
            )
        else:
            problem = f"{path} is not a readable PyTorch weights file ({short_error(err)})"
            remedy = (
                "the file may be truncated (an interrupted copy or download) or not a torch "
                "file at all: copy it again, or save it with torch.save(model.state_dict(), "
                "path); or use weights='random'"
            )
        raise WeightsError(problem, remedy) from err

    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(
            f"{path} does not hold a state_dict (found {_describe_object(obj)})",
            "save the weights with torch.save(model.state_dict(), path), or a dict with the "
            "state_dict under the key 'state_dict' or 'model'",
        )
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise WeightsError(
            f"{path} holds a dict without tensors (keys: {few(list(obj))})",
            "save the weights with torch.save(model.state_dict(), path)",
        )
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def mismatch_summary(
    missing: list[str], unexpected: list[str], reshaped: list[tuple[str, tuple, tuple]]
) -> str:
    """What does not fit: counts and examples of missing, unexpected and reshaped keys."""
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({few(unexpected)})")
    if reshaped:
        shown = ", ".join(f"{k}: file {list(a)} vs model {list(b)}" for k, a, b in reshaped[:3])
        more = f", and {len(reshaped) - 3} more" if len(reshaped) > 3 else ""
        parts.append(f"{len(reshaped)} shape differences ({shown}{more})")
    return "; ".join(parts)


def mismatch_remedy(name: str, state: dict[str, torch.Tensor]) -> str:
    """How to load a file that does not fit ``name``: the right model or ``num_classes``."""
    guess = guess_architecture(state)
    if guess is not None and guess[0] == name:
        if guess[1] is None:
            return (
                f"the file is {name} with its original output layer: load it with num_classes=None"
            )
        return (
            f"the file is {name} with a {guess[1]}-way output layer: "
            f"load it with num_classes={guess[1]}"
        )
    if guess is not None and guess[0] != name:
        classes = f", num_classes={guess[1]}" if guess[1] is not None else ""
        return (
            f"the file seems to be for {guess[0]}: load it with "
            f"load_model({guess[0]!r}, weights=...{classes}), or give a weights file made "
            f"for {name}, or use weights='random'"
        )
    return (
        f"give a weights file saved from {name} (torch.save(model.state_dict(), path)), "
        "or use weights='random'"
    )


def _describe_object(obj: object) -> str:
    if isinstance(obj, Mapping):
        return "an empty dict"
    if isinstance(obj, torch.Tensor):
        return f"a single tensor of shape {list(obj.shape)}"
    return f"a {type(obj).__name__}"
