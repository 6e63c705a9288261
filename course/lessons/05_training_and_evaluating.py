# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 5: Training and evaluating
#
# Time to train, and to see transfer learning work. In this lesson you will:
#
# - train a linear probe (a new head on a frozen pretrained network) with the
#   course's training loop, on features computed once and cached;
# - plot the loss and accuracy curves, a grid of predictions and a confusion
#   matrix, and find which classes the model mixes up;
# - compare pretrained features with random ones and with raw pixels, and, at
#   one input size, fine-tuning the pretrained network against training the
#   same network from scratch;
# - see where the course's loop differs from the lecture's, and put the
#   lecture's reported figures beside runs the course measured;
# - check that caching frozen features gives exactly the same training, and
#   measure what it saves.
#
# The network here is MobileNetV2 with ImageNet weights, not VGG16: it is the
# one ImageNet network this course can ship for use without a network
# connection (Google's published model, converted once), and it needs far
# less compute per image than VGG16 (lesson 4 counts both), so this lesson
# runs on a laptop CPU in minutes. Everything below works the same for
# VGG16 (lesson 6 compares backbones).

# %% tags=["parameters"]
# None follows the COURSE_QUICK environment variable; True forces quick mode
# (laptop: CPU, small CIFAR-10 subsets, cached features), False the real mode.
QUICK = None

# %%
# %matplotlib inline
import copy
import json
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course.data import CLASSES, load_cifar10
from course.doctor import print_summary, require_real
from course.errors import WeightsError
from course.features import cached_loaders, resize_normalize, split_model
from course.models import calibrate_batchnorm, load_model, trainable_parameters
from course.paths import PROJECT_ROOT, env_flag
from course.plots import (
    confusion_matrix,
    plot_accuracy,
    plot_comparison,
    plot_confusion_matrix,
    plot_minibatch_loss,
    plot_predictions,
)
from course.quick import banner, data_label, machine_label, quick_mode, run_label
from course.reporting import compare
from course.training import TrainConfig, seed_everything, train, train_mode

QUICK = quick_mode(QUICK)
SMALL = QUICK and env_flag("COURSE_TEST")  # the tests' smallest subsets
PER_CLASS = (20 if SMALL else 100) if QUICK else None  # images per class in each split
SIZE = 64  # input side in pixels (lesson 4 measures other sizes; its 64-px cache is reused)
BATCH = 64
EPOCHS = 10 if SMALL else 30  # epochs on cached features take well under a second each
SEEDS = (1, 2) if SMALL else (1, 2, 3)
SCRATCH_EPOCHS = 2 if SMALL else (5 if QUICK else 30)  # whole-network runs: no cache
SCRATCH_SIZE = 32 if QUICK else SIZE  # CIFAR-10's own size: (64/32)^2 = 4 times fewer MACs
DEVICE = "cpu" if QUICK else "auto"
MACHINE = machine_label()
seed_everything(123)
print(banner(QUICK))
DIAGNOSIS = print_summary("05")  # what this lesson uses, and the fix for what is missing

# %% [markdown]
# ## Data and the pretrained network
#
# A small real subset of CIFAR-10 (the same number of images of every class in
# each split) in quick mode, all of it in the real mode:

# %%
splits = load_cifar10(subset=PER_CLASS, allow_synthetic=QUICK)
DATA = data_label(splits)
print(DATA)
print(splits.describe())


# %%
def load_pretrained(name: str = "mobilenet_v2") -> nn.Module:
    """The ImageNet network, or random weights (labelled as such) when none can be found."""
    try:
        return load_model(name, weights="imagenet")
    except WeightsError as error:
        print(f"No ImageNet weights for {name}: {error}\nUsing random weights instead.")
        return load_model(name, weights="random")


pretrained = load_pretrained().eval()
WEIGHTS_LABEL = pretrained.weights_label
# The normalization the weights were trained with travels with the model.
MEAN, STD = pretrained.preprocessing.mean, pretrained.preprocessing.std
LABEL = run_label(WEIGHTS_LABEL, DATA)
print("weights:", WEIGHTS_LABEL)
print("inputs:", pretrained.preprocessing.label)

# %% [markdown]
# ## A first run: the linear probe
#
# We start with what the lecture's runs really were (lesson 2): every
# pretrained layer frozen, a new 10-way head, only the head trains.
#
# With the backbone frozen and no random augmentation, the backbone maps each
# image to the same numbers in every epoch. `course.features.split_model`
# cuts the model into that frozen *prefix* and the *tail* that trains, and
# `cached_loaders` runs the prefix once over every split and keeps its
# output on disk. The training loop then trains the tail on those stored
# features: the same training (we check it at the end of the lesson), at a
# fraction of the cost.

# %%
def linear_probe(backbone: nn.Module) -> nn.Module:
    """A copy of `backbone`: every layer frozen, a new trainable 10-way head."""
    model = copy.deepcopy(backbone)
    model.requires_grad_(False)
    model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, len(CLASSES))
    return model


require_real(splits, pretrained, "The linear probe")
model = linear_probe(pretrained)
parts = split_model(model)
print(f"linear probe: {trainable_parameters(model):,} trainable parameters")
print(f"cached: the output of everything before {parts.cut}; trains: {parts.tail}")

start = time.perf_counter()
loaders = cached_loaders(parts.prefix, splits, size=SIZE, mean=MEAN, std=STD, batch_size=BATCH)
print(f"features of {sum(len(s) for s in (splits.train, splits.valid, splits.test)):,} images "
      f"at {SIZE} px ready in {time.perf_counter() - start:.1f} s (computed now, or read back "
      "from an earlier run's cache)")

config = TrainConfig(epochs=EPOCHS, device=DEVICE, progress=False, log_every=0)
print(f"training the head for {EPOCHS} epochs; {LABEL}")
history = train(parts.tail, None, loaders, config)

# %% [markdown]
# `train` prints one line per epoch and the test accuracy at the end, and
# returns a `History` with everything it measured. The loss of every
# minibatch, with a running average over one epoch:

# %%
plot_minibatch_loss(history, window=max(1, history.batches_per_epoch),
                    title=f"Linear probe, training loss\n{LABEL}")

# %% [markdown]
# Accuracy per epoch, on the training batches (as they went by, with dropout
# on) and on the validation split, with the test accuracy as a dashed line.
# A gap between the two solid curves is the head fitting its training
# images better than new ones.

# %%
plot_accuracy(history, title=f"Linear probe, accuracy\n{LABEL}")

# %% [markdown]
# Predictions on the first fifteen test images: each panel shows the predicted
# class (P) and the true one (T), mistakes in bold red. `train` kept the
# test predictions, so no second pass over the test set is needed.

# %%
predicted = torch.tensor(history.test_predicted)
true = torch.tensor(history.test_true)
shown = slice(0, 15)
print(f"{int((predicted[shown] == true[shown]).sum())} of 15 shown are right; "
      f"test accuracy over all {len(true):,} test images: {history.test_acc:.2f}%")
plot_predictions(splits.test.images[shown], predicted[shown], true[shown],
                 title=f"Test images, linear probe\n{LABEL}")

# %% [markdown]
# A confusion matrix counts, for each true class (row), how often the model
# predicted each class (column). The diagonal holds the correct answers.

# %%
plot_confusion_matrix(predicted, true, title=f"Test set, linear probe\n{LABEL}")

# %% [markdown]
# Rather than guess which mistakes are typical, let the matrix say. The
# classes it gets right most and least often, and the pairs it mixes up most:

# %%
matrix = confusion_matrix(predicted, true, len(CLASSES))
per_class = 100 * matrix.diagonal() / matrix.sum(axis=1).clip(min=1)
order = per_class.argsort()
print(f"per-class test accuracy ({LABEL}):")
print("  lowest: ", ", ".join(f"{CLASSES[i]} {per_class[i]:.0f}%" for i in order[:3]))
print("  highest:", ", ".join(f"{CLASSES[i]} {per_class[i]:.0f}%" for i in order[::-1][:3]))
mistakes = sorted(
    ((int(matrix[t, p]), CLASSES[t], CLASSES[p])
     for t in range(len(CLASSES)) for p in range(len(CLASSES)) if t != p),
    reverse=True,
)
print(f"most frequent mistakes (of {int(matrix.sum() - matrix.trace())} in all):")
for count, true_class, predicted_class in mistakes[:5]:
    print(f"  {count:4d} x  {true_class} predicted as {predicted_class}")

# %% [markdown]
# Compare the pairs printed above with the images: are they classes that
# look alike at 32 pixels (animals with four legs, vehicles with wheels), or
# something else? In a small test set a pair with only a few mistakes may be
# noise; a pair that stands out in run after run is not.
#
# ## Is it the pretraining? Baselines, one change at a time
#
# A test accuracy means little alone. Comparisons, all trained with the same
# loop and the same images, each changing one thing:
#
# - **random features**: the same network with random weights, frozen, with a
#   new head (its BatchNorm statistics measured on the training images, see
#   the code). Same architecture, same input size, no ImageNet;
# - **raw pixels**: a linear classifier on the 3,072 normalized pixel values
#   of each 32x32 image, no network at all;
# - **from scratch against fine-tuned**, both at the same input size: the whole
#   network trains (every layer) for a few epochs, once from random weights,
#   once from the ImageNet weights. Only the starting weights differ.
#
# The three linear probes are cheap on cached features, so each runs with
# several seeds (the seed sets the head's initial weights and the order of the
# batches; the images stay the same). The spread between seeds shows how much
# of a difference is noise.

# %%
def probe_accuracy(backbone: nn.Module, seed: int) -> float:
    """Test accuracy of a linear probe on `backbone`'s frozen features (cached)."""
    torch.manual_seed(seed)  # the new head's initial weights
    net = linear_probe(backbone)
    net_parts = split_model(net)
    net_loaders = cached_loaders(net_parts.prefix, splits, size=SIZE, mean=MEAN, std=STD,
                                 batch_size=BATCH, seed=seed)
    run = train(net_parts.tail, None, net_loaders,
                TrainConfig(epochs=EPOCHS, seed=seed, device=DEVICE, progress=False,
                            verbose=False, log_every=0))
    return run.test_acc


def pixel_loaders(seed: int) -> dict[str, DataLoader]:
    """Loaders of flattened, normalized 32x32 pixels: the input of a linear classifier."""
    loaders = {}
    for offset, name in enumerate(("train", "valid", "test")):
        split = getattr(splits, name)
        pixels = resize_normalize(split.images, 32, MEAN, STD).flatten(1)
        loaders[name] = DataLoader(
            TensorDataset(pixels, split.labels), batch_size=BATCH, shuffle=name == "train",
            generator=torch.Generator().manual_seed(seed + offset),
        )
    return loaders


def random_network() -> nn.Module:
    """MobileNetV2 with random weights, its BatchNorm statistics measured on the training images.

    Freshly initialized BatchNorm layers hold mean 0 and variance 1, which fit no real
    activations: a random network's features then vanish or explode with depth. Measuring
    the statistics on data (one pass in train mode, no training) makes the random
    baseline a fair one.
    """
    net = load_model("mobilenet_v2", weights="random")
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over all batches
    net.train()
    with torch.no_grad():
        for low in range(0, len(splits.train), BATCH):
            net(resize_normalize(splits.train.images[low:low + BATCH], SIZE, MEAN, STD))
    return net.eval()


require_real(splits, pretrained, "The baselines")
torch.manual_seed(0)
random_net = random_network()
accuracy = {"pretrained features": [], "random features": [], "raw pixels": []}
start = time.perf_counter()
for seed in SEEDS:
    accuracy["pretrained features"].append(probe_accuracy(pretrained, seed))
    accuracy["random features"].append(probe_accuracy(random_net, seed))
    torch.manual_seed(seed)
    pixel_head = nn.Linear(3 * 32 * 32, len(CLASSES))
    run = train(pixel_head, None, pixel_loaders(seed),
                TrainConfig(epochs=EPOCHS, seed=seed, device=DEVICE, progress=False,
                            verbose=False, log_every=0))
    accuracy["raw pixels"].append(run.test_acc)
print(f"linear probes, {len(SEEDS)} seeds each, {EPOCHS} epochs, {SIZE} px: "
      f"{time.perf_counter() - start:.1f} s in all")
print(compare("pretrained features", accuracy["pretrained features"],
              "random features", accuracy["random features"]))

# %% [markdown]
# Now the whole network trains, once from scratch (random weights) and once
# from the ImageNet weights, with the same loop, the same images, the same
# number of epochs and the same input size: only the starting weights differ.
# Nothing can be cached here: the first layer trains, so every epoch runs the
# whole network forwards and backwards. To afford a few epochs on a laptop,
# quick mode trains both at CIFAR-10's own 32 px (lesson 4: a frozen probe is
# weak at that size). Every BatchNorm layer trains in both runs: the
# pretrained network's folded BatchNorm is first calibrated on the training
# images (`calibrate_batchnorm`, lesson 2), which leaves its outputs unchanged.

# %%
from course.data import make_loaders  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

require_real(splits, pretrained, "From scratch against fine-tuned")
whole_tf = v2.Compose([v2.Resize(SCRATCH_SIZE, antialias=True),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
whole_loaders = make_loaders(splits, whole_tf, whole_tf, batch_size=BATCH)


def whole_network(start_from: str) -> nn.Module:
    """MobileNetV2 with a new 10-way head, every layer trainable: random or ImageNet start."""
    torch.manual_seed(1)
    if start_from == "random":
        return load_model("mobilenet_v2", weights="random", num_classes=len(CLASSES))
    net = copy.deepcopy(pretrained)
    calibrate_batchnorm(net, (images for images, _ in whole_loaders["train"]))
    net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, len(CLASSES))
    return net.requires_grad_(True)


whole = {}
for start_from, name in (("random", "from scratch"), ("imagenet", "fine-tuned from ImageNet")):
    net = whole_network(start_from)
    start = time.perf_counter()
    whole[name] = train(net, None, whole_loaders,
                        TrainConfig(epochs=SCRATCH_EPOCHS, device=DEVICE, progress=False,
                                    verbose=False, log_every=0))
    accuracy[f"{name}, {SCRATCH_SIZE} px"] = [whole[name].test_acc]
    print(f"{name}: {trainable_parameters(net):,} trainable parameters, {SCRATCH_EPOCHS} "
          f"epochs at {SCRATCH_SIZE} px in {time.perf_counter() - start:.0f} s; valid accuracy "
          f"by epoch {', '.join(f'{v:.1f}' for v in whole[name].valid_acc)}; "
          f"test {whole[name].test_acc:.2f}%")
print(compare("fine-tuned from ImageNet", [whole["fine-tuned from ImageNet"].test_acc],
              "from scratch", [whole["from scratch"].test_acc]))
plot_accuracy(whole["from scratch"], title=f"From scratch, {SCRATCH_SIZE} px, accuracy\n"
                                           f"{run_label('random weights', DATA)}")

# %%
print(f"test accuracy (%), {len(splits.train):,} training images; measured now on {MACHINE}")
print(f"data: {DATA}; pretrained weights: {WEIGHTS_LABEL}")
for name, values in accuracy.items():
    spread = f"  (seeds: {', '.join(f'{v:.1f}' for v in values)})" if len(values) > 1 else ""
    print(f"  {name:<36} {sum(values) / len(values):6.2f}{spread}")
print(compare("pretrained features", accuracy["pretrained features"],
              "raw pixels", accuracy["raw pixels"]))
plot_comparison(accuracy, chance=100 / len(CLASSES),
                title=f"Linear probes ({EPOCHS} epochs, {SIZE} px, {len(SEEDS)} seeds) and "
                      f"{SCRATCH_EPOCHS} epochs of the whole network at {SCRATCH_SIZE} px\n"
                      f"{LABEL}")

# %% [markdown]
# The table and the figure above are this run's answer. Read them row by row:
#
# - The gap between **pretrained** and **random features** is what ImageNet
#   pretraining buys: the architecture, the head, the images and the training
#   are the same, only the weights of the frozen part differ.
# - **Raw pixels** show how far a linear classifier gets with no network at
#   all. Random features are not automatically better than pixels: a random
#   network mixes the pixels without having learned anything about images.
# - **From scratch against fine-tuned from ImageNet**: the same size, the same
#   epochs, every layer training; only the start differs, so their gap is what
#   the pretrained start buys when the whole network trains. Do not read the
#   whole-network rows against the linear probes above: those ran at another
#   size with the network frozen, two changes at once. The lecture's
#   from-scratch run reached 84.58% with 45,000 images and 50 epochs on a GPU
#   (its figure); with a thousand images and a laptop's budget, a network that
#   starts from random weights has far less to learn from.
#
# Where the dots of one row overlap those of another, the difference between
# them is within the noise of this small experiment; the whole-network rows
# ran once each, so their sentence above says no spread was measured.
#
# ## The course's loop and the lecture's
#
# `course.training.train` follows the lecture's recipe: SGD with momentum 0.9,
# learning rate 0.01, cross-entropy, `ReduceLROnPlateau(mode="max",
# factor=0.1)` on the validation accuracy, the loss of every minibatch, train
# and validation accuracy after every epoch, test accuracy at the end. It
# differs in ways that matter when you compare numbers or times:
#
# - **bf16 on a GPU.** On CUDA the forward pass runs in bf16 autocast by
#   default (`TrainConfig(bf16=True)`); the lecture trains in float32. This
#   course has not measured whether that changes the accuracy; set
#   `bf16=False` to compare. On a CPU, as here, everything is float32.
# - **Training accuracy.** Here it is the running accuracy over the epoch's
#   batches, measured while the weights change and with dropout on. The
#   lecture evaluates the whole training split again after each epoch, in
#   eval mode (no dropout), which costs one more pass over the data:
#   `TrainConfig(eval_train=True)` does the same. The two numbers differ, and
#   so do the epoch times.
# - **Cached features.** This lesson trains only the tail on stored features;
#   the lecture runs the whole network every epoch. Epoch times here are not
#   comparable with the lecture's minutes.
# - **Frozen BatchNorm stays in eval mode** (lesson 2): VGG16 has none, but
#   MobileNetV2 does.
#
# ## The lecture's figures and the course's runs
#
# The lecture's notebooks report these figures (50 epochs, batch 256, on the
# lecture's GPU; quoted here, not measured by this course):

# %%
LECTURE = [
    # run, what really trained, input, valid acc epochs 1/2/3, test acc, minutes for 50 epochs
    ("pretrained VGG16, 'small'", "head only*", "Resize 70, RandomCrop 64",
     (72.5, 73.7, 74.1), 77.99, 38.3),
    ("pretrained VGG16, 'large'", "head only*", "Resize 224", (81.5, 82.8, 83.3), 84.90, 213.1),
    ("own VGG16, from scratch", "all layers**", "64 px, normalize 0.5/0.5",
     (35.1, 50.5, 53.9), 84.58, 90.7),
]
print(f"{'lecture run':<26} {'trained':<13} {'input':<25} {'valid ep 1/2/3':<17} "
      f"{'test acc':>8} {'50 epochs':>10}")
for run, trained, size, valid, test, minutes in LECTURE:
    print(f"{run:<26} {trained:<13} {size:<25} {' / '.join(f'{v:.1f}' for v in valid):<17} "
          f"{test:>7.2f}% {minutes:>6.1f} min")
print("*  meant as fc6 + fc7 + head; the freezing bug trained only the head (lesson 2).")
print("** the lecture's own VGG16 (1.1-vgg16.ipynb), not torchvision's: see below.")
print("Source: the lecture's published notebooks, as reported; not measured by this course.")

# %% [markdown]
# The from-scratch row did not use torchvision's VGG16. The lecture's notebook
# writes its own: the same 13 convolutions, but an `AdaptiveAvgPool2d((3, 3))`
# instead of 7x7, so fc6 takes 512 x 3 x 3 = 4,608 inputs instead of 25,088,
# and every layer re-initialized with `kaiming_uniform_`. Counting both on the
# `meta` device (shapes only):

# %%
import torchvision  # noqa: E402

with torch.device("meta"):
    torchvision_vgg = torchvision.models.vgg16(num_classes=10)
    lecture_vgg = torchvision.models.vgg16(num_classes=10)
    lecture_vgg.avgpool = nn.AdaptiveAvgPool2d((3, 3))
    lecture_vgg.classifier[0] = nn.Linear(512 * 3 * 3, 4096)
print(f"torchvision's VGG16, 10-way head:        {trainable_parameters(torchvision_vgg):>12,}")
print(f"the lecture's VGG16 (3x3 pool, fc6 4,608): {trainable_parameters(lecture_vgg):>12,}")
print(f"the lecture's has {trainable_parameters(lecture_vgg) / trainable_parameters(torchvision_vgg):.0%}"
      " of torchvision's parameters")

# %% [markdown]
# A smaller network (the counts above), initialized differently: its 84.58%
# says how that network trains from scratch, not how torchvision's would.
#
# The course's reference runs (made by your instructor with the course's own tools)
# record their results in `results/`, each with the machine, the weights and
# the data it used. Any recorded there are listed below.

# %%
results_dir = (PROJECT_ROOT or Path.cwd()) / "results"
recorded = sorted(results_dir.glob("**/results.json")) if results_dir.is_dir() else []
print(f"{len(recorded)} run(s) recorded in results/" if recorded
      else "No course runs are recorded in results/ here.")
for path in recorded:
    result = json.loads(path.read_text())
    protocol = result.get("protocol", {})
    if not isinstance(protocol, dict):
        protocol = {"name": str(protocol)}
    data = result.get("data", {})
    valid = " / ".join(f"{v:.1f}" for v in result.get("valid_acc", [])[:3])
    test = result.get("test_acc")
    print(f"{protocol.get('name', path.parent.name)} ({protocol.get('trainable', '?')} trains), "
          f"{result.get('size', '?')} px, {result.get('epochs', '?')} epochs: valid {valid}, "
          f"test {f'{test:.2f}%' if test is not None else '-'}")
    print(f"    weights: {result.get('weights', '?')}")
    print(f"    data: {'synthetic, ' if data.get('synthetic') else ''}train/valid/test "
          f"{data.get('train', '?')}/{data.get('valid', '?')}/{data.get('test', '?')}; "
          f"machine: {result.get('device', result.get('machine', '?'))}")

# %% [markdown]
# When you compare such figures, compare like with like: the same protocol
# (a linear probe is not fc6 + fc7 + head), the same network, the same number
# of epochs and images, the same data (the course's copy of CIFAR-10 is
# stored as JPEG, the lecture's is torchvision's original; the course has not
# measured what that difference does to accuracy), and times only from the
# same kind of machine with the same loop.
#
# ## Caching frozen features: exact, and what it saves
#
# Is training the tail on cached features *exactly* the same as training the
# whole model? The frozen prefix draws no random numbers and, with its
# BatchNorm layers in eval mode, computes the same in training as in
# evaluation. The tail (dropout, then the head) receives the same numbers
# either way and draws the same dropout masks. Let us check in training mode,
# with dropout active, on eight images:

# %%
images = resize_normalize(splits.train.images[:8], SIZE, MEAN, STD)
train_mode(model)  # what the loop does: train mode, frozen BatchNorm kept in eval mode

torch.manual_seed(0)
full = model(images)
with torch.no_grad():
    cached = parts.prefix(images)  # computed once, stored
torch.manual_seed(0)
from_cache = parts.tail(cached)

print("cached features:", tuple(cached.shape), "for", len(images), "images")
print("same logits, bit for bit, with dropout active:", torch.equal(full, from_cache))

# %% [markdown]
# That depends on the frozen BatchNorm layers staying in eval mode. A plain
# `model.train()` puts them in train mode: each batch is then normalized with
# its own statistics, and the "frozen" features change with whatever else is
# in the batch (lesson 2):

# %%
demo = copy.deepcopy(model).train()  # a copy: train mode overwrites BatchNorm statistics
with torch.no_grad():
    batch_stats = torch.flatten(nn.functional.adaptive_avg_pool2d(demo.features(images), 1), 1)
print("features identical with BatchNorm in train mode:", torch.equal(batch_stats, cached))
print(f"largest difference: {(batch_stats - cached).abs().max().item():.4f} "
      f"(feature values up to {cached.abs().max().item():.4f})")

# %% [markdown]
# With random augmentation caching breaks down too: each epoch crops or flips
# each image differently, so its features change, and a cache would freeze
# one version forever. The lecture's 64-px runs use random crops (a cache is
# not exact for them); its 224-px runs do not (a cache is exact).
#
# How much does the cache save here? Without it, every epoch runs the frozen
# prefix over all training images again. We time one such pass and compare
# it with the epochs the head took on the cached features:

# %%
model.eval()
start = time.perf_counter()
with torch.no_grad():
    for low in range(0, len(splits.train), BATCH):
        parts.prefix(resize_normalize(splits.train.images[low:low + BATCH], SIZE, MEAN, STD))
prefix_seconds = time.perf_counter() - start
epoch_seconds = sum(history.epoch_seconds) / len(history.epoch_seconds)
print(f"measured on {MACHINE}, {SIZE} px, {len(splits.train):,} training images "
      f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
print(f"  the frozen prefix over the training split: {prefix_seconds:7.2f} s per epoch without a cache")
print(f"  one epoch of the head on cached features:  {epoch_seconds:7.3f} s "
      "(validation included)")
print(f"  so an epoch on the cache costs about {epoch_seconds / (prefix_seconds + epoch_seconds):.1%}"
      " of one without it (one pass to build the cache comes first)")

# %% [markdown]
# The share printed above is this machine's; the saving grows with the share
# of the work that sits in the frozen part, so it is largest for big inputs
# and a small trainable tail. The course's fast path (in the instructors' tools)
# uses the same idea to rerun the lecture's 224-px protocols, with one
# difference: it stores the features in bf16 (half the disk), so its training
# is not bit-for-bit the uncached one, unlike this lesson's float32 cache.
#
# ## Summary
#
# - `course.training.train` runs the lecture's loop and returns a `History`;
#   `course.plots` turns it into loss and accuracy curves, a prediction grid
#   and a confusion matrix. Read the mistakes from the matrix, not from
#   expectations.
# - Pretrained features against random ones, raw pixels and a run from
#   scratch, on the same images and with the same loop, show what transfer
#   buys; repeat cheap runs with a few seeds to see the noise.
# - The course's loop differs from the lecture's in bf16 (GPU), in how it
#   measures training accuracy, and in training on cached features: compare
#   like with like.
# - Frozen prefix + frozen BatchNorm in eval mode + no random augmentation =
#   features you can compute once and cache, with exactly the same result.
#
# **Exercise:** Task 7 (train and evaluate) in the exercise notebook
# `transfer_learning.ipynb` asks you to write a short version of this loop
# yourself.
# Next: [Lesson 6, beyond VGG16](06_beyond_vgg16.ipynb).
