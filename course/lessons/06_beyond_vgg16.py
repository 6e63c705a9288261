# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 6: Beyond VGG16
#
# VGG16 is from 2014. The lecture ends by pointing at newer backbones, and at
# the question every fine-tuning run faces: how much of the network to train.
# In this lesson you will:
#
# - compare torchvision backbones by parameters, compute, expected input size
#   and where their head lives;
# - see which of them accept CIFAR-10's 32-pixel images as they are;
# - give earlier layers smaller learning rates with optimizer parameter groups;
# - measure, on a pretrained network, how many layers it pays to train: the
#   head only, the last blocks, or everything, on the same budget;
# - decide when to compute your own normalization statistics.

# %% tags=["parameters"]
# None follows the COURSE_QUICK environment variable; True forces quick mode
# (laptop: CPU, small CIFAR-10 subsets, cached features), False the real mode.
QUICK = None

# %%
# %matplotlib inline
import copy
import os
import time

import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from course.data import CLASSES, load_cifar10, make_loaders
from course.doctor import print_summary, require_real
from course.errors import WeightsError
from course.features import cached_loaders, split_model
from course.models import build_on_meta, load_model, trainable_parameters
from course.paths import env_flag
from course.plots import plot_comparison
from course.quick import banner, data_label, machine_label, quick_mode, run_label
from course.reporting import compare
from course.training import TrainConfig, train

QUICK = quick_mode(QUICK)
SMALL = QUICK and env_flag("COURSE_TEST")  # the tests' smallest subsets
VGG_WEIGHTS = "random" if QUICK else "imagenet"  # VGG16 only shows structure here
MACHINE = machine_label()
torch.manual_seed(123)
print(banner(QUICK))
DIAGNOSIS = print_summary("06")  # what this lesson uses, and the fix for what is missing

# %% [markdown]
# ## The backbones side by side
#
# Parameters, compute and head location are properties of the architecture,
# not of the weights. So, as in lesson 3, we build every model on the `meta`
# device (shapes, no values) and count there; this takes a second even for
# ViT. `FlopCounterMode` counts the floating-point operations of one forward
# pass; one multiply-add (MAC) is two of them.
#
# The expected input size comes from each model's ImageNet weights entry:
# torchvision resizes to `resize` and then crops `crop` pixels.

# %%
BACKBONES = {
    "VGG": "vgg16",
    "ResNet": "resnet50",
    "ResNeXt": "resnext50_32x4d",
    "Wide ResNet": "wide_resnet50_2",
    "DenseNet": "densenet121",
    "MobileNetV3": "mobilenet_v3_large",
    "Inception": "inception_v3",
    "ConvNeXt": "convnext_tiny",
    "ViT": "vit_b_16",
}



def gmacs(model: nn.Module, side: int) -> float:
    """Billions of multiply-adds for one image of `side` x `side` pixels."""
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, side, side, device="meta"))
    return counter.get_total_flops() / 2 / 1e9


def head_name(model: nn.Module) -> str:
    """The name of the last Linear layer with 1,000 outputs (the ImageNet head)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == 1000][-1]


print(f"{'family':<12} {'model':<19} {'params':>8} {'GMACs':>7} {'crop':>5} {'resize':>7}  head")
rows = {}
for family, name in BACKBONES.items():
    net = build_on_meta(name).eval()
    preset = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    crop = preset.crop_size[0]
    rows[name] = net
    print(f"{family:<12} {name:<19} {sum(p.numel() for p in net.parameters()) / 1e6:>7.1f}M "
          f"{gmacs(net, crop):>7.2f} {crop:>5} {preset.resize_size[0]:>7}  {head_name(net)}")

# %% [markdown]
# Reading the table:
#
# - VGG16 is the largest in parameters (138 M) and among the most expensive
#   (15.5 GMACs), yet MobileNetV3 does the same job with 5.5 M parameters
#   and 0.22 GMACs, 70 times less compute.
# - The crop column is the size torchvision *evaluates* each set of weights at:
#   224 pixels for most, 299 for Inception v3. It is not always the size they
#   were trained at: torchvision's newer `IMAGENET1K_V2` recipes may train on
#   smaller crops than they are evaluated at (ResNet-50's trains on 176-pixel
#   crops and is evaluated at 224, which tests better); each weights entry
#   links its recipe in `weights.meta["recipe"]`. Feeding the evaluation size
#   and preprocessing of `weights.transforms()` is part of "using the
#   pretrained weights as they were meant".
# - ResNet, ResNeXt and Wide ResNet share one design (and the head name `fc`):
#   ResNeXt splits its 3x3 convolutions into 32 groups, Wide ResNet doubles their
#   width.
#
# How accurate are they on ImageNet? torchvision publishes its own figures with
# the weights; they are quoted here, not measured by this course:

# %%
for family, name in BACKBONES.items():
    weights = torchvision.models.get_model_weights(name).DEFAULT
    top1 = weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    print(f"{family:<12} {str(weights):<42} ImageNet top-1 {top1:5.2f}% (published by torchvision)")

# %% [markdown]
# ## Which backbones accept 32-pixel images?
#
# VGG16 runs on 32-pixel images thanks to its adaptive pool (lesson 1). Not
# every architecture does. Let us try each at 32 and 64 pixels, still on the
# `meta` device, where a shape error shows up just as it would with real
# weights:

# %%
def try_size(model: nn.Module, side: int) -> str:
    """'ok' with the output shape, or the first line of the error a real run would raise."""
    try:
        with torch.no_grad():
            out = model(torch.empty(2, 3, side, side, device="meta"))
        return f"ok, output {tuple(out.shape)}"
    except (RuntimeError, ValueError, AssertionError) as error:
        return f"fails: {type(error).__name__}: {str(error).strip().splitlines()[0][:130]}"


for name, net in rows.items():
    print(name)
    for side in (32, 64):
        print(f"    {side} px: {try_size(net, side)}")

# %% [markdown]
# - The convolutional networks with a global (adaptive) pool run at any size
#   large enough to survive their downsampling. Their last feature map at
#   32 px is 1x1, though: the same loss of spatial detail as VGG16's (lesson 1).
# - Inception v3 needs at least 75 pixels: its early convolutions and pools
#   shrink a 32-pixel image to nothing.
# - ViT cuts the image into 16x16 patches and learned one position embedding
#   per patch of a 224-pixel image; any other size is refused.
#
# So for CIFAR-10, resizing up is not only about accuracy: for some backbones it
# is the only way in.
#
# ## How many layers to fine-tune?
#
# Three common answers, from cheapest to most flexible:
#
# 1. **Head only** (a linear probe): fast, and the features stay ImageNet's. It
#    can still overfit a small training set: lesson 5's probe fits its training
#    images much better than its validation images (its accuracy curves).
# 2. **The fully connected layers** (fc6 + fc7 + head for VGG16): the
#    classifier adapts; the convolutional features stay fixed and can be cached
#    (lesson 5).
# 3. **Everything**, with smaller learning rates for earlier layers: early
#    layers detect edges and textures that transfer to almost any image; late
#    layers are specific to ImageNet's classes and need to change more.
#
# The more data you have, and the further it is from ImageNet, the further down
# this list it pays to go. For VGG16 with a 10-way head, the trainable counts are:

# %%
model = load_model("vgg16", weights=VGG_WEIGHTS)
model.classifier[6] = nn.Linear(4096, 10)
print("weights:", model.weights_label, "(counts and shapes do not depend on them)")


def set_trainable(model: nn.Module, choice: str) -> nn.Module:
    """Freeze everything, then unfreeze what `choice` names: head, fc or all."""
    model.requires_grad_(choice == "all")
    if choice in ("head", "fc"):
        model.classifier[6].requires_grad_(True)
    if choice == "fc":
        model.classifier[0].requires_grad_(True)
        model.classifier[3].requires_grad_(True)
    return model


for choice in ("head", "fc", "all"):
    print(f"{choice:<5} {trainable_parameters(set_trainable(model, choice)):>12,} trainable parameters")

# %% [markdown]
# ## Discriminative learning rates
#
# For option 3, an optimizer accepts *parameter groups*: lists of parameters,
# each with its own settings. We give VGG16's head the lecture's learning rate,
# the two hidden fully connected layers a tenth of it, and the five
# convolutional groups halving rates from the top down.

# %%
BASE_LR = 0.01


def conv_groups(features: nn.Sequential) -> list[list[nn.Parameter]]:
    """The parameters of VGG16's five convolutional groups (each ends in a max-pool)."""
    groups, current = [], []
    for layer in features:
        current.extend(layer.parameters())
        if isinstance(layer, nn.MaxPool2d):
            groups.append(current)
            current = []
    return groups


set_trainable(model, "all")
param_groups = [
    {"name": "head", "params": list(model.classifier[6].parameters()), "lr": BASE_LR},
    {"name": "fc6 + fc7",
     "params": [*model.classifier[0].parameters(), *model.classifier[3].parameters()],
     "lr": BASE_LR / 10},
]
for depth, params in enumerate(reversed(conv_groups(model.features))):
    param_groups.append(
        {"name": f"conv group {5 - depth}", "params": params, "lr": BASE_LR / 100 / 2**depth}
    )
optimizer = torch.optim.SGD(param_groups, momentum=0.9)

print(f"{'group':<14} {'tensors':>7} {'parameters':>12} {'lr':>10}")
for group in optimizer.param_groups:
    count = sum(p.numel() for p in group["params"])
    print(f"{group['name']:<14} {len(group['params']):>7} {count:>12,} {group['lr']:>10.2e}")
in_groups = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
print(f"every trainable parameter in exactly one group: {in_groups == trainable_parameters(model)}")

# %% [markdown]
# Extra keys such as `"name"` are kept in the group, which makes such tables
# easy. A scheduler like the lecture's `ReduceLROnPlateau` multiplies every
# group's rate by the same factor, so the ratios between groups survive. One
# step shows the rates at work: the first SGD step moves each weight by
# `lr * gradient`, so the earliest group moves least.

# %%
model.train()
loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.randint(0, 10, (4,)))
before = {g["name"]: [p.detach().clone() for p in g["params"]] for g in optimizer.param_groups}
optimizer.zero_grad()
loss.backward()
optimizer.step()
print(f"weights: {model.weights_label}; random inputs and labels (only the ratios matter)")
for group in optimizer.param_groups:
    pairs = zip(group["params"], before[group["name"]], strict=True)
    moved = sum((p - b).norm() ** 2 for p, b in pairs) ** 0.5
    grads = sum(p.grad.norm() ** 2 for p in group["params"]) ** 0.5
    print(f"{group['name']:<14} lr {group['lr']:.2e}   |step| / |gradient| = {(moved / grads).item():.2e}")

# %% [markdown]
# Each group's step is its learning rate times its gradient (the smallest
# steps show float32 rounding): the learning rates set how far each part of the
# network moves.
#
# ## How many layers? Measured on a pretrained network
#
# Which of the three answers pays is an empirical question, so let us measure
# it. VGG16 needs many times MobileNetV2's compute per image (lesson 4 counts
# both), too much to fine-tune end to end on a laptop CPU, so the experiment
# uses the pretrained MobileNetV2 of lessons 4 and 5 (ImageNet weights,
# converted once and loaded offline). Its `features` is a chain of 19 blocks;
# we compare:
#
# | protocol | trains | learning rates |
# | --- | --- | --- |
# | head only | the new 10-way head | head `BASE_LR` = 0.01 |
# | last blocks | `features[14:]` + head | + `BASE_LR / 10` for blocks 14-18 |
# | all | every block + head | + `BASE_LR / 30` for blocks 7-13, `BASE_LR / 100` for blocks 0-6 |
#
# Same budget for all three: the same training images at 64 px, the same
# number of epochs and batches, SGD with momentum 0.9, no augmentation. The
# BatchNorm layers stay frozen in eval mode in every protocol (lesson 2): the
# offline network's BatchNorm is folded into its convolutions and would break
# in train mode. Whatever is frozen at the bottom is computed once and cached
# (lesson 5): the head-only and last-blocks runs train on cached features,
# exactly as if they ran the whole network. "All" cannot use a cache: its
# first layer trains.

# %%
PER_CLASS = (20 if SMALL else 100) if QUICK else None  # images per class in each split
SIZE, BATCH, BASE_LR = 64, 32, 0.01  # 64 px: under half of 96 px's compute (lesson 4)
EPOCHS = 2 if SMALL else 3
CHEAP_SEEDS = (1, 2) if SMALL else (1, 2, 3)  # head only, last blocks: cached, cheap
ALL_SEEDS = (1,) if SMALL else ((1, 2) if QUICK else (1, 2, 3))  # the whole network: costly
DEVICE = "cpu" if QUICK else "auto"

splits = load_cifar10(subset=PER_CLASS, allow_synthetic=QUICK)
DATA = data_label(splits)
try:
    backbone = load_model("mobilenet_v2", weights="imagenet").eval()
except WeightsError as error:
    print(f"No ImageNet MobileNetV2: {error}\nUsing random weights instead.")
    backbone = load_model("mobilenet_v2", weights="random").eval()
WEIGHTS_LABEL = backbone.weights_label
MEAN, STD = backbone.preprocessing.mean, backbone.preprocessing.std
LABEL = run_label(WEIGHTS_LABEL, DATA)
print(LABEL)
require_real(splits, backbone, "How many layers to train")


def layer_group(name: str, module: nn.Module, lr: float) -> dict:
    """Unfreeze `module`'s weights, BatchNorm excepted, as one optimizer group."""
    params = [
        p
        for m in module.modules()
        if not isinstance(m, nn.BatchNorm2d)
        for p in m.parameters(recurse=False)
    ]
    for p in params:
        p.requires_grad_(True)
    return {"name": name, "params": params, "lr": lr}


def fine_tune(protocol: str, seed: int):
    """Train one protocol from the pretrained backbone; return (history, trainable, seconds)."""
    torch.manual_seed(seed)  # the new head's initial weights
    net = copy.deepcopy(backbone).requires_grad_(False)
    net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, len(CLASSES))
    groups = [{"name": "head", "params": list(net.classifier[-1].parameters()), "lr": BASE_LR}]
    if protocol in ("last blocks", "all"):
        groups.append(layer_group("blocks 14-18", net.features[14:], BASE_LR / 10))
    if protocol == "all":
        groups.append(layer_group("blocks 7-13", net.features[7:14], BASE_LR / 30))
        groups.append(layer_group("blocks 0-6", net.features[:7], BASE_LR / 100))
    optimizer = torch.optim.SGD(groups, momentum=0.9)
    parts = split_model(net)  # None when the very first layer trains
    start = time.perf_counter()
    if parts is None:
        to_train = net
        tf = v2.Compose([v2.Resize(SIZE, antialias=True), v2.ToDtype(torch.float32, scale=True),
                         v2.Normalize(MEAN, STD)])
        loaders = make_loaders(splits, tf, tf, batch_size=BATCH, seed=seed)
    else:
        # A cut inside the convolutional part caches (channels, height, width) maps.
        to_train = parts.tail
        loaders = cached_loaders(parts.prefix, splits, size=SIZE, mean=MEAN, std=STD,
                                 batch_size=BATCH, seed=seed)
    # lr=None: the parameter groups set the learning rates, not the config.
    config = TrainConfig(epochs=EPOCHS, lr=None, seed=seed, device=DEVICE, progress=False,
                         verbose=False, log_every=0)
    history = train(to_train, optimizer, loaders, config)
    return history, trainable_parameters(net), time.perf_counter() - start


runs = {}
for protocol, seeds in [("head only", CHEAP_SEEDS), ("last blocks", CHEAP_SEEDS),
                        ("all", ALL_SEEDS)]:
    runs[protocol] = [fine_tune(protocol, seed) for seed in seeds]
    print(f"{protocol}: done ({len(seeds)} seed(s))")

# %%
print(f"{EPOCHS} epochs, batch {BATCH}, {SIZE} px, {len(splits.train):,} training images; "
      f"measured on {MACHINE}")
print(f"{LABEL}")
print(f"{'protocol':<12} {'trainable':>11} {'seeds':>5} {'test acc (mean)':>16} "
      f"{'per seed':>20} {'s per run':>10}")
for protocol, results in runs.items():
    accs = [history.test_acc for history, _, _ in results]
    seconds = sum(s for _, _, s in results) / len(results)
    print(f"{protocol:<12} {results[0][1]:>11,} {len(results):>5} {sum(accs) / len(accs):>15.2f}% "
          f"{', '.join(f'{a:.1f}' for a in accs):>20} {seconds:>10.1f}")
print("s per run: training and evaluation, and the feature cache when it was built now; "
      f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")
final = {name: [history.test_acc for history, _, _ in results] for name, results in runs.items()}
print(compare("last blocks", final["last blocks"], "head only", final["head only"]))
print(compare("all", final["all"], "last blocks", final["last blocks"]))
plot_comparison(
    final,
    chance=100 / len(CLASSES),
    title=f"How many layers to train: {EPOCHS} epochs on {len(splits.train):,} images, "
          f"{SIZE} px\n{LABEL}",
)

# %% [markdown]
# The table and figure above are this run's answer for this network, this
# many images and this budget, and the two sentences under the table say
# whether each step down the network beat the seed spread: a protocol is only
# better if its dots sit clearly apart from the other's.
#
# Two forces pull in opposite directions. Every block that trains can adapt
# ImageNet's features to CIFAR-10's small, blurry images; but every trainable
# layer can also fit the noise of a small training set. Which one wins
# depends on the data and the budget, which is why it is measured here rather
# than assumed. The more data you have, and the further it is from ImageNet,
# the more deeper fine-tuning tends to pay.
#
# "Same budget" here means the same epochs and images, not the same compute.
# Read the last column: every block that trains is one the cache cannot skip,
# and "all" runs the whole network forwards and backwards in every epoch. A
# head on cached features could afford many more epochs in the same time
# (lesson 5's linear probe trained for 30). If time is what you have to
# spend, compare the protocols at equal time instead; with more time, rerun
# this cell with more images (`PER_CLASS`) or more epochs.
#
# ## When to compute your own normalization statistics
#
# Every backbone above expects the same ImageNet statistics:

# %%
presets = {
    name: (tuple(t.mean), tuple(t.std))
    for name in BACKBONES.values()
    for t in [torchvision.models.get_model_weights(name).DEFAULT.transforms()]
}
for stats in sorted(set(presets.values())):
    print(f"mean {stats[0]}, std {stats[1]}: {', '.join(n for n, s in presets.items() if s == stats)}")

# %% [markdown]
# A rule of thumb:
#
# - **Pretrained weights, frozen or lightly fine-tuned:** use the statistics the
#   weights were trained with (`weights.transforms()` tells you). The first
#   convolution learned its filters for inputs scaled that way. Lesson 4
#   measured what another choice does to a linear probe on CIFAR-10, and why
#   the lecture's own comparison (its own-statistics run also dropped its
#   random crops) cannot settle it.
# - **Training from scratch:** there is nothing to match; your own training
#   set's statistics (or simply 0.5 / 0.5, as the lecture's from-scratch run)
#   put the inputs around zero.
# - **A data set far from ImageNet** (X-rays, satellite bands, microscopy),
#   fine-tuned end to end: your own statistics, computed exactly on the
#   training split only, often help, because the BatchNorm layers and the
#   early filters adapt to them.
#
# Whichever you choose, compute it once, store it, and use the same numbers in
# every transform: training, validation and test.
#
# ## Summary
#
# - Backbones differ by orders of magnitude in parameters and compute; count
#   them on the `meta` device, and check the input size each expects.
# - The head lives under different names (`fc`, `classifier[...]`,
#   `heads.head`); Inception has a second one.
# - Fine-tune the head, the last blocks, or everything, with parameter groups
#   that give earlier layers smaller learning rates; which one pays depends on
#   your data and budget, so measure it as above, on the same budget, with
#   seeds.
# - Keep the pretrained statistics with pretrained weights; compute your own
#   for training from scratch or a very different domain.
#
# **Exercise:** Task 3 (replace the output layer) in the exercise notebook
# `transfer_learning.ipynb` must work for a ResNet and a MobileNetV3 as well
# as VGG16 (the head table above shows where theirs are), and Task 5 (the
# optimizer) must take only trainable parameters, whatever the model.
# Back to the start: [the lesson list](README.md).
