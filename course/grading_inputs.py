"""The inputs of the exercise's tasks, built from a seed: the same in the kernel and the grader.

:mod:`course.grading_record` calls the student's functions on these in the grading kernel;
the trusted checks (``autograder.checks``) rebuild them from the same seed to compute the
expected results. Every task's inputs vary with the seed: models of drawn shapes and class
counts, images, data, optimizer settings, and the training run's order and dropout masks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# --------------------------------------------------------------------------- inputs


def meta_model(name: str) -> nn.Module:
    """A torchvision model with its real architecture and no storage (instant to build)."""
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None)


def swap_vgg_head(model: nn.Module, classes: int = 10) -> None:
    """Put a new ``Linear(in, classes)`` at ``classifier[6]``, as task 3 will (meta device)."""
    with torch.device("meta"):
        model.classifier[6] = nn.Linear(model.classifier[6].in_features, classes)


def _draw(generator: torch.Generator, choices: tuple[Any, ...]) -> Any:
    """One of ``choices``, drawn with ``generator``."""
    return choices[int(torch.randint(len(choices), (1,), generator=generator))]


def missing_weights_file(seed: int) -> str:
    """Task 1: a weights path, drawn from the seed, that does not exist."""
    token = f"{seed % 2**64:016x}"
    return f"/no-such-dir-autograder-{token[:6]}/vgg16-{token[6:]}.pth"


#: Tasks 1-2: widths, hidden sizes and class counts a seeded VGG-like model draws from.
CONV_WIDTHS = (8, 16, 24, 32, 48, 64, 96, 128)
HIDDEN_SIZES = (64, 96, 128, 256, 384, 512, 1024)


def vgg_like(seed: int) -> tuple[nn.Module, int]:
    """A seeded VGG-shaped model on the meta device, and the class count task 3 would give it.

    Like torchvision's VGG: ``features`` (2 to 5 blocks of 1 to 3 convolutions, with or
    without BatchNorm, each block ending in max pooling), ``avgpool`` and ``classifier`` =
    ``Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear``, so fc6, fc7 and the head sit at
    ``classifier[0]``, ``[3]`` and ``[6]`` as in VGG16, with drawn sizes.
    """
    generator = torch.Generator().manual_seed(seed)
    config: list[int | str] = []
    for _ in range(int(torch.randint(2, 6, (1,), generator=generator))):
        width = _draw(generator, CONV_WIDTHS)
        config += [width] * int(torch.randint(1, 4, (1,), generator=generator)) + ["M"]
    batch_norm = bool(torch.randint(2, (1,), generator=generator))
    pool = int(torch.randint(1, 8, (1,), generator=generator))
    hidden = (_draw(generator, HIDDEN_SIZES), _draw(generator, HIDDEN_SIZES))
    imagenet_classes = int(torch.randint(20, 1001, (1,), generator=generator))
    classes = int(torch.randint(2, 101, (1,), generator=generator))
    with torch.device("meta"):
        features = torchvision.models.vgg.make_layers(config, batch_norm=batch_norm)
        model = torchvision.models.VGG(features, num_classes=imagenet_classes, init_weights=False)
        model.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        model.classifier = nn.Sequential(
            nn.Linear(int(config[-2]) * pool * pool, hidden[0]),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(hidden[1], imagenet_classes),
        )
    return model, classes


#: Task 2: the two orders tried (task 3's new head after the function, or before it).
FREEZE_ORDERS = ("head_after", "head_before")


def freeze_fixture(seed: int, order: str) -> tuple[nn.Module, int]:
    """Task 2: the VGG-like model ``freeze_and_unfreeze`` gets in ``order``, and its classes.

    ``"head_before"`` has its new head already; ``"head_after"`` gets it after the call.
    """
    model, classes = vgg_like(seed + FREEZE_ORDERS.index(order))
    if order == "head_before":
        swap_vgg_head(model, classes)
    return model, classes


#: Task 3: (family, built for real). Real models get seeded random weights.
HEAD_CASES: tuple[tuple[str, bool], ...] = (
    ("vgg16", False),
    ("resnet18", False),
    ("mobilenet_v3_small", True),
)
#: Task 3: parameters frozen before ``replace_head`` runs; it must leave every flag alone.
HEAD_FROZEN = {
    "vgg16": ("features.",),
    "resnet18": ("conv1.", "bn1.", "layer1."),
    "mobilenet_v3_small": (),
}


def head_classes(family: str, seed: int) -> int:
    """Task 3: the number of classes ``replace_head`` is asked for on ``family`` (2 to 100)."""
    generator = torch.Generator().manual_seed(seed + [f for f, _ in HEAD_CASES].index(family))
    return int(torch.randint(2, 101, (1,), generator=generator))


def head_fixture(family: str, real: bool, seed: int) -> nn.Module:
    """The model task 3's ``replace_head`` receives: seeded weights (or meta), part frozen."""
    if real:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = torchvision.models.get_model(family, weights=None)
    else:
        model = meta_model(family)
    for name, param in model.named_parameters():
        param.requires_grad_(not name.startswith(HEAD_FROZEN[family]))
    return model


#: Task 4: (size, normalization, augment): the lecture's two protocols and a third mix
#: whose size (0 here) is drawn from the seed: see :func:`transform_cases`.
TRANSFORM_CASES: tuple[tuple[int, str, bool], ...] = (
    (224, "imagenet", False),
    (64, "imagenet", True),
    (0, "half", False),
)


def transform_cases(seed: int) -> tuple[tuple[int, str, bool], ...]:
    """Task 4: :data:`TRANSFORM_CASES` with the third size drawn from the seed (33 to 56)."""
    size = 33 + seed % 24
    return tuple((s or size, n, a) for s, n, a in TRANSFORM_CASES)


#: Task 4: how many times the random training crop is drawn per textured image.
CROP_DRAWS = 6


def transform_fixture(seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Task 4: constant-colour and smooth textured uint8 CHW 32x32 images."""
    generator = torch.Generator().manual_seed(seed)
    colour = torch.randint(0, 256, (3,), generator=generator, dtype=torch.uint8)
    constants = [
        torch.full((3, 32, 32), 0, dtype=torch.uint8),
        torch.full((3, 32, 32), 255, dtype=torch.uint8),
        colour.view(3, 1, 1).expand(3, 32, 32).clone(),
    ]
    textures = []
    for _ in range(2):
        coarse = torch.rand(1, 3, 8, 8, generator=generator)
        smooth = nn.functional.interpolate(coarse, size=(32, 32), mode="bicubic")[0]
        noise = 0.03 * torch.randn(3, 32, 32, generator=generator)
        textures.append(((smooth + noise).clamp(0, 1) * 255).round().to(torch.uint8))
    return constants, textures


def optimizer_fixture(seed: int) -> list[tuple[str, nn.Module]]:
    """Task 5: a VGG16 (10-way head) with a seeded random half of its tensors trainable, and
    a ResNet-18 with only layer4 and fc trainable (meta device)."""
    vgg = meta_model("vgg16")
    swap_vgg_head(vgg)
    generator = torch.Generator().manual_seed(seed)
    params = list(vgg.parameters())
    mask = torch.rand(len(params), generator=generator) < 0.5
    mask[-1] = True  # at least one trainable tensor
    for param, trainable in zip(params, mask.tolist(), strict=True):
        param.requires_grad_(trainable)
    resnet = meta_model("resnet18")
    resnet.requires_grad_(False)
    resnet.layer4.requires_grad_(True)
    resnet.fc.requires_grad_(True)
    return [("VGG16, some layers trainable", vgg), ("ResNet-18 (layer4, fc trainable)", resnet)]


def optimizer_args(seed: int) -> dict[str, float]:
    """Task 5: ``lr`` and ``momentum`` drawn from the seed (never the defaults)."""
    generator = torch.Generator().manual_seed(seed)
    lr = round(float(torch.randint(1, 100, (1,), generator=generator)) * 1e-3 + 1e-4, 4)
    momentum = round(float(torch.randint(50, 90, (1,), generator=generator)) / 100 + 0.005, 3)
    return {"lr": lr, "momentum": momentum}


#: Task 6: batch sizes tried (the second one is the whole data set at once).
STATS_BATCHES = (16, 50)


def stats_fixture(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Task 6: 50 small uint8 images whose brightness varies, sorted so minibatches differ.

    6x6 pixels keep the data small enough that dividing by N - 1 instead of N shows.
    """
    generator = torch.Generator().manual_seed(seed)
    n = 50
    brightness = torch.rand(n, 1, 1, 1, generator=generator)
    channel = torch.tensor([0.8, 0.5, 0.3]).view(1, 3, 1, 1)
    noise = torch.rand(n, 3, 6, 6, generator=generator)
    images = (255 * (0.6 * brightness * channel + 0.4 * noise)).round().to(torch.uint8)
    order = images.float().mean(dim=(1, 2, 3)).argsort()
    labels = torch.randint(0, 10, (n,), generator=generator)
    return images[order], labels


#: Task 7: epochs the training loop runs (3 minibatches each: 6 optimizer steps).
TRAIN_EPOCHS = 2
#: Task 7: the optimizer's settings.
TRAIN_LR, TRAIN_MOMENTUM = 0.05, 0.9


class EpochShuffle(torch.utils.data.Sampler[int]):
    """Task 7: a new seeded order each epoch, counted when an epoch's first batch is drawn.

    A plain shuffled loader draws its order when ``iter()`` is called; a progress bar (tqdm)
    calls ``iter()`` once more than it loops, which would change the order and so the
    trained weights. Here ``iter()`` alone changes nothing.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        # A generator: this body runs when the first index is needed, not at iter().
        generator = torch.Generator().manual_seed(self.seed + 7919 * self.epoch)
        self.epoch += 1
        yield from torch.randperm(self.n, generator=generator).tolist()


def training_fixture(
    seed: int,
) -> tuple[nn.Module, torch.optim.Optimizer, DataLoader, DataLoader, TensorDataset]:
    """Task 7: a tiny network, its SGD, and a seeded 4-class toy problem (8x8 colour patterns).

    Everything the loop sees is drawn from the seed: data, initial weights, the shuffle
    order and, under ``torch.manual_seed(training_rng_seed(seed))`` around the call,
    dropout's masks. So a correct loop run here and the reference loop run by the grader end
    with the same weights (float32 on the CPU). The network has BatchNorm and Dropout, so
    skipping ``model.train()`` or evaluating in training mode changes those weights (running
    statistics) or the accuracy; a missing ``zero_grad`` changes every step after the first.
    The evaluation set has 60 examples in batches of 24, 24 and 12, so averaging per-batch
    accuracies shows.
    """
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.rand(4, 3, 8, 8, generator=generator)

    def make(n_per_class: int) -> TensorDataset:
        labels = torch.arange(4).repeat_interleave(n_per_class)
        noise = 1.3 * torch.randn(len(labels), 3, 8, 8, generator=generator)
        return TensorDataset(patterns[labels] + noise, labels)

    train_set, eval_set = make(24), make(15)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(3 * 8 * 8, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(32, 4),
        )
    model.eval()  # as after an evaluation: a loop must call model.train() itself
    optimizer = torch.optim.SGD(model.parameters(), lr=TRAIN_LR, momentum=TRAIN_MOMENTUM)
    train_loader = DataLoader(
        train_set,
        batch_size=32,
        sampler=EpochShuffle(len(train_set), seed + 2),
        generator=torch.Generator().manual_seed(seed + 2),
    )
    eval_loader = DataLoader(
        eval_set, batch_size=24, generator=torch.Generator().manual_seed(seed + 3)
    )
    return model, optimizer, train_loader, eval_loader, train_set


def training_rng_seed(seed: int) -> int:
    """Task 7: the global torch seed set around the call (dropout's masks)."""
    return (seed + 4) % 2**63
