"""Images kept as uint8 on the device, resized, cropped and normalized there in whole batches.

The lecture's input pipeline decodes, resizes and normalizes one image at a time in
DataLoader workers, then copies float32 batches to the GPU. Here the 32x32 uint8 images
(45,000 of them are 138 MB) are copied to the device once; every batch is then gathered,
resized, cropped and normalized on the device with the same torchvision functions the
per-image transforms use, so the semantics match ``solutions.transfer.build_transforms``:

- eval, no augmentation: ``Resize(size)`` -> ``ToDtype(float32, scale=True)`` -> ``Normalize``
- eval, augmented protocol: ``Resize(size + 6)`` -> ``CenterCrop(size)`` -> ...
- train, augmented protocol: ``Resize(size + 6)`` -> ``RandomCrop(size)`` per image -> ...

Random crops draw one ``(top, left)`` pair per image, uniform over the ``pad + 1`` positions
on each side as ``RandomCrop`` does, from a CPU generator seeded once per epoch (one host to
device copy per epoch, none per step). The stream of random numbers differs from
torchvision's per-image calls; the distribution of crops is the same.

On CUDA, torchvision resizes uint8 images through float32 and rounds back (there is no native
uint8 kernel there), so pixels can differ by one level from the CPU's uint8 kernel: the same
as the per-image transform would give on that device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import RandomSampler
from torchvision.transforms.v2 import functional as F

# Resize(size + CROP_PAD) then a size x size crop: the lecture's 70 -> 64 px protocol.
from solutions.protocols import CROP_PAD  # noqa: E402


class BatchTransform:
    """The lecture's per-image transform, applied to a uint8 batch ``(N, 3, H, W)`` at once.

    Args:
        size: output side in pixels.
        mean: per-channel mean for ``Normalize``.
        std: per-channel std for ``Normalize``.
        augment: the augmented protocol (resize to ``size + 6``, then crop ``size``).
        train: with ``augment``, crop at random (training); otherwise crop at the centre.
        channels_last: return the batch in ``channels_last`` memory format (faster convs).
        dtype: floating dtype of the output.
    """

    def __init__(
        self,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        augment: bool = False,
        train: bool = False,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.size = size
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.augment = augment
        self.train = train
        self.channels_last = channels_last
        self.dtype = dtype

    @property
    def random(self) -> bool:
        """True when each call needs crop offsets (an augmented training transform)."""
        return self.augment and self.train

    @property
    def resize_to(self) -> int:
        """Side of the image after ``Resize`` and before any crop."""
        return self.size + CROP_PAD if self.augment else self.size

    def draw_offsets(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draw ``n`` crop positions ``(top, left)``, each uniform in ``0..pad`` like RandomCrop."""
        span = self.resize_to - self.size + 1
        return torch.randint(0, span, (n, 2), generator=generator)

    def __call__(self, images: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """Transform a uint8 batch; ``offsets`` (N, 2) are required when :attr:`random`."""
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"expected a uint8 (N, 3, H, W) batch, got {images.dtype} {images.shape}"
            )
        side = self.resize_to
        if images.shape[-2:] != (side, side):
            images = F.resize(images, [side, side], antialias=True)
        if self.augment:
            if self.random:
                if offsets is None:
                    raise ValueError("a random-crop transform needs offsets (see draw_offsets)")
                images = crop_each(images, offsets.to(images.device), self.size)
            else:
                images = F.center_crop(images, [self.size, self.size])
        out = F.normalize(F.to_dtype(images, torch.float32, scale=True), self.mean, self.std)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out.to(self.dtype)


def crop_each(images: torch.Tensor, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Crop image ``i`` of the batch at ``offsets[i] = (top, left)``, all in one gather.

    Equal to ``torch.stack([F.crop(img, t, l, size, size) for img, (t, l) in ...])`` without
    the Python loop: one advanced-indexing kernel on the device.
    """
    n, channels = images.shape[:2]
    steps = torch.arange(size, device=images.device)
    rows = (offsets[:, 0:1] + steps)[:, None, :, None]  # (N, 1, size, 1)
    cols = (offsets[:, 1:2] + steps)[:, None, None, :]  # (N, 1, 1, size)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    chan = torch.arange(channels, device=images.device)[None, :, None, None]
    return images[batch, chan, rows, cols]


class TensorLoader:
    """Batches ``(inputs, labels)`` gathered from tensors already in memory or on the device.

    A drop-in for a ``DataLoader`` in ``course.training.train``: it yields ``(inputs, labels)``,
    has ``len()`` and exposes its seeded ``generator`` so checkpoints resume the same shuffle.

    Args:
        inputs: ``(N, ...)`` uint8 images (with ``transform``) or precomputed features; may be a
            memory-mapped CPU tensor, or live on the device already.
        labels: ``(N,)`` int64.
        batch_size: the global batch size (summed over all ranks under DDP).
        shuffle: draw a new permutation every epoch.
        seed: seeds the permutation and the crop offsets.
        transform: a :class:`BatchTransform` for uint8 images; ``None`` for features.
        device: where batches go; defaults to where ``inputs`` live.
        rank: under DDP, this rank gets its share of every global batch. All ranks draw the
            same permutation and offsets, so the union of their batches is exactly the
            single-process batch.
        world_size: the number of DDP ranks (1 without DDP).
        float_dtype: floating inputs (e.g. a bf16 feature cache) are cast to this per batch.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 123,
        transform: BatchTransform | None = None,
        device: torch.device | str | None = None,
        rank: int = 0,
        world_size: int = 1,
        float_dtype: torch.dtype = torch.float32,
    ) -> None:
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.inputs = inputs
        self.device = torch.device(device) if device is not None else inputs.device
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.rank = rank
        self.world_size = world_size
        self.float_dtype = float_dtype
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def num_samples(self) -> int:
        """Images per epoch, over all ranks."""
        return len(self.labels)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.num_samples
        order, epoch_seed = epoch_order(n, self.generator, shuffle=self.shuffle)
        offsets = None
        if self.transform is not None and self.transform.random:
            # Crops come from their own stream, seeded per epoch, so the shuffle stream stays
            # the DataLoader's (one --seed, one shuffle on both paths).
            crops = torch.Generator().manual_seed(epoch_seed)
            offsets = self.transform.draw_offsets(n, crops).to(self.device)
        order_dev = order.to(self.device)
        order_src = order if self.inputs.device.type == "cpu" else order.to(self.inputs.device)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            # This rank's share of the global batch: contiguous, sizes differ by at most one.
            lo, hi = _share(start, stop, self.rank, self.world_size)
            idx_src = order_src[lo:hi]
            batch = self.inputs.index_select(0, idx_src).to(self.device, non_blocking=True)
            labels = self.labels.index_select(0, order_dev[lo:hi])
            if self.transform is not None:
                batch = self.transform(batch, None if offsets is None else offsets[lo:hi])
            elif batch.is_floating_point() and batch.dtype != self.float_dtype:
                batch = batch.to(self.float_dtype)
            yield batch, labels


def epoch_order(n: int, generator: torch.Generator, *, shuffle: bool) -> tuple[torch.Tensor, int]:
    """One epoch's order of ``n`` samples, drawn exactly as a seeded ``DataLoader`` draws it.

    A ``DataLoader(..., shuffle=True, generator=g)`` first draws a 64-bit base seed from ``g``
    (for its workers), then its ``RandomSampler`` draws the permutation(s) from ``g``. Doing
    the same, with torch's own ``RandomSampler``, makes ``TensorLoader`` and
    ``course.data.make_loaders`` (the plain path) give the same batches for the same seed.
    Drawn on the CPU once per epoch, then copied to the device once: no host synchronization
    inside the step, and the stream does not depend on the device.

    Returns:
        ``(order, epoch_seed)``: the indices, and the base seed (used to seed random crops).
    """
    epoch_seed = int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())
    if not shuffle:
        return torch.arange(n), epoch_seed
    order = list(RandomSampler(range(n), generator=generator))  # the sampler's every draw
    return torch.tensor(order, dtype=torch.int64), epoch_seed


def _share(start: int, stop: int, rank: int, world_size: int) -> tuple[int, int]:
    """Bounds of ``rank``'s contiguous share of ``range(start, stop)``, like tensor_split."""
    n = stop - start
    base, extra = divmod(n, world_size)
    lo = start + rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)
