"""Reference solutions, model surgery (exercise tasks 1-3): load, freeze, unfreeze, new head.

Mirrors ``autograder.checks.model_surgery``. :func:`lecture_unfreeze` reproduces the lecture's
freezing bug on purpose, so the course can show it and the autograder can recognize it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from torch import nn

from course.models import load_model

__all__ = [
    "FC_LAYERS",
    "freeze_backbone",
    "head_name",
    "lecture_unfreeze",
    "load_vgg16",
    "replace_head",
    "unfreeze",
]

#: VGG16's three fully connected layers: classifier[0] (fc6), classifier[3] (fc7) and the
#: output layer classifier[6] ("head"). The ReLU and Dropout layers between them have no
#: parameters, so there is nothing in them to freeze or unfreeze.
FC_LAYERS: tuple[str, ...] = ("fc6", "fc7", "head")

# Auxiliary classifiers that torchvision attaches during training: (container, its Linear).
_AUX_HEADS = (("aux1", "aux1.fc2"), ("aux2", "aux2.fc2"), ("AuxLogits", "AuxLogits.fc"))


# --- task 1 ----------------------------------------------------------------------------------


def load_vgg16(weights: str = "random") -> nn.Module:
    """VGG16 with its 1000-way ImageNet head, through ``course.models.load_model``.

    Args:
        weights: ``"random"``, ``"imagenet"`` (from torchvision's cache; offline it never
            downloads) or the path of a local weights file.
    """
    return load_model("vgg16", weights)


# --- task 2: freezing ------------------------------------------------------------------------


def freeze_backbone(model: nn.Module) -> nn.Module:
    """Freeze every parameter of ``model`` (in place) and return it.

    A frozen parameter gets no gradient, so the optimizer never changes it. A layer created
    afterwards (the new head) starts trainable: new parameters have ``requires_grad=True``.
    """
    # Module.requires_grad_ walks every parameter of every submodule: the one call that
    # really changes what trains.
    model.requires_grad_(False)
    return model


def unfreeze(model: nn.Module, layers: Iterable[str | nn.Module] = FC_LAYERS) -> nn.Module:
    """Make the given layers trainable again (in place) and return the model.

    Args:
        model: any torchvision classifier.
        layers: which layers to train. Each item is one of

            - ``"fc6"``, ``"fc7"``: the first and second fully connected layers of VGG's (or
              AlexNet's) classifier; ``"head"``: the output layer of any model
              (see :func:`head_name`);
            - a module name as in ``model.named_modules()``, e.g. ``"classifier.3"``,
              ``"layer4"`` (ResNet) or ``"features.28"``;
            - a module of ``model`` itself, e.g. ``model.layer4``.

    Raises:
        ValueError: an unknown name, a module that is not part of ``model`` (for example the
            old head after it was replaced), or a layer without parameters (a ReLU).
    """
    if isinstance(layers, str | nn.Module):  # one layer given alone, e.g. "layer4"
        layers = [layers]
    for item in layers:
        module, label = _resolve_layer(model, item)
        if next(module.parameters(), None) is None:
            raise ValueError(
                f"{label} ({type(module).__name__}) has no parameters, so there is nothing "
                "to unfreeze. Pick the Linear or Conv layers around it"
                + (", e.g. 'fc6' or 'fc7'." if _fc_layers(model) else ".")
            )
        # The trailing underscore matters: requires_grad_ sets the flag on every parameter
        # of the module. Writing `module.requires_grad = True` (no underscore, no call) only
        # attaches a new Python attribute to the module object; PyTorch never reads it.
        module.requires_grad_(True)
    return model


def _fc_layers(model: nn.Module) -> dict[str, str]:
    """``{"fc6": "classifier.0", "fc7": "classifier.3"}`` for VGG (AlexNet: .1 and .4)."""
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Sequential):
        return {}
    linears = [f"classifier.{i}" for i, m in enumerate(classifier) if isinstance(m, nn.Linear)]
    # Only the classic three-FC-layer classifier has an fc6 and an fc7.
    return {"fc6": linears[0], "fc7": linears[1]} if len(linears) == 3 else {}


def _resolve_layer(model: nn.Module, item: str | nn.Module) -> tuple[nn.Module, str]:
    """The module ``item`` names in ``model``, and a label for messages."""
    modules = dict(model.named_modules())
    if isinstance(item, nn.Module):
        for name, module in modules.items():
            if module is item:
                return module, repr(name or "the model")
        raise ValueError(
            f"the {type(item).__name__} passed to unfreeze is not part of this model (was it "
            "replaced, e.g. the old head?). Pass the layer the model holds now, or its name."
        )
    name = str(item)
    if name == "head":
        name = head_name(model)
    elif name in ("fc6", "fc7"):
        fc = _fc_layers(model)
        if not fc:
            raise ValueError(
                f"{name!r} names a layer of VGG's classifier; {type(model).__name__} has no "
                "fc6/fc7. Pass module names from model.named_modules() instead, e.g. "
                f"{head_name(model)!r}."
            )
        name = fc[name]
    if name not in modules or name == "":
        close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"{type(model).__name__} has no layer named {str(item)!r}.{hint} Names are those "
            "of model.named_modules(), e.g. 'classifier.3'; or use 'fc6', 'fc7', 'head'."
        )
    label = repr(name) if name == str(item) else f"{str(item)!r} ({name})"
    return modules[name], label


def lecture_unfreeze(model: nn.Module, num_classes: int = 10) -> nn.Module:
    """The lecture's freezing cell, bug included, on a VGG16 (kept to show the pitfall).

    It freezes every parameter, then "unfreezes" with ``model.classifier[1].requires_grad =
    True`` and ``model.classifier[3].requires_grad = True``, then puts a new output layer in
    ``classifier[6]``, exactly as the lecture's notebooks do.

    The two middle lines change nothing that trains. ``classifier[1]`` is a ReLU and
    ``classifier[3]`` a Linear *module*; ``requires_grad`` is a property of each *parameter*
    tensor, not of modules, so assigning it on a module just creates a plain Python attribute
    nobody reads. Only the new head (4096 * 10 + 10 = 40,970 values) trains: the lecture's
    runs were linear probes on frozen fc7 features, not fine-tuning of "the last 3 layers".
    Use :func:`freeze_backbone`, :func:`replace_head` and :func:`unfreeze` instead.

    Args:
        model: a torchvision VGG (``classifier`` with 7 layers, output layer last).
        num_classes: outputs of the new head (10 for CIFAR-10, as in the lecture).
    """
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Sequential) or len(classifier) != 7:
        raise ValueError(
            "lecture_unfreeze reproduces the lecture's VGG16 code and needs a torchvision "
            f"VGG (a 7-layer `classifier`); got {type(model).__name__}."
        )
    for param in model.parameters():
        param.requires_grad = False  # on a Parameter, this one really freezes

    # The lecture's bug, verbatim: attributes on modules, not on their parameters.
    model.classifier[1].requires_grad = True
    model.classifier[3].requires_grad = True

    old = model.classifier[6]
    model.classifier[6] = nn.Linear(
        old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype
    )
    return model


# --- task 3: the head ------------------------------------------------------------------------


def head_name(model: nn.Module) -> str:
    """The dotted name of a torchvision classifier's output layer.

    ``"classifier.6"`` (VGG, AlexNet), ``"fc"`` (ResNet, ResNeXt, Wide ResNet, RegNet,
    ShuffleNet, GoogLeNet, Inception v3), ``"classifier"`` (DenseNet), ``"classifier.1"``
    (MobileNetV2, EfficientNet, MNASNet, SqueezeNet's 1x1 conv), ``"classifier.3"``
    (MobileNetV3), ``"classifier.2"`` (ConvNeXt), ``"classifier.5"`` (MaxViT), ``"head"``
    (Swin), ``"heads.head"`` (ViT).

    Raises:
        ValueError: no Linear output layer can be found.
    """
    modules = dict(model.named_modules())
    for name in ("heads.head", "fc", "head", "classifier"):
        if isinstance(modules.get(name), nn.Linear):
            return name
    classifier = modules.get("classifier")
    if isinstance(classifier, nn.Sequential):
        # The last layer with weights: Linear almost everywhere, a 1x1 conv in SqueezeNet.
        for index in reversed(range(len(classifier))):
            if isinstance(classifier[index], (nn.Linear, nn.Conv2d)):
                return f"classifier.{index}"
    linears = [name for name, m in modules.items() if isinstance(m, nn.Linear)]
    if linears:
        return linears[-1]
    raise ValueError(
        f"cannot find the output layer of {type(model).__name__}: no nn.Linear in it. "
        "Replace it by hand: setattr(parent_module, name, nn.Linear(in_features, num_classes))."
    )


def replace_head(model: nn.Module, num_classes: int = 10) -> nn.Module:
    """Put a fresh output layer with ``num_classes`` outputs in place of the old one.

    The new layer keeps the old one's input size (4096 for VGG16, 512 for ResNet-18, ...),
    its bias setting, device and dtype, and starts trainable even when the rest of the model
    is frozen, because new parameters have ``requires_grad=True``. Auxiliary heads
    (GoogLeNet ``aux1``/``aux2``, Inception v3 ``AuxLogits``) are replaced too when present,
    so training-mode outputs all have ``num_classes`` scores. Works in place; returns the model.
    """
    names = [head_name(model)]
    names += [fc for container, fc in _AUX_HEADS if getattr(model, container, None) is not None]
    for name in names:
        old = model.get_submodule(name)
        new = _fresh_layer(old, num_classes)
        new.requires_grad_(True)  # already true for a new layer; explicit for the reader
        _set_submodule(model, name, new)
    if isinstance(getattr(model, "num_classes", None), int):
        model.num_classes = num_classes  # SqueezeNet records it
    return model


def _fresh_layer(old: nn.Module, num_classes: int) -> nn.Module:
    factory: dict[str, Any] = {"device": old.weight.device, "dtype": old.weight.dtype}
    if isinstance(old, nn.Linear):
        return nn.Linear(old.in_features, num_classes, bias=old.bias is not None, **factory)
    if isinstance(old, nn.Conv2d):
        return nn.Conv2d(
            old.in_channels,
            num_classes,
            kernel_size=old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            bias=old.bias is not None,
            **factory,
        )
    raise TypeError(f"cannot replace an output layer of type {type(old).__name__}")


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    # setattr on a Module (a Sequential included: its children are named "0", "1", ...)
    # registers the new layer in place of the old one.
    setattr(parent, child, module)
