"""The lecture's own VGG16 for training from scratch (``1.1-vgg16.ipynb``), not torchvision's.

The lecture's from-scratch run (84.58% test accuracy) did not use ``torchvision.models.vgg16``
(134,301,514 parameters with a 10-way head) but a VGG16 written in the notebook for 64-px
inputs: the same 13 convolutions, an ``AdaptiveAvgPool2d((3, 3))`` instead of (7, 7), so fc6
maps 512 x 3 x 3 = 4,608 inputs (not 25,088) to 4,096, and every convolution and linear
layer re-initialized with ``kaiming_uniform_(mode="fan_in", nonlinearity="relu")`` and zero
biases. With 10 classes that is 50,415,434 parameters. The ``scratch`` protocol trains this
network, so the lecture's 84.58% row beside it compares like with like.

The layout follows torchvision's VGG (``features``, ``avgpool``, ``classifier`` with fc6 at
``classifier[0]``, fc7 at ``[3]``, the head at ``[6]``), so freezing, head replacement, the
feature-cache cut and ``course.models.describe`` treat it as they treat VGG16. The layers are
built in the notebook's order, so under the same seed the initial weights are the notebook's.
"""

from __future__ import annotations

import torch
from torch import nn

from course.models import WeightsInfo, attach_weights_info

#: Output channels of the 13 convolutions; "M" is a 2x2 max-pool (VGG16, configuration D).
LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip

#: Spatial size of the pooled map: the notebook's ``height, width = 3, 3``.
POOL = (3, 3)

#: Parameters with a 10-way head, as the notebook's model has.
PARAMETERS_10_CLASSES = 50_415_434


class LectureVGG16(nn.Module):
    """VGG16 as the lecture wrote it for its from-scratch run (see the module docstring).

    Args:
        num_classes: outputs of the last layer (10 for CIFAR-10).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(POOL)
        self.classifier = nn.Sequential(
            nn.Linear(512 * POOL[0] * POOL[1], 4096),
            nn.ReLU(True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, num_classes),
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        attach_weights_info(
            self, WeightsInfo("random", "random (the lecture's own VGG16, kaiming-uniform init)")
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """features, avgpool to 3 x 3, flatten, classifier: the notebook's forward pass."""
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))
