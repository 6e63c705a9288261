"""Reference solutions, training (exercise task 5): the optimizer over trainable parameters.

Mirrors ``autograder.checks.training``.
"""

from __future__ import annotations

import torch
from torch import nn

from course.training import TrainConfig

__all__ = ["make_optimizer"]

# --- task 5: optimizer -----------------------------------------------------------------------


def make_optimizer(
    model: nn.Module,
    lr: float = TrainConfig.lr,
    momentum: float = TrainConfig.momentum,
    weight_decay: float = TrainConfig.weight_decay,
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
