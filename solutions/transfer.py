"""Reference solutions: model surgery, transforms, optimizer and channel statistics.

Three modules mirror the autograder's checks: ``solutions.model_surgery`` (tasks 1-3),
``solutions.inputs`` (tasks 4 and 6) and ``solutions.training`` (task 5). This module
re-exports them, so ``from solutions import transfer`` keeps working everywhere.

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

from solutions.inputs import Stats, build_transforms, channel_stats, lecture_channel_stats
from solutions.model_surgery import (
    FC_LAYERS,
    freeze_backbone,
    head_name,
    lecture_unfreeze,
    load_vgg16,
    replace_head,
    unfreeze,
)
from solutions.training import make_optimizer

__all__ = [
    "FC_LAYERS",
    "Stats",
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
