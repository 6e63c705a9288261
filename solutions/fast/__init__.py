"""The fast path: feature caching, data held on the device, DDP (issue 6).

Entry point (what ``python -m solutions run --fast`` calls)::

    from solutions.fast import train_protocol_fast
    history, model = train_protocol_fast(protocol, splits, model, config, size=224)

``model`` arrives set up for the protocol (``solutions.run.prepare_model``) and is trained in
place; ``history`` is a ``course.training.History`` from the unchanged lecture loop.

What makes it fast, and why each step keeps the protocol's meaning:

- ``course.features`` (the cache lives in ``course`` so lessons can use it): with a frozen
  backbone and no random augmentation (``Protocol.cacheable``), the frozen part's output is
  computed once per split and cached on disk (memory-mapped, bf16 by default); only the
  trainable tail trains. The cut stops before the first Dropout,
  so the lecture's dropout in the frozen classifier still acts during training: cached and
  uncached training are the same computation (a test checks losses and accuracies match).
- ``gpu_data``: uint8 images go to the device once; resize, crop and normalize run there
  on whole batches with the same torchvision functions as the per-image transforms;
  ``channels_last`` on CUDA. Used for the protocols with random crops (``lecture-small``,
  ``scratch``), where a cache would change the protocol.
- ``course.training.train`` keeps losses and hit counts on the device (one transfer per
  epoch) and runs bf16 autocast on CUDA.
- ``ddp``: ``torchrun --nproc-per-node N -m solutions.fast.ddp --protocol P``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that ``solutions.fast.gpu_data`` loads without
# pulling in the training loop and the data module.
_EXPORTS = {
    "BatchTransform": "gpu_data",
    "TensorLoader": "gpu_data",
    "crop_each": "gpu_data",
    "epoch_order": "gpu_data",
    "feature_loaders": "pipeline",
    "image_loaders": "pipeline",
    "train_protocol_fast": "pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'solutions.fast' has no attribute {name!r}")
    return getattr(importlib.import_module(f"solutions.fast.{_EXPORTS[name]}"), name)
