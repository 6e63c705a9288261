"""What ImageNet weights expect and what they name: input preprocessing and class names."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import get_model_weights
from torchvision.transforms import v2

from course.data import NORMALIZATIONS
from course.models.builders import check_name


@dataclass(frozen=True)
class Preprocessing:
    """How a model's inputs must be normalized, carried by the model as ``model.preprocessing``.

    Inputs are float images in [0, 1] (``ToDtype(float32, scale=True)``); the model expects
    ``(x - mean) / std`` per channel.

    Attributes:
        mean: per-channel mean (R, G, B) in [0, 1] units.
        std: per-channel standard deviation (R, G, B) in [0, 1] units.
        label: where these numbers come from, for printouts.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    label: str

    def normalize(self) -> v2.Normalize:
        """The ``torchvision.transforms.v2.Normalize`` that applies this preprocessing."""
        return v2.Normalize(mean=list(self.mean), std=list(self.std))


#: ImageNet's per-channel statistics, as every torchvision ImageNet model expects them
#: (the numbers are defined once, in ``course.data.NORMALIZATIONS["imagenet"]``).
IMAGENET_PREPROCESSING = Preprocessing(
    mean=tuple(NORMALIZATIONS["imagenet"][0]),
    std=tuple(NORMALIZATIONS["imagenet"][1]),
    label="ImageNet mean/std (torchvision's convention)",
)


@functools.cache
def imagenet_classes() -> tuple[str, ...]:
    """ImageNet's 1000 class names in the order of every 1000-way ImageNet output layer.

    These are torchvision's short names (shipped inside torchvision, no download), e.g.
    ``"moving van"``, ``"trailer truck"``. They are the first synonym of each line of Google's
    ``imagenet_labels.txt`` (after its ``background`` line), except two names torchvision
    disambiguates (``"crane bird"``, ``"maillot tank suit"``), so they also name the outputs
    of the offline MobileNetV2.
    """
    categories = get_model_weights("mobilenet_v2").DEFAULT.meta["categories"]
    return tuple(categories)


def imagenet_weights_file(name: str = "vgg16") -> Path:
    """Where torchvision keeps (or would download) the default ImageNet weights of ``name``.

    The folder is ``torch.hub.get_dir()/checkpoints`` (under ``$TORCH_HOME``, by default
    ``~/.cache/torch/hub``); the file name is the last part of the weights' download URL.
    """
    weights = get_model_weights(check_name(name)).DEFAULT
    # torch.hub.get_dir() is read at call time: it follows $TORCH_HOME, which tests may set.
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return folder / os.path.basename(urlparse(weights.url).path)
