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
- ``scratch`` trains every layer of a randomly initialized VGG16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Trainable = Literal["lecture-bug", "head", "fc", "all"]


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
    augment: bool  # Resize(size + 6) + RandomCrop(size) for training, as the lecture's 64-px run
    normalization: str  # a key of course.data.NORMALIZATIONS
    trainable: Trainable  # which parameters train
    pretrained: bool  # ImageNet weights in the real run; False means random init by design
    lecture: LectureFigures | None = None

    @property
    def frozen_backbone(self) -> bool:
        """True when every convolutional layer stays frozen (features may be cached)."""
        return self.trainable in ("lecture-bug", "head", "fc")

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
            "scratch",
            "VGG16 from random init, every layer trained: Resize 70, RandomCrop 64, "
            "normalization 0.5/0.5.",
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
