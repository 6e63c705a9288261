"""Where to cut a model: a frozen, mode-independent prefix whose output can be cached.

The model is read as a chain of modules in forward order: VGG-like models
(torchvision's VGG, MobileNetV3, EfficientNet, the lecture's own VGG16: ``features``,
``avgpool``, ``flatten``, ``classifier``) and MobileNetV2 (``features``, a global average
pool, ``flatten``, ``classifier``). The prefix is the longest run of modules that (1) have no
trainable parameter and (2) compute the same in ``course.training``'s train mode as in eval
mode. Rule (2) keeps a cache of the prefix's output exact:

- Dropout ends the prefix. In VGG16 the frozen classifier's Dropout layers still drop
  activations at random during training, so a head-only VGG16 is cut after fc6's ReLU
  (``classifier[2]`` is the first module of the tail) and dropout acts as before.
- A BatchNorm layer whose parameters are all frozen stays in eval mode during training
  (``course.training.train_mode``), so it is mode-independent and the prefix goes through it:
  MobileNetV2's whole frozen backbone is cached. A BatchNorm that trains ends the prefix.

``split_model(model, at="features[17]")`` cuts earlier, at a named module: two runs that
train different tails (a linear probe, the last block) then share one cache
(``course.feature_cache``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from course.training import frozen_batchnorm

__all__ = ["SplitModel", "chain", "split_model"]


@dataclass(frozen=True)
class SplitModel:
    """A model cut in two: ``tail(prefix(x)) == model(x)`` in eval mode and in the train mode
    of ``course.training.train`` (frozen BatchNorm in eval mode)."""

    prefix: nn.Sequential  # frozen and mode-independent: its output can be cached
    tail: nn.Sequential  # shares its modules (and parameters) with the model
    cut: str  # where the cut is, e.g. "classifier[2]" (the cache is the input of this module)


def chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model as a named chain of modules, in forward order (VGG-like or MobileNetV2)."""
    from torchvision.models import MobileNetV2

    if isinstance(model, MobileNetV2):
        # torchvision's forward: features, adaptive_avg_pool2d(1), flatten, classifier.
        pool: nn.Module = nn.AdaptiveAvgPool2d((1, 1))
    elif all(hasattr(model, name) for name in ("features", "avgpool", "classifier")):
        pool = model.avgpool
    else:
        raise ValueError(
            f"{type(model).__name__} is neither VGG-like (features, avgpool, classifier) nor a "
            "MobileNetV2: feature caching cannot tell where to cut it; train it without the cache."
        )
    layers: list[tuple[str, nn.Module]] = []
    layers += [(f"features[{i}]", m) for i, m in enumerate(model.features)]
    layers.append(("avgpool", pool))
    layers.append(("flatten", nn.Flatten(1)))
    classifier = model.classifier
    if isinstance(classifier, nn.Sequential):
        layers += [(f"classifier[{i}]", m) for i, m in enumerate(classifier)]
    else:
        layers.append(("classifier", classifier))
    return layers


def _mode_independent(module: nn.Module) -> bool:
    for m in module.modules():
        if isinstance(m, (nn.modules.dropout._DropoutNd, nn.AlphaDropout)):
            return False
        if isinstance(m, nn.modules.batchnorm._NormBase) and not frozen_batchnorm(m):
            return False
    return True


def _cacheable_module(module: nn.Module) -> bool:
    if any(p.requires_grad for p in module.parameters()):
        return False
    return _mode_independent(module)


def split_model(model: nn.Module, at: str | None = None) -> SplitModel | None:
    """Cut ``model`` into a frozen prefix (cacheable) and the tail that trains.

    Args:
        model: set up for training already (backbone frozen, head replaced, the layers to
            train unfrozen). VGG-like models and MobileNetV2 (see :func:`chain`).
        at: cut just before this module (a name from :func:`chain`, e.g. ``"features[17]"``)
            instead of at the deepest exact point; it must not lie past that point.

    Returns:
        The two halves, or ``None`` when nothing is cacheable (the very first layer trains,
        e.g. the scratch protocol) or nothing trains at all.

    Raises:
        ValueError: an unknown model layout, or ``at`` is unknown or past the deepest exact cut.
    """
    layers = chain(model)
    cut = 0
    while cut < len(layers) and _cacheable_module(layers[cut][1]):
        cut += 1
    if at is not None:
        names = [name for name, _ in layers]
        if at not in names:
            raise ValueError(f"no module called {at!r}; the chain is {', '.join(names)}")
        wanted = names.index(at)
        if wanted > cut:
            deepest = names[cut] if cut < len(names) else "the end"
            raise ValueError(
                f"cannot cut at {at!r}: {deepest} comes first and trains or depends on the "
                "mode, so a cache past it would not be exact"
            )
        cut = wanted
    if cut == 0 or cut == len(layers):
        # cut == len: nothing trains at all, so there is nothing to train on a cache either.
        return None
    return SplitModel(
        prefix=nn.Sequential(*(m for _, m in layers[:cut])),
        tail=nn.Sequential(*(m for _, m in layers[cut:])),
        cut=layers[cut][0],
    )
