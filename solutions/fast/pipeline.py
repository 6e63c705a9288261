"""One call that trains a protocol the fast way: cached features when exact, device data always."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import replace

import torch
import torch.distributed as dist
from torch import nn

from course.data import CIFAR10Splits
from course.feature_cache import SPLITS, cache_splits
from course.model_split import SplitModel, split_model
from course.training import History, TrainConfig, pick_device, train
from solutions.fast.gpu_data import BatchTransform, TensorLoader
from solutions.protocols import LECTURE_BATCH_SIZE, Protocol, normalization_for
from solutions.transfer import make_optimizer


def train_protocol_fast(
    protocol: Protocol,
    splits: CIFAR10Splits,
    model: nn.Module,
    config: TrainConfig,
    *,
    size: int | None = None,
    cache: bool = True,
    cache_dtype: str = "bfloat16",
    eval_batch_size: int | None = None,
    compile: bool = False,
    cut: str | None = None,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    normalization_name: str | None = None,
) -> tuple[History, nn.Module]:
    """Train ``model`` as ``protocol`` says, the fast way, and return ``(history, model)``.

    ``model`` must already be set up for the protocol (head replaced, the right parameters
    trainable; see ``solutions.run_setup.prepare_model``). It is trained in place: the returned
    model is the same object, usable with ordinary image loaders afterwards.

    - Cacheable protocol (frozen backbone, no random augmentation) and ``cache``: the frozen
      prefix runs once per split (see :mod:`course.features`), and the training loop
      (``course.training.train``, unchanged) trains only the tail on the cached features.
    - Otherwise (``lecture-small``, ``scratch``, or ``cache=False``): the uint8 images are held
      on the device and resized, cropped and normalized there per batch
      (:mod:`solutions.fast.gpu_data`); the full model trains, ``channels_last`` on CUDA.

    Under ``torchrun`` (a process group is initialized, see :mod:`solutions.fast.ddp`) the
    trained network is wrapped in DistributedDataParallel and each rank takes its share of
    every global batch of ``config.batch_size`` images.

    Args:
        size: input side in pixels; ``None`` keeps the protocol's.
        cache: allow feature caching where it is exact.
        cache_dtype: ``"bfloat16"``, ``"float16"`` or ``"float32"`` (the same training as
            without the cache, up to float rounding; the tests use it).
        eval_batch_size: batch size for validation and test; ``None``: ``config.batch_size``.
            Memory follows the batch size everywhere (the cache build uses it too), so
            ``--batch-size`` bounds the peak; a larger evaluation batch gains little on a CPU.
        compile: ``torch.compile`` the trained network (CUDA; the first epoch pays for it).
        cut: cache the input of this module (``course.features.split_model``'s ``at``)
            instead of the deepest exact point, so runs with different tails share a cache.
        normalization: ``(mean, std)`` the run feeds the network with, resolved once by the
            caller (``solutions.run_setup.plan_run``); ``None``: ``normalization_for``.
        normalization_name: its name (part of the feature cache's key).
    """
    size = size or protocol.size
    if config.batch_size is None:
        config = replace(config, batch_size=LECTURE_BATCH_SIZE)
    eval_batch_size = eval_batch_size or config.batch_size
    device = pick_device(config.device)
    rank, world = _rank_world()
    model.to(device)
    if normalization is None:
        norm = normalization_for(protocol, model)
    else:
        norm = (normalization_name or "given", *normalization)
    optimizer = make_optimizer(
        model,
        lr=config.lr if config.lr is not None else TrainConfig.lr,
        momentum=config.momentum or 0.0,
        weight_decay=config.weight_decay or 0.0,
    )
    parts = (
        _cacheable_part(model, cut, config.verbose and rank == 0)
        if cache and protocol.cacheable
        else None
    )
    if parts is not None:
        loaders = feature_loaders(
            parts,
            splits,
            protocol,
            size,
            config,
            device,
            cache_dtype,
            eval_batch_size,
            model,
            norm=norm,
        )
        net: nn.Module = parts.tail
    else:
        loaders = image_loaders(
            splits, protocol, size, config, device, eval_batch_size, model, norm=norm
        )
        net = model
        if device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
        if rank != 0:
            # One rank speaks and writes checkpoints; the others compute the same numbers.
            config = replace(config, verbose=False, progress=False, checkpoint_dir=None)
    if compile:
        net = torch.compile(net)
    history = train(net, optimizer, loaders, config)
    return history, model


def _cacheable_part(model: nn.Module, cut: str | None, verbose: bool) -> SplitModel | None:
    """``split_model(model, cut)``, or ``None`` with a note when the model cannot be cut."""
    try:
        return split_model(model, cut)
    except ValueError as err:
        if verbose:
            print(f"No feature cache: {err}")
        return None


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextlib.contextmanager
def _rank_zero_first() -> Iterator[None]:
    """Rank 0 builds the feature cache; the other ranks wait, then map the same files."""
    rank, world = _rank_world()
    if world > 1 and rank != 0:
        dist.barrier()
    yield
    if world > 1 and rank == 0:
        dist.barrier()


def feature_loaders(
    parts: SplitModel,
    splits: CIFAR10Splits,
    protocol: Protocol,
    size: int,
    config: TrainConfig,
    device: torch.device,
    cache_dtype: str = "bfloat16",
    eval_batch_size: int | None = None,
    model: nn.Module | None = None,
    *,
    norm: tuple[str, Sequence[float], Sequence[float]] | None = None,
) -> dict[str, TensorLoader]:
    """Loaders over the cached prefix output of each split (built on first use).

    The build runs in batches of ``config.batch_size``. ``norm``: ``(name, mean, std)`` as
    resolved by the caller; ``None``: ``model`` (the whole network) tells which normalization
    its weights expect (see ``solutions.protocols.normalization_for``).
    """
    rank, world = _rank_world()
    batch_size = config.batch_size or LECTURE_BATCH_SIZE
    eval_batch_size = eval_batch_size or batch_size
    norm_name, mean, std = norm or normalization_for(protocol, model)
    caches = cache_splits(
        parts.prefix,
        splits,
        size=size,
        normalization=norm_name,
        mean=mean,
        std=std,
        dtype=cache_dtype,
        device=device,
        batch_size=batch_size,
        bf16_autocast=config.bf16,
        guard=_rank_zero_first,
    )
    loaders = {}
    for name, cached in caches.items():
        features = cached.features
        if device.type == "cuda":
            # 45,000 x 25,088 bf16 is 2.3 GB: it fits on the GPU, so no copy per step.
            features = features.to(device)
        train_split = name == "train"
        loaders[name] = TensorLoader(
            features,
            cached.labels,
            batch_size=batch_size if train_split else eval_batch_size,
            shuffle=train_split,
            seed=config.seed,
            device=device,
            rank=rank if train_split else 0,
            world_size=world if train_split else 1,
        )
    return loaders


def image_loaders(
    splits: CIFAR10Splits,
    protocol: Protocol,
    size: int,
    config: TrainConfig,
    device: torch.device,
    eval_batch_size: int | None = None,
    model: nn.Module | None = None,
    *,
    norm: tuple[str, Sequence[float], Sequence[float]] | None = None,
) -> dict[str, TensorLoader]:
    """Loaders over uint8 images held on ``device``, transformed there per batch.

    ``norm``: ``(name, mean, std)`` as resolved by the caller; ``None``: from ``model``.
    """
    rank, world = _rank_world()
    batch_size = config.batch_size or LECTURE_BATCH_SIZE
    eval_batch_size = eval_batch_size or batch_size
    _, mean, std = norm or normalization_for(protocol, model)
    channels_last = device.type == "cuda"
    loaders = {}
    for name in SPLITS:
        split = getattr(splits, name)
        train_split = name == "train"
        transform = BatchTransform(
            size,
            mean,
            std,
            augment=protocol.augment,
            train=train_split,
            channels_last=channels_last,
        )
        loaders[name] = TensorLoader(
            split.images.to(device),
            split.labels,
            batch_size=batch_size if train_split else eval_batch_size,
            shuffle=train_split,
            seed=config.seed,
            transform=transform,
            device=device,
            rank=rank if train_split else 0,
            world_size=world if train_split else 1,
        )
    return loaders
