"""The lecture's runs, as named protocols.

The lecture's notebooks meant to fine-tune VGG16's three fully connected
layers, but their unfreezing code changed no parameter (see
``solutions.transfer.lecture_unfreeze``): what they really ran were linear
probes on frozen fc7 features. The protocols below keep both readings apart:

- ``lecture-small`` and ``lecture-large`` reproduce the published runs as
  they really ran, bug included (only the new head trains);
- ``linear-probe`` is the same computation as ``lecture-large`` written with
  correct, explicit freezing code: head only, on purpose;
- ``corrected`` trains fc6, fc7 and the head, which is what the lecture meant;
- ``last-block`` trains the backbone's last block and the head (fine-tuning, not a probe);
- ``scratch`` trains every layer of the lecture's own VGG16 (``solutions.lecture_vgg16``:
  3 x 3 pool, 50,415,434 parameters) from random init, as the lecture's 84.58% run did.

The pretrained protocols run on VGG16 by default and on the offline ImageNet MobileNetV2 with
``--arch mobilenet_v2`` where they make sense for it (``linear-probe``, ``last-block``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from course.data import NORMALIZATIONS

Trainable = Literal["lecture-bug", "head", "fc", "last-block", "all"]

#: The lecture's batch size (every run in its notebooks).
LECTURE_BATCH_SIZE = 256

#: Augmented protocols resize to ``size + CROP_PAD`` and crop ``size``: the lecture's
#: Resize 70 -> RandomCrop 64 (test: CenterCrop 64).
CROP_PAD = 6


@dataclass(frozen=True)
class LectureFigures:
    """What the lecture's published notebooks report (not measured here)."""

    valid_acc_first_epochs: tuple[float, float, float]
    test_acc: float
    minutes_50_epochs: float
    note: str


@dataclass(frozen=True)
class Protocol:
    """One way to train VGG16 on CIFAR-10, as the lecture or the course runs it."""

    name: str
    description: str
    size: int  # input side in pixels after resizing
    augment: bool  # Resize(size + CROP_PAD) + RandomCrop(size) in training, the lecture's 64 px
    normalization: str  # a key of course.data.NORMALIZATIONS
    trainable: Trainable  # which parameters train
    pretrained: bool  # ImageNet weights in the real run; False means random init by design
    lecture: LectureFigures | None = None

    @property
    def frozen_backbone(self) -> bool:
        """True when the early layers stay frozen (their features may be cached)."""
        return self.trainable in ("lecture-bug", "head", "fc", "last-block")

    @property
    def cacheable(self) -> bool:
        """True when the frozen part's output never changes across epochs.

        That needs a frozen backbone *and* no random augmentation: with a
        random crop, every epoch sees different pixels.
        """
        return self.frozen_backbone and not self.augment


_SMALL = LectureFigures(
    (72.5, 73.7, 74.1),
    77.99,
    38.3,
    "linear probe (only the head trained, because of the freezing bug)",
)
_LARGE = LectureFigures(
    (81.5, 82.8, 83.3),
    84.90,
    213.1,
    "linear probe (only the head trained, because of the freezing bug)",
)
_SCRATCH = LectureFigures((35.1, 50.5, 53.9), 84.58, 90.7, "all layers trained from random init")

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "lecture-small",
            "The lecture's 64-px run as it really ran: Resize 70, RandomCrop 64, "
            "ImageNet normalization, the lecture's unfreezing code (only the head trains).",
            size=64,
            augment=True,
            normalization="imagenet",
            trainable="lecture-bug",
            pretrained=True,
            lecture=_SMALL,
        ),
        Protocol(
            "lecture-large",
            "The lecture's 224-px run as it really ran: Resize 224, no augmentation, "
            "the lecture's unfreezing code (only the head trains).",
            size=224,
            augment=False,
            normalization="imagenet",
            trainable="lecture-bug",
            pretrained=True,
            lecture=_LARGE,
        ),
        Protocol(
            "linear-probe",
            "A linear probe on frozen fc7 features at 224 px, written with correct "
            "freezing code: the same computation as lecture-large, on purpose.",
            size=224,
            augment=False,
            normalization="imagenet",
            trainable="head",
            pretrained=True,
            lecture=_LARGE,
        ),
        Protocol(
            "corrected",
            "What the lecture meant: fc6, fc7 and the new head train at 224 px, "
            "everything else frozen.",
            size=224,
            augment=False,
            normalization="imagenet",
            trainable="fc",
            pretrained=True,
        ),
        Protocol(
            "last-block",
            "Fine-tuning: the backbone's last block and the head train, everything before "
            "stays frozen (MobileNetV2: features[17:] and the classifier; VGG16: the conv5 "
            "block, fc6, fc7 and the head).",
            size=224,
            augment=False,
            normalization="imagenet",
            trainable="last-block",
            pretrained=True,
        ),
        Protocol(
            "scratch",
            "The lecture's own VGG16 (3 x 3 pool, fc6 4,608 -> 4,096, kaiming-uniform init, "
            "50,415,434 parameters) from random init, every layer trained: Resize 70, "
            "RandomCrop 64, normalization 0.5/0.5.",
            size=64,
            augment=True,
            normalization="half",
            trainable="all",
            pretrained=False,
            lecture=_SCRATCH,
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """Return the protocol called ``name``, or say which names exist."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        known = ", ".join(PROTOCOLS)
        raise ValueError(f"Unknown protocol {name!r}. Choose one of: {known}.") from None


def normalization_for(
    protocol: Protocol, model: Any = None
) -> tuple[str, Sequence[float], Sequence[float]]:
    """``(name, mean, std)`` a run normalizes with.

    The protocol's own normalization, except that ``"imagenet"`` means *what the pretrained
    weights expect*: a model whose weights carry their own preprocessing (the offline
    MobileNetV2 from a TFLite file expects ``(pixel - 128) / 128``, i.e. mean = std = 128/255,
    not ImageNet's statistics) is fed that way.
    """
    own = getattr(model, "preprocessing", None) if model is not None else None
    if protocol.normalization == "imagenet" and own is not None:
        mean, std = _field(own, "mean", 0), _field(own, "std", 1)
        label = _field(own, "label", 2, default="the weights' own")
        return f"{label}", tuple(mean), tuple(std)
    mean, std = NORMALIZATIONS[protocol.normalization]
    return protocol.normalization, mean, std


def _field(obj: Any, name: str, index: int, default: Any = None) -> Any:
    """Read ``obj.name``, ``obj[name]`` or ``obj[index]``: preprocessing may be any of these."""
    if hasattr(obj, name):
        return getattr(obj, name)
    if isinstance(obj, dict):
        return obj.get(name, default)
    try:
        return obj[index]
    except (IndexError, KeyError, TypeError):
        return default
