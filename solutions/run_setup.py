"""Setting a run up: what it will run (:class:`RunPlan`), resolved once, and its network.

:func:`plan_run` decides every choice a run makes (protocol, network, weights, input size,
normalization, trainable part, data, device, output folder) and builds the network the plan
names. The running (``solutions.run``) and the reporting (``solutions.run_report``) only read
the plan: nothing is decided twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from course.data import CIFAR10Splits, load_cifar10
from course.errors import CourseError, WeightsError
from course.features import estimate_batchnorm_statistics, resize_normalize
from course.models import (
    WeightsInfo,
    add_weights_note,
    calibrate_batchnorm,
    load_model,
    weights_info_of,
)
from course.training import pick_device
from solutions.lecture_vgg16 import LectureVGG16
from solutions.protocols import LECTURE_BATCH_SIZE, Protocol, normalization_for
from solutions.run_record import TRAINS, describe_run, input_description
from solutions.transfer import (
    FC_LAYERS,
    freeze_backbone,
    lecture_unfreeze,
    replace_head,
    unfreeze,
)

NUM_CLASSES = 10

#: Networks the pretrained protocols run on: the lecture's VGG16, and the offline ImageNet
#: MobileNetV2 (``../shared/data/mobilenet-v2-imagenet``) for machines without VGG16's weights.
ARCHES = ("vgg16", "mobilenet_v2")

#: The network of the protocols that train every layer (``trainable == "all"``): the
#: lecture's own VGG16, whatever ``--arch`` says (its 84.58% was measured on it).
LECTURE_NETWORK = "lecture's VGG16"

#: Where each network's "last block" starts (protocol ``last-block``): VGG16's conv5 block
#: (features[24:], then fc6/fc7 train too), MobileNetV2's last inverted residual and its
#: final 1x1 convolution (features[17:]).
LAST_BLOCK = {"vgg16": 24, "mobilenet_v2": 17}

#: Training images whose statistics BatchNorm layers get (see prepare_batchnorm).
BATCHNORM_IMAGES = 512


@dataclass
class RunOptions:
    """What a run may change about a protocol. ``None`` keeps the protocol's own choice.

    The command line (``python -m solutions run``, ``solutions.fast.ddp``) takes its defaults
    from here.
    """

    epochs: int = 50  # the lecture's
    arch: str = "vgg16"  # the network of the pretrained protocols (see ARCHES)
    subset: int | None = None  # images per class in each split; None = the full splits
    size: int | None = None  # override the input size (the demo uses 64 px on the CPU)
    device: str = "auto"
    weights: str | None = None  # "imagenet", "random", "auto" or a file; None = protocol's
    data: str | None = None  # a CIFAR-10 source, "synthetic", or None to search
    allow_synthetic: bool = False  # fall back to synthetic data when no CIFAR-10 is found
    batch_size: int = LECTURE_BATCH_SIZE  # also bounds memory (cache build and evaluation)
    num_workers: int = 0
    seed: int = 123  # the lecture's
    out: Path = Path("runs")
    fast: bool = False  # solutions.fast: cached features when exact, device-held data always
    compile: bool = False  # torch.compile the trained network (fast path; pays off on a GPU)
    progress: bool = True
    checkpoint: bool = False  # VGG16 checkpoints are ~0.5 GB each: opt in
    cut: str | None = None  # fast path: cache the input of this module (share caches)
    quiet_table: bool = False  # skip the table beside the lecture's figures (the demo)


@dataclass(frozen=True)
class Normalization:
    """The normalization a run feeds its network with: a name, mean and std."""

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass
class RunPlan:
    """Every choice of one run, resolved once by :func:`plan_run`."""

    protocol: Protocol
    options: RunOptions
    network: str  # "vgg16", "mobilenet_v2" or LECTURE_NETWORK
    size: int
    normalization: Normalization
    splits: CIFAR10Splits
    device: torch.device
    run_dir: Path
    weights: WeightsInfo = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def augment(self) -> bool:
        """Random crops in training (the protocol's choice)."""
        return self.protocol.augment

    @property
    def trained(self) -> str:
        """What trains, in the words of the table beside the lecture's."""
        return TRAINS[self.protocol.trainable]

    @property
    def input(self) -> str:
        """How the 32-px images reach the network, e.g. ``"Resize 96, no augmentation"``."""
        return input_description(self.size, self.augment)

    @property
    def description(self) -> str:
        """One sentence: what this run trains, on which network, at which size and input."""
        return describe_run(
            self.protocol.name,
            self.network,
            self.protocol.trainable,
            self.size,
            self.augment,
            self.normalization.name,
        )

    @property
    def headline(self) -> str:
        """``"run <protocol> (<network>, <size> px)"``: the first words of the first line."""
        return f"run {self.protocol.name} ({self.network}, {self.size} px)"


def resolve_weights(protocol: Protocol, requested: str | None) -> str:
    """The weights a run uses: the protocol's, unless asked otherwise.

    ``"auto"`` takes ImageNet weights when torchvision's cache already holds
    them and random weights otherwise, so a demo never needs the network.
    """
    if not protocol.pretrained:
        if requested not in (None, "random", "auto"):
            raise ValueError(f"The {protocol.name!r} protocol trains from random init by design.")
        return "random"
    return requested or "imagenet"


def network_for(protocol: Protocol, arch: str) -> str:
    """The network a protocol runs on: the lecture's own VGG16 for ``all``, else ``arch``."""
    return LECTURE_NETWORK if protocol.trainable == "all" else arch


def _load(arch: str, weights: str) -> nn.Module:
    if weights != "auto":
        return load_model(arch, weights)
    try:
        return load_model(arch, "imagenet", offline=True)
    except WeightsError:
        return load_model(arch, "random")


def prepare_model(protocol: Protocol, weights: str, arch: str = "vgg16") -> nn.Module:
    """The protocol's network with a 10-way head and exactly its parameters trainable.

    ``scratch`` is the lecture's own VGG16 (``solutions.lecture_vgg16``) whatever ``arch``
    says: that is the network its 84.58% was measured on.

    Raises:
        CourseError: ``arch`` is unknown, or the protocol names layers ``arch`` lacks.
    """
    if network_for(protocol, arch) == LECTURE_NETWORK:
        return LectureVGG16(NUM_CLASSES)
    if arch not in ARCHES:
        raise CourseError(
            f"Unknown network {arch!r} for the pretrained protocols.",
            f"Use one of: {', '.join(ARCHES)}.",
        )
    if arch != "vgg16" and protocol.trainable in ("lecture-bug", "fc"):
        raise CourseError(
            f"The {protocol.name!r} protocol trains VGG16's fc6 and fc7; {arch} has no such "
            "layers.",
            f"Run it with --arch vgg16, or run linear-probe or last-block on {arch}.",
        )
    model = _load(arch, weights)
    if protocol.trainable == "lecture-bug":
        return lecture_unfreeze(model)  # freezes, replaces the head, then the lecture's no-op
    freeze_backbone(model)
    replace_head(model, NUM_CLASSES)  # the new head is created trainable
    if protocol.trainable in ("fc", "last-block") and arch == "vgg16":
        unfreeze(model, FC_LAYERS)
    if protocol.trainable == "last-block":
        model.features[LAST_BLOCK[arch] :].requires_grad_(True)
    return model


def prepare_batchnorm(
    model: nn.Module,
    protocol: Protocol,
    splits: CIFAR10Splits,
    size: int,
    batch_size: int,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
) -> None:
    """Give BatchNorm layers statistics that mean something, and say so in the weights' notes.

    - Random weights (a random MobileNetV2 as the baseline of a probe): torchvision's init
      leaves mean 0 / variance 1, which normalize nothing, so features would be near-constant;
      the statistics are measured on training images (``estimate_batchnorm_statistics``).
    - Pretrained weights whose BatchNorm trains (``last-block`` on the offline MobileNetV2,
      whose BatchNorm is folded): train mode would normalize with batch statistics unlike the
      stored ones and wreck the features, so they are re-calibrated first, keeping what the
      network computes in eval mode (``course.models.calibrate_batchnorm``).
    Networks without BatchNorm (VGG16) are left alone. ``normalization``: ``(mean, std)`` the
    run feeds the network with (``None``: ``normalization_for(protocol, model)``).
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers or protocol.trainable == "all":
        return
    if normalization is None:
        _, mean, std = normalization_for(protocol, model)
    else:
        mean, std = normalization
    images = splits.train.images[:BATCHNORM_IMAGES]
    info = weights_info_of(model)
    if info is not None and info.random:
        estimate_batchnorm_statistics(
            model, images, size=size, mean=mean, std=std, batch_size=batch_size
        )
        add_weights_note(model, f"BatchNorm statistics from {len(images)} training images")
    elif any(p.requires_grad for m in layers for p in m.parameters()):
        batches = [
            resize_normalize(images[lo : lo + batch_size], size, mean, std)
            for lo in range(0, len(images), batch_size)
        ]
        # Only the layers that will train need train-mode statistics. calibrate_batchnorm
        # keeps each layer's eval function, so the frozen ones get their exact tensors back:
        # the frozen prefix, and so its feature cache, stays the linear probe's.
        frozen = {
            m: {k: v.clone() for k, v in m.state_dict().items()}
            for m in layers
            if not any(p.requires_grad for p in m.parameters())
        }
        calibrate_batchnorm(model, batches)
        for layer, state in frozen.items():
            layer.load_state_dict(state)
        if info is not None:
            add_weights_note(
                model,
                f"BatchNorm re-calibrated on {len(images)} training images before "
                "fine-tuning (eval outputs unchanged)",
            )


def slug(text: str) -> str:
    """``text`` as a folder-name part: lower case, runs of other characters as ``-``."""
    text = text.lower().replace("'s ", " ")  # "lecture's VGG16" -> "lecture-vgg16"
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def plan_run(
    protocol: Protocol,
    options: RunOptions | None = None,
    splits: CIFAR10Splits | None = None,
    *,
    device: torch.device | None = None,
) -> tuple[RunPlan, nn.Module]:
    """Resolve every choice of a run and build its network; return ``(plan, model)``.

    Loads the data unless ``splits`` is given (the demo loads it once for two runs), seeds
    the random init, sets the protocol's trainable part, prepares BatchNorm
    (:func:`prepare_batchnorm`) and fixes the normalization the network is fed with: the
    protocol's, or the pretrained weights' own (``solutions.protocols.normalization_for``).
    """
    options = options or RunOptions()
    size = options.size or protocol.size
    network = network_for(protocol, options.arch)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(options.out) / f"{protocol.name}-{slug(network)}-{stamp}"
    splits = splits or load_cifar10(
        options.data,
        subset=options.subset,
        seed=options.seed,
        allow_synthetic=options.allow_synthetic,
    )
    torch.manual_seed(options.seed)  # random init (head, or all of VGG16) is seeded too
    model = prepare_model(protocol, resolve_weights(protocol, options.weights), options.arch)
    name, mean, std = normalization_for(protocol, model)
    normalization = Normalization(name, tuple(mean), tuple(std))
    prepare_batchnorm(model, protocol, splits, size, options.batch_size, (mean, std))
    info = weights_info_of(model)
    plan = RunPlan(
        protocol=protocol,
        options=options,
        network=network,
        size=size,
        normalization=normalization,
        splits=splits,
        device=device or pick_device(options.device),
        run_dir=run_dir,
        weights=info,  # type: ignore[arg-type]
    )
    return plan, model
