"""A VGG-shaped network small enough to train in seconds on a CPU (tests only).

It has VGG16's layout (``features``, ``avgpool`` with a fixed output grid, ``classifier`` =
Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear) and forward pass, so every code path
that handles VGG16 (freezing, the cache cut, the tail, DDP) runs on it unchanged. Its weights
are random: nothing it computes says anything about transfer learning.
"""

from __future__ import annotations

import torch
from torch import nn

from course.models import WeightsInfo, attach_weights_info


class TinyVGG(nn.Module):
    """VGG16's structure at toy width: two conv blocks, a 2x2 pool grid, three FC layers.

    Args:
        num_classes: outputs of the last layer.
        width: channels of the first conv block (the second has twice as many).
        hidden: width of the two hidden FC layers ("fc6" and "fc7").
        dropout: dropout probability in the classifier, as VGG16's 0.5 by default.
    """

    def __init__(
        self, num_classes: int = 10, width: int = 8, hidden: int = 32, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(
            nn.Linear(2 * width * 4, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        attach_weights_info(self, WeightsInfo("random", "random (TinyVGG, a test network)"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same order as torchvision's VGG: features, avgpool, flatten, classifier."""
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def tiny_vgg(trainable: str, *, seed: int = 0, dropout: float = 0.5) -> TinyVGG:
    """TinyVGG with a protocol's trainable part set, as ``solutions.run_setup.prepare_model``
    sets VGG16's: ``"head"`` (and ``"lecture-bug"``), ``"fc"`` or ``"all"``."""
    torch.manual_seed(seed)
    model = TinyVGG(dropout=dropout)
    if trainable != "all":
        model.requires_grad_(False)
        model.classifier[6].requires_grad_(True)
        if trainable == "fc":
            model.classifier[0].requires_grad_(True)
            model.classifier[3].requires_grad_(True)
    return model
