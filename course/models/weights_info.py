"""Where a model's weights came from, as a typed value: :class:`WeightsInfo`.

``load_model`` attaches one to every model it returns (``model.weights_info``). Code that must
know whether weights are random asks ``info.kind``, never the label's text; the label and its
notes are for people. ``model.weights_label`` (the label with its notes) and
``model.preprocessing`` stay available as attributes derived from the info, for lessons and
for older code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from torch import nn

from course.models.imagenet import IMAGENET_PREPROCESSING, Preprocessing

WeightsKind = Literal["random", "imagenet", "file"]
KINDS: tuple[str, ...] = ("random", "imagenet", "file")


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a model holds and how its inputs must be normalized.

    Attributes:
        kind: ``"random"`` (an initialization, nothing learned), ``"imagenet"`` (pretrained
            on ImageNet) or ``"file"`` (a local weights file).
        label: a short human label, e.g. ``"imagenet (VGG16_Weights.IMAGENET1K_V1)"``.
        preprocessing: the mean/std the weights expect.
        notes: what was done to the weights afterwards (e.g. BatchNorm statistics measured
            on data), in order; each note is a short phrase.
    """

    kind: WeightsKind
    label: str
    preprocessing: Preprocessing = IMAGENET_PREPROCESSING
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"weights kind {self.kind!r}: choose one of {', '.join(KINDS)}")

    @property
    def random(self) -> bool:
        """True when nothing was learned: the features say nothing about transfer."""
        return self.kind == "random"

    @property
    def full_label(self) -> str:
        """The label followed by the notes, ``"; "``-separated (what ``weights_label`` holds)."""
        return "; ".join((self.label, *self.notes))

    def with_note(self, note: str) -> WeightsInfo:
        """A copy with ``note`` appended."""
        return replace(self, notes=(*self.notes, note))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (``preprocessing`` as mean, std, label)."""
        return {
            "kind": self.kind,
            "label": self.label,
            "preprocessing": {
                "mean": list(self.preprocessing.mean),
                "std": list(self.preprocessing.std),
                "label": self.preprocessing.label,
            },
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WeightsInfo:
        """The inverse of :meth:`to_dict`."""
        pre = data["preprocessing"]
        return cls(
            kind=data["kind"],
            label=data["label"],
            preprocessing=Preprocessing(tuple(pre["mean"]), tuple(pre["std"]), pre["label"]),
            notes=tuple(data.get("notes", ())),
        )


def attach_weights_info(model: nn.Module, info: WeightsInfo) -> nn.Module:
    """Give ``model`` its ``weights_info`` and the attributes derived from it; return it."""
    model.weights_info = info
    model.weights_label = info.full_label
    model.preprocessing = info.preprocessing
    return model


def weights_info_of(model: nn.Module) -> WeightsInfo | None:
    """``model.weights_info``, or ``None`` for a model that carries none."""
    info = getattr(model, "weights_info", None)
    return info if isinstance(info, WeightsInfo) else None


def add_weights_note(model: nn.Module, note: str) -> WeightsInfo:
    """Append ``note`` to the model's weights info (re-deriving ``weights_label``).

    Raises:
        ValueError: the model carries no ``weights_info``.
    """
    info = weights_info_of(model)
    if info is None:
        raise ValueError(f"{type(model).__name__} carries no weights_info to add a note to")
    attach_weights_info(model, info.with_note(note))
    return model.weights_info
