"""The CIFAR-10 splits served to a model: a ``Dataset`` with a transform, and the three loaders.

Part of :mod:`course.data`, which re-exports both names (import them from there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, Dataset

if TYPE_CHECKING:
    from course.data import CIFAR10Splits, ImageSplit


class TransformedImages(Dataset):
    """A split as a ``Dataset`` of ``(transform(image), label)`` pairs.

    Args:
        split: the images (uint8 CHW) and labels.
        transform: applied to each uint8 ``(3, 32, 32)`` tensor; ``None`` returns it as is.
    """

    def __init__(
        self, split: ImageSplit, transform: Callable[[torch.Tensor], object] | None = None
    ) -> None:
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[object, int]:
        image = self.split.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.split.labels[index])


def make_loaders(
    splits: CIFAR10Splits,
    train_transform: Callable[[torch.Tensor], object] | None,
    eval_transform: Callable[[torch.Tensor], object] | None,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    seed: int = 123,
) -> dict[str, DataLoader]:
    """Wrap the splits in ``DataLoader`` objects: ``"train"``, ``"valid"`` and ``"test"``.

    The training loader reshuffles every epoch from a generator seeded with ``seed``, so two
    runs with the same seed see the same batches in the same order. Validation and test
    loaders keep their order and use ``eval_transform``.
    """
    common = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "pin_memory": torch.cuda.is_available(),
        "persistent_workers": num_workers > 0,
    }
    loaders = {}
    for offset, (name, split, transform) in enumerate(
        [
            ("train", splits.train, train_transform),
            ("valid", splits.valid, eval_transform),
            ("test", splits.test, eval_transform),
        ]
    ):
        # Workers seed their own RNGs from the loader's generator: seeding every loader
        # makes random transforms in worker processes repeatable too.
        generator = torch.Generator().manual_seed(seed + offset)
        loaders[name] = DataLoader(
            TransformedImages(split, transform),
            shuffle=name == "train",
            generator=generator,
            **common,
        )
    return loaders
