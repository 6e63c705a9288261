"""Reference solutions: model surgery, transforms, optimizer and channel statistics.

This is the correct implementation of every function the exercise asks students to write,
plus :func:`lecture_unfreeze` and :func:`lecture_channel_stats`, which reproduce two mistakes
in the lecture's notebooks on purpose so the course can show them and the autograder can
recognize them.

The recipe, as in the lecture (STAT 453, L14.6.2)::

    model = load_vgg16("imagenet")
    freeze_backbone(model)          # every parameter frozen
    replace_head(model, 10)         # a fresh Linear(4096, 10): trainable, it is new
    unfreeze(model)                 # fc6, fc7 and the head train again
    optimizer = make_optimizer(model)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from course.data import NORMALIZATIONS
from course.models import load_model

__all__ = [
    "FC_LAYERS",
    "build_transforms",
    "channel_stats",
    "freeze_backbone",
    "head_name",
    "lecture_channel_stats",
    "lecture_unfreeze",
    "load_vgg16",
    "make_optimizer",
    "replace_head",
    "unfreeze",
]

#: VGG16's three fully connected layers: classifier[0] (fc6), classifier[3] (fc7) and the
#: output layer classifier[6] ("head"). The ReLU and Dropout layers between them have no
#: parameters, so there is nothing in them to freeze or unfreeze.
FC_LAYERS: tuple[str, ...] = ("fc6", "fc7", "head")

Stats = tuple[tuple[float, ...], tuple[float, ...]]

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


# --- task 4: transforms ----------------------------------------------------------------------


def build_transforms(
    size: int = 224,
    normalization: str | tuple[Sequence[float], Sequence[float]] = "imagenet",
    *,
    augment: bool = False,
) -> tuple[Callable[[Any], torch.Tensor], Callable[[Any], torch.Tensor]]:
    """The training and evaluation transforms for CIFAR-10 images (uint8 CHW tensors or PIL).

    Both end as float32 ``(3, size, size)`` tensors normalized per channel:
    ``ToImage -> Resize(antialias=True) -> [crop] -> ToDtype(float32, scale=True) ->
    Normalize(mean, std)``.

    - ``augment=False`` (the lecture's 224-px run): both transforms are ``Resize(size)``.
    - ``augment=True`` (the lecture's 64-px run): ``Resize(size + 6)`` then ``RandomCrop(size)``
      for training and ``CenterCrop(size)`` for evaluation, so evaluation is deterministic.

    Args:
        size: side in pixels of the images the network sees. CIFAR-10 images are square, so
            ``Resize(size)`` (the short side) gives ``size x size``.
        normalization: a key of ``course.data.NORMALIZATIONS`` (``"imagenet"``, ``"cifar10"``,
            ``"half"``) or an explicit ``(mean, std)`` pair.
        augment: use the random-crop training transform.

    Returns:
        ``(train_transform, eval_transform)``.
    """
    mean, std = _normalization(normalization)

    def pipeline(*resize_and_crop: Callable[[Any], Any]) -> v2.Compose:
        return v2.Compose(
            [
                v2.ToImage(),
                *resize_and_crop,
                # scale=True maps uint8 0..255 to 0..1 (what the normalization stats assume);
                # a plain cast would keep 0..255.
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )

    if augment:
        train = pipeline(v2.Resize(size + 6, antialias=True), v2.RandomCrop(size))
        evaluate = pipeline(v2.Resize(size + 6, antialias=True), v2.CenterCrop(size))
    else:
        train = pipeline(v2.Resize(size, antialias=True))
        evaluate = pipeline(v2.Resize(size, antialias=True))
    return train, evaluate


def _normalization(
    normalization: str | tuple[Sequence[float], Sequence[float]],
) -> tuple[list[float], list[float]]:
    if isinstance(normalization, str):
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {normalization!r}: use one of "
                f"{', '.join(map(repr, NORMALIZATIONS))} or a (mean, std) pair"
            )
        mean, std = NORMALIZATIONS[normalization]
    else:
        mean, std = normalization
    return [float(v) for v in mean], [float(v) for v in std]


# --- task 5: optimizer -----------------------------------------------------------------------


def make_optimizer(
    model: nn.Module, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0
) -> torch.optim.SGD:
    """SGD over the trainable parameters only, with the lecture's defaults.

    Handing frozen parameters to the optimizer would not train them (they get no gradient),
    but with weight decay it would shrink them anyway, and it keeps momentum buffers for
    nothing; listing only trainable ones also makes the set of trained layers explicit.

    Raises:
        ValueError: no parameter is trainable.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            "no parameter of the model is trainable, so there is nothing to optimize. "
            "Freeze first, then replace the head and unfreeze the layers to train "
            "(a new head is created trainable)."
        )
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


# --- task 6: channel statistics --------------------------------------------------------------


def channel_stats(
    images_or_dataset: Any, *, size: int | None = None, batch_size: int = 1000
) -> Stats:
    """Exact per-channel mean and population standard deviation, in one streaming pass.

    Pixels are scaled to [0, 1] (uint8 values divided by 255; float images are taken as they
    are), the scale ``transforms.Normalize`` works in.

    Each batch's mean and sum of squared deviations are computed in float64 and merged into
    running totals (Chan et al.'s pairwise update), so the result equals the mean and std of
    all pixels at once, without holding them all in memory.

    The lecture instead averaged the per-batch stds (see :func:`lecture_channel_stats`).
    That is not the std of the data: each batch's std measures spread around *that batch's*
    mean, so the spread between batch means is lost (the total variance is the mean
    within-batch variance *plus* the variance of the batch means), averaging square roots
    underestimates again, and a small last batch weighs as much as a full one.

    Args:
        images_or_dataset: a uint8 tensor ``(N, C, H, W)``, a ``course.data.ImageSplit``, a
            Dataset yielding ``(image, label)`` (tensor or PIL images), or a DataLoader (or
            other iterable) yielding ``(images, labels)`` batches.
        size: resize every image to ``size x size`` first (bilinear, ``antialias=True``, on
            the original dtype, as the transforms do), to get the statistics of what the
            network sees.
        batch_size: images per step (memory use, not the result).

    Returns:
        ``(mean, std)``, each a tuple with one float per channel.
    """
    count = 0
    mean = m2 = None
    for batch in _batches(images_or_dataset, batch_size, size):
        for chunk in _float64_chunks(batch):
            n = chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
            chunk_mean = chunk.mean(dim=(0, 2, 3))
            chunk_m2 = ((chunk - chunk_mean.view(1, -1, 1, 1)) ** 2).sum(dim=(0, 2, 3))
            if mean is None:
                count, mean, m2 = n, chunk_mean, chunk_m2
                continue
            # Merge two groups' (count, mean, M2): the squared gap between their means,
            # weighted by both counts, is the between-group part of the spread.
            delta = chunk_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + chunk_m2 + delta**2 * (count * n / total)
            count = total
    if mean is None:
        raise ValueError("channel_stats got no images")
    std = torch.sqrt(m2 / count)
    return tuple(mean.tolist()), tuple(std.tolist())


def lecture_channel_stats(
    images_or_dataset: Any, *, size: int | None = None, batch_size: int = 256
) -> Stats:
    """The lecture's statistics: the average of per-batch means and of per-batch stds.

    Kept to show the pitfall (see :func:`channel_stats` for why the std is wrong). The mean is
    exact only when every batch has the same size. Same arguments as :func:`channel_stats`.
    """
    means, stds = [], []
    for batch in _batches(images_or_dataset, batch_size, size):
        x = _to_unit_float64(batch)
        means.append(x.mean(dim=(0, 2, 3)))
        stds.append(x.std(dim=(0, 2, 3), unbiased=False))  # np.std: population std
    if not means:
        raise ValueError("lecture_channel_stats got no images")
    return tuple(torch.stack(means).mean(0).tolist()), tuple(torch.stack(stds).mean(0).tolist())


def _batches(source: Any, batch_size: int, size: int | None) -> Iterator[torch.Tensor]:
    """Yield image batches ``(B, C, H, W)`` in their own dtype, resized when asked."""
    for batch in _raw_batches(source, batch_size):
        if size is not None:
            batch = TF.resize(batch, [size, size], antialias=True)
        yield batch


def _raw_batches(source: Any, batch_size: int) -> Iterator[torch.Tensor]:
    if isinstance(source, torch.Tensor):
        images = source.unsqueeze(0) if source.dim() == 3 else source
        _check_images(images)
        for start in range(0, len(images), batch_size):
            yield images[start : start + batch_size]
        return
    if isinstance(getattr(source, "images", None), torch.Tensor):  # an ImageSplit
        yield from _raw_batches(source.images, batch_size)
        return
    # A map-style Dataset is read by index (iterating one may never stop); anything else
    # (a DataLoader, a generator) is iterated. Items are (image, label) pairs or batches.
    if isinstance(source, Dataset) and hasattr(source, "__len__"):
        items: Iterable[Any] = (source[i] for i in range(len(source)))
    else:
        items = source
    pending: list[torch.Tensor] = []
    for item in items:
        image = _image_of(item)
        if image.dim() == 4:  # already a batch
            yield from _stack(pending)
            pending = []
            _check_images(image)
            yield image
            continue
        pending.append(image)
        if len(pending) == batch_size:
            yield from _stack(pending)
            pending = []
    yield from _stack(pending)


def _image_of(item: Any) -> torch.Tensor:
    image = item[0] if isinstance(item, tuple | list) else item
    if not isinstance(image, torch.Tensor):
        image = TF.pil_to_tensor(image)  # PIL -> uint8 CHW
    return image.as_subclass(torch.Tensor)


def _stack(images: list[torch.Tensor]) -> Iterator[torch.Tensor]:
    if not images:
        return
    for image in images:
        _check_images(image.unsqueeze(0))
    if all(image.shape == images[0].shape for image in images):
        yield torch.stack(images)
    else:  # images of different sizes cannot share a tensor; each is its own batch
        for image in images:
            yield image.unsqueeze(0)


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(
            f"expected images shaped (N, C, H, W) or (C, H, W), got shape {tuple(images.shape)}"
        )
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(
            f"expected uint8 (0..255) or float (0..1) images, got dtype {images.dtype}"
        )


def _to_unit_float64(batch: torch.Tensor) -> torch.Tensor:
    _check_images(batch)
    x = batch.to(torch.float64)
    return x / 255.0 if batch.dtype == torch.uint8 else x


def _float64_chunks(batch: torch.Tensor, max_values: int = 1 << 24) -> Iterator[torch.Tensor]:
    # float64 takes 8 bytes a value: convert at most ~16M values (128 MB) at a time, so a
    # 1000-image batch at 224 px does not need 1.2 GB.
    per_image = max(1, batch[0].numel())
    step = max(1, max_values // per_image)
    for start in range(0, batch.shape[0], step):
        yield _to_unit_float64(batch[start : start + step])
