"""Torchvision classifiers with ImageNet, local-file or random weights, and a readable summary.

``load_model`` builds any torchvision classification model (``vgg16``, ``resnet18``, ...)
and fills it with one of three kinds of weights:

- ``"imagenet"``: torchvision's default pretrained weights, read from torchvision's own cache
  (``torch.hub.get_dir()/checkpoints``). Offline (``COURSE_OFFLINE=1``, CI, or ``offline=True``)
  the network is never tried: a missing file gives a ``WeightsError`` that names the exact file
  and the folder to put it in.
- a path to a local file saved with ``torch.save(model.state_dict(), path)`` (or a checkpoint
  dict holding it under ``"state_dict"`` or ``"model"``). Keys and shapes are checked against
  the architecture before anything is loaded.
- ``"random"``: torchvision's own initialization. Every result computed with it must say so,
  which is why each model carries a ``weights_label``.

``describe`` prints what the lecture asks students to look at: how many parameters each block
holds and how many of them will actually train.
"""

from __future__ import annotations

import difflib
import functools
import os
import urllib.error
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_builder, get_model_weights, list_models

from course.errors import CourseError, WeightsError
from course.paths import offline as _offline_default

__all__ = [
    "RANDOM_LABEL",
    "available_models",
    "build_on_meta",
    "count_parameters",
    "describe",
    "imagenet_weights_file",
    "load_model",
    "trainable_parameter_names",
    "trainable_parameters",
]

#: The ``weights_label`` of a randomly initialized model.
RANDOM_LABEL = "random (no pretrained weights)"

# Torchvision warns (on stderr) that GoogLeNet's and Inception v3's default random init "will
# change" unless init_weights is passed. nbgrader gives 0 points to a cell that writes to stderr,
# so we ask for today's init explicitly: same weights, no warning.
_QUIET_RANDOM_KWARGS: dict[str, dict[str, object]] = {
    "googlenet": {"init_weights": True},
    "inception_v3": {"init_weights": True},
}

# Auxiliary classifiers that only exist during training; a state_dict saved from a model loaded
# with ImageNet weights lacks them (torchvision drops them after loading).
_AUX_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")

# Wrappers add these to every key: DataParallel/DistributedDataParallel ("module.") and
# torch.compile ("_orig_mod."). A file saved from a wrapped model is still the same network.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


@functools.cache
def available_models() -> tuple[str, ...]:
    """Names of every torchvision image-classification model, e.g. ``"vgg16"``, ``"resnet18"``."""
    return tuple(list_models(module=torchvision.models))


def load_model(
    name: str = "vgg16",
    weights: str | os.PathLike[str] = "random",
    *,
    num_classes: int | None = None,
    offline: bool | None = None,
) -> nn.Module:
    """Build a torchvision classifier and fill it with ImageNet, local-file or random weights.

    Args:
        name: a torchvision classification model, e.g. ``"vgg16"`` (see ``available_models()``).
        weights: ``"random"``, ``"imagenet"``, or the path of a local weights file.
        num_classes: size of the output layer. ``None`` keeps the architecture's own (1000 for
            ImageNet models). ImageNet weights always come with a 1000-way head: load them
            with ``num_classes=None`` and replace the head afterwards. For a local file, give
            the number of classes the file was trained for.
        offline: ``True`` never tries the network; ``None`` follows ``course.paths.offline()``.

    Returns:
        The model (in training mode, as torchvision returns it), with attribute
        ``weights_label`` saying which weights it holds, e.g.
        ``"random (no pretrained weights)"``, ``"imagenet (VGG16_Weights.IMAGENET1K_V1)"``
        or ``"file: /path/vgg16.pth"``.

    Raises:
        CourseError: unknown model name.
        WeightsError: weights missing, unreadable, or made for another architecture.
    """
    name = _check_name(name)
    offline = _offline_default() if offline is None else offline
    kind = weights.strip().lower() if isinstance(weights, str) else None

    if kind == "random":
        kwargs: dict[str, object] = dict(_QUIET_RANDOM_KWARGS.get(name, {}))
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        model = get_model(name, weights=None, **kwargs)
        label = RANDOM_LABEL
    elif kind == "imagenet":
        model, label = _load_imagenet(name, num_classes=num_classes, offline=offline)
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"weights={str(weights)!r} is neither 'random', 'imagenet', nor an existing file"
                + (" (it is a folder)" if path.is_dir() else ""),
                "pass weights='random', weights='imagenet', or the path of a file saved with "
                "torch.save(model.state_dict(), path)",
            )
        model = _load_file(name, path.resolve(), num_classes=num_classes)
        label = f"file: {path.resolve()}"

    model.weights_label = label
    return model


def imagenet_weights_file(name: str = "vgg16") -> Path:
    """Where torchvision keeps (or would download) the default ImageNet weights of ``name``.

    The folder is ``torch.hub.get_dir()/checkpoints`` (under ``$TORCH_HOME``, by default
    ``~/.cache/torch/hub``); the file name is the last part of the weights' download URL.
    """
    weights = get_model_weights(_check_name(name)).DEFAULT
    return _hub_checkpoints() / os.path.basename(urlparse(weights.url).path)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter values in ``model`` (each shared tensor counted once).

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad=True``, i.e. the ones an
            optimizer can change.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameter values that will train (``requires_grad=True``)."""
    return count_parameters(model, trainable_only=True)


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the trainable parameter tensors, e.g. ``["classifier.6.weight", ...]``."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def describe(model: nn.Module) -> str:
    """A table of parameter counts by top-level block: total, trainable and frozen.

    Works for any module. For VGG16 the blocks are ``features`` (the 13 conv layers),
    ``avgpool`` (no parameters) and ``classifier`` (fc6, fc7 and the output layer). Parameters
    that sit directly on the model (a ViT's ``class_token``) get a row of their own.
    """
    rows: list[tuple[str, str, int, int]] = []
    own = list(model.named_parameters(recurse=False))
    if own:
        rows.append(
            (
                "(own)",
                "parameters on the model itself",
                sum(p.numel() for _, p in own),
                sum(p.numel() for _, p in own if p.requires_grad),
            )
        )
    for block_name, block in model.named_children():
        rows.append(
            (block_name, type(block).__name__, count_parameters(block), trainable_parameters(block))
        )
    total, trainable = count_parameters(model), trainable_parameters(model)

    header = type(model).__name__
    label = getattr(model, "weights_label", None)
    if label:
        header += f"  (weights: {label})"
    name_w = max([len("block"), len("total")] + [len(r[0]) for r in rows])
    type_w = max([len("type")] + [len(r[1]) for r in rows])
    num_w = max(len("trainable"), len(f"{total:,}"))

    def line(block: str, kind: str, n: int | str, t: int | str, f: int | str) -> str:
        nums = [f"{v:,}" if isinstance(v, int) else v for v in (n, t, f)]
        return (
            f"{block:<{name_w}}  {kind:<{type_w}}  " + "  ".join(f"{v:>{num_w}}" for v in nums)
        ).rstrip()

    out = [header, line("block", "type", "parameters", "trainable", "frozen")]
    out.append("-" * len(out[-1]))
    out += [line(b, k, n, t, n - t) for b, k, n, t in rows]
    out.append("-" * len(out[1]))
    out.append(line("total", "", total, trainable, total - trainable))
    share = 100.0 * trainable / total if total else 0.0
    out.append(f"{share:.2f}% of the parameters will train.")
    return "\n".join(out)


# --- helpers -------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    names = available_models()
    if name in names:
        return name
    close = difflib.get_close_matches(str(name), names, n=3)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise CourseError(
        f"{name!r} is not a torchvision classification model",
        f"{hint}Pick one of course.models.available_models(), e.g. 'vgg16' or 'resnet18'.",
    )


def _hub_checkpoints() -> Path:
    # Read at call time: torch.hub.get_dir() follows $TORCH_HOME, which tests and users may set.
    return Path(torch.hub.get_dir()) / "checkpoints"


def _load_imagenet(name: str, *, num_classes: int | None, offline: bool) -> tuple[nn.Module, str]:
    weights = get_model_weights(name).DEFAULT
    label = f"imagenet ({weights})"
    categories = len(weights.meta.get("categories") or ()) or None
    if num_classes is not None and num_classes != categories:
        raise WeightsError(
            f"ImageNet weights for {name} come with a {categories}-way output layer, "
            f"not num_classes={num_classes}",
            "load with num_classes=None, then replace the output layer with a new one "
            f"for your {num_classes} classes",
        )
    file = imagenet_weights_file(name)
    place = (
        f"put {file.name} (from {weights.url}) into the folder {file.parent}, or pass the "
        "path of a local weights file, or use weights='random' (no pretrained weights)"
    )
    if offline and not file.is_file():
        raise WeightsError(
            f"the ImageNet weights for {name} are not in torchvision's cache and downloads "
            f"are off (offline mode): missing file {file.name} in {file.parent}",
            place,
        )
    try:
        model = get_model(name, weights=weights)
    except (urllib.error.URLError, OSError) as err:  # no network, or the host is unreachable
        raise WeightsError(
            f"could not download the ImageNet weights for {name} ({_short(err)})", place
        ) from err
    except Exception as err:
        if not file.is_file():  # the download itself failed (e.g. a hash mismatch)
            raise WeightsError(
                f"could not download the ImageNet weights for {name} ({_short(err)})", place
            ) from err
        # A truncated or corrupt file in the cache.
        raise WeightsError(
            f"the cached ImageNet weights file {file} could not be read ({_short(err)})",
            f"delete {file} and try again with network access, or {place}",
        ) from err
    return model, label


def _load_file(name: str, path: Path, *, num_classes: int | None) -> nn.Module:
    state = _read_state_dict(path)
    kwargs: dict[str, object] = dict(_QUIET_RANDOM_KWARGS.get(name, {}))
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
    model = _build_on_meta(name, kwargs) or get_model(name, weights=None, **kwargs)

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing and all(k.startswith(_AUX_PREFIXES) for k in missing):
        # A file saved from an ImageNet-loaded GoogLeNet/Inception has no auxiliary heads:
        # drop them here too, exactly as torchvision does after loading its own weights.
        _drop_aux_heads(model)
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
            + _mismatch_summary(missing, unexpected, reshaped),
            _mismatch_remedy(name, state),
        )
    if next(model.parameters()).is_meta:
        if {n for n, _ in model.named_buffers()} <= set(expected):
            # Every tensor is about to be overwritten by the file: allocate without init.
            model = model.to_empty(device="cpu")
        else:  # a buffer the file does not carry needs its real initial value
            model = get_model(name, weights=None, **kwargs)
            if not any(k.startswith(_AUX_PREFIXES) for k in expected):
                _drop_aux_heads(model)
    model.load_state_dict(state)
    return model


def build_on_meta(name: str) -> nn.Module:
    """Build torchvision model ``name`` with shapes only: no memory, no weights, instant.

    Layers on PyTorch's ``meta`` device know their shapes but hold no values, which is
    all it takes to read layer names, ``in_features`` or parameter counts of a large model.
    """
    model = _build_on_meta(_check_name(name), dict(_QUIET_RANDOM_KWARGS.get(name, {})))
    if model is None:
        raise CourseError(
            f"torchvision's {name!r} cannot be built on the meta device.",
            f'Build it for real instead: load_model("{name}", "random").',
        )
    return model


def _build_on_meta(name: str, kwargs: dict[str, object]) -> nn.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.device("meta"):
                return get_model(name, weights=None, **kwargs)
    except Exception:
        return None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
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
            problem = f"{path} is not a readable PyTorch weights file ({_short(err)})"
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
            f"{path} holds a dict without tensors (keys: {_few(list(obj))})",
            "save the weights with torch.save(model.state_dict(), path)",
        )
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _drop_aux_heads(model: nn.Module) -> None:
    for attr in ("aux1", "aux2", "AuxLogits"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    if hasattr(model, "aux_logits"):
        model.aux_logits = False


def _mismatch_summary(
    missing: list[str], unexpected: list[str], reshaped: list[tuple[str, tuple, tuple]]
) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
    if reshaped:
        shown = ", ".join(f"{k}: file {list(a)} vs model {list(b)}" for k, a, b in reshaped[:3])
        more = f", and {len(reshaped) - 3} more" if len(reshaped) > 3 else ""
        parts.append(f"{len(reshaped)} shape differences ({shown}{more})")
    return "; ".join(parts)


def _mismatch_remedy(name: str, state: dict[str, torch.Tensor]) -> str:
    guess = _guess_architecture(state)
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
    model = _build_on_meta(name, dict(_QUIET_RANDOM_KWARGS.get(name, {})))
    return None if model is None else {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _guess_architecture(state: dict[str, torch.Tensor]) -> tuple[str, int | None] | None:
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
            if any(not k.startswith(_AUX_PREFIXES) for k in set(ref) - set(shapes)):
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


def _few(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... {len(keys) - n} more" if len(keys) > n else "")


def _short(err: BaseException) -> str:
    # First sentence of the first line: torch's own advice that follows is not for students.
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = text.split(". ", 1)[0][:160]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _describe_object(obj: object) -> str:
    if isinstance(obj, Mapping):
        return "an empty dict"
    if isinstance(obj, torch.Tensor):
        return f"a single tensor of shape {list(obj.shape)}"
    return f"a {type(obj).__name__}"
