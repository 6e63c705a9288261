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
# Time to train. In this lesson you will:
#
# - train VGG16 with the course's training loop, which follows the lecture's
#   (SGD, momentum 0.9, learning rate 0.01, `ReduceLROnPlateau` on validation
#   accuracy);
# - plot the loss and accuracy curves, a grid of predictions and a confusion
#   matrix, and read the timings;
# - compare three protocols: a linear probe (what the lecture really ran),
#   fc6 + fc7 + head (what it meant to run), and training from scratch;
# - put the lecture's reported figures beside runs the course measured, each
#   with its machine, weights and data;
# - see why caching the frozen features gives exactly the same training, and
#   when it does not.

# %% tags=["parameters"]
# None follows the COURSE_QUICK environment variable; True forces quick mode
# (random weights, a few images, CPU), False forces the real mode.
QUICK = None

# %%
# %matplotlib inline
import copy
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn
from torchvision.transforms import v2

from course.data import NORMALIZATIONS, load_cifar10, make_loaders
from course.models import load_model, trainable_parameters
from course.paths import PROJECT_ROOT
from course.plots import (
    plot_accuracy,
    plot_confusion_matrix,
    plot_minibatch_loss,
    plot_predictions,
)
from course.quick import banner, data_label, quick_mode, run_label
from course.training import TrainConfig, pick_device, predict, seed_everything, train

QUICK = quick_mode(QUICK)
WEIGHTS = "random" if QUICK else "imagenet"
SIZE = 32 if QUICK else 64  # the lecture's "small" run uses 64 px; quick mode keeps 32
EPOCHS = 2 if QUICK else 3  # the lecture trains 50; three epochs show the start of the curves
COMPARE_EPOCHS = 1 if QUICK else EPOCHS  # for the protocol comparison further down
BATCH = 16 if QUICK else 256  # the lecture's batch size is 256
DEVICE = "cpu" if QUICK else "auto"
seed_everything(123)
print(banner(QUICK))
if not QUICK and pick_device(DEVICE).type == "cpu":
    print("No GPU found: the real mode of this lesson trains VGG16 on all of CIFAR-10 and takes"
          " hours on a CPU. Set QUICK = True above for a run of a few minutes.")

# %% [markdown]
# ## Data and transforms
#
# The lecture's 64-px run resizes each image to 70 px, then crops 64 px: at
# random for training (a mild augmentation), from the centre for validation and
# testing. Pretrained runs normalize with ImageNet's statistics.

# %%
splits = load_cifar10(subset=8 if QUICK else None, allow_synthetic=QUICK)
DATA = data_label(splits)
print(DATA)

mean, std = NORMALIZATIONS["imagenet"]
train_tf = v2.Compose([
    v2.Resize(SIZE + 6, antialias=True),
    v2.RandomCrop(SIZE),
    v2.ToDtype(torch.float32, scale=True),
    v2.Normalize(mean, std),
])
eval_tf = v2.Compose([
    v2.Resize(SIZE + 6, antialias=True),
    v2.CenterCrop(SIZE),
    v2.ToDtype(torch.float32, scale=True),
    v2.Normalize(mean, std),
])
loaders = make_loaders(splits, train_tf, eval_tf, batch_size=BATCH)
print({name: f"{len(loader)} batches of up to {BATCH}" for name, loader in loaders.items()})

# %% [markdown]
# ## A first run: the linear probe
#
# We start with what the lecture's runs really were: every pretrained layer
# frozen, a new 10-way head, and only the head trains (lesson 2 explains how the
# lecture ended up there). The optimizer gets the trainable parameters only.

# %%
pretrained = load_model("vgg16", weights=WEIGHTS)


def linear_probe() -> nn.Module:
    """A copy of the pretrained VGG16: all frozen, with a new trainable 10-way head."""
    model = copy.deepcopy(pretrained)
    model.requires_grad_(False)
    model.classifier[6] = nn.Linear(4096, 10)
    return model


model = linear_probe()
LABEL = run_label(model.weights_label, DATA)
config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, device=DEVICE, progress=False)
optimizer = torch.optim.SGD(
    [p for p in model.parameters() if p.requires_grad], lr=config.lr, momentum=config.momentum
)
print(f"linear probe, {SIZE} px: {trainable_parameters(model):,} trainable parameters; {LABEL}")
history = train(model, optimizer, loaders, config)

# %% [markdown]
# `train` prints one line per epoch and the test accuracy at the end. It returns
# a `History` with everything it measured. The loss of every minibatch, with a
# running average:

# %%
plot_minibatch_loss(history, window=max(1, history.batches_per_epoch),
                    title=f"Linear probe, training loss\n{LABEL}")

# %% [markdown]
# Accuracy per epoch, on the training batches (as they went by, with dropout
# on) and on the validation split, with the test accuracy as a dashed line:

# %%
plot_accuracy(history, title=f"Linear probe, accuracy\n{LABEL}")

# %% [markdown]
# Predictions on the first test images: each panel shows the predicted class
# (P) and the true one (T), mistakes in red.

# %%
predicted, true = predict(model, loaders["test"])
shown = slice(0, 10)
plot_predictions(splits.test.images[shown], predicted[shown], true[shown],
                 title=f"Test images, linear probe\n{LABEL}")

# %% [markdown]
# A confusion matrix counts, for each true class (row), how often the model
# predicted each class (column). The diagonal holds the correct answers; with
# pretrained weights, the largest mistakes are usually between similar
# classes such as cat and dog, or automobile and truck.

# %%
plot_confusion_matrix(predicted, true, title=f"Test set, linear probe\n{LABEL}")

# %% [markdown]
# And how long each epoch took, on this machine:

# %%
device = pick_device(DEVICE)
machine = f"{device.type}: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
print(f"measured on {machine}; {LABEL}")
for epoch, seconds in enumerate(history.epoch_seconds, start=1):
    rate = len(splits.train.labels) / seconds
    print(f"  epoch {epoch}: {seconds:6.1f} s  ({rate:7.1f} training images/s, validation included)")

# %% [markdown]
# ## Three protocols
#
# The same loop trains three different amounts of the network:
#
# | protocol | trains | trainable parameters |
# | --- | --- | --- |
# | linear probe | the new head only | 40,970 |
# | fc6 + fc7 + head | the three fully connected layers | 119,586,826 |
# | from scratch | every layer, from random weights | 134,301,514 |
#
# From scratch, the lecture normalizes with 0.5 / 0.5 instead of ImageNet's
# statistics: random weights have no preference. Let us run the other two as
# well and time them.

# %%
def fc_layers() -> nn.Module:
    """The linear probe with fc6 and fc7 unfrozen: what the lecture meant to train."""
    model = linear_probe()
    model.classifier[0].requires_grad_(True)
    model.classifier[3].requires_grad_(True)
    return model


def from_scratch() -> nn.Module:
    """A VGG16 with random weights and a 10-way head; every layer trains."""
    model = load_model("vgg16", weights="random")
    model.classifier[6] = nn.Linear(4096, 10)
    return model


half_mean, half_std = NORMALIZATIONS["half"]
scratch_loaders = make_loaders(
    splits,
    v2.Compose([*train_tf.transforms[:-1], v2.Normalize(half_mean, half_std)]),
    v2.Compose([*eval_tf.transforms[:-1], v2.Normalize(half_mean, half_std)]),
    batch_size=BATCH,
)

runs = {"linear probe": (trainable_parameters(model), history, model.weights_label)}
del model, optimizer  # free the memory before the larger runs
compare = TrainConfig(epochs=COMPARE_EPOCHS, batch_size=BATCH, device=DEVICE, progress=False)
for name, build, protocol_loaders in [
    ("fc6 + fc7 + head", fc_layers, loaders),
    ("from scratch", from_scratch, scratch_loaders),
]:
    print(f"--- {name}")
    net = build()
    opt = torch.optim.SGD(
        [p for p in net.parameters() if p.requires_grad], lr=compare.lr, momentum=compare.momentum
    )
    runs[name] = (trainable_parameters(net), train(net, opt, protocol_loaders, compare), net.weights_label)
    del net, opt

# %%
print(f"{SIZE} px, measured just now on {machine}; data: {DATA}")
print(f"{'protocol':<18} {'weights':<32} {'trainable':>12} {'epochs':>6} {'s/epoch':>8} "
      f"{'valid acc':>10} {'test acc':>9}")
for name, (count, run_history, weights) in runs.items():
    seconds = sum(run_history.epoch_seconds) / run_history.epochs_done
    print(f"{name:<18} {weights:<32} {count:>12,} {run_history.epochs_done:>6} {seconds:>8.1f} "
          f"{run_history.valid_acc[-1]:>9.2f}% {run_history.test_acc:>8.2f}%")
if QUICK:
    print("Quick mode: random weights and a few images, so these accuracies mean nothing;"
          " the times show how the cost grows with what trains.")

# %% [markdown]
# Training more layers costs more per epoch: the backward pass has to reach
# every trainable layer, and the optimizer updates more values. Only the
# linear probe's backward pass stops at the head.
#
# ## The lecture's figures and the course's own runs
#
# The lecture's notebooks report these figures (50 epochs, batch 256, on the
# lecture's GPU; quoted here, not measured by this course):

# %%
LECTURE = [
    # protocol as it really ran, input, valid acc epochs 1/2/3, test acc, minutes for 50 epochs
    ("pretrained, 'small'", "linear probe*", "Resize 70, RandomCrop 64", (72.5, 73.7, 74.1), 77.99, 38.3),
    ("pretrained, 'large'", "linear probe*", "Resize 224", (81.5, 82.8, 83.3), 84.90, 213.1),
    ("from scratch", "all layers", "64 px, normalize 0.5/0.5", (35.1, 50.5, 53.9), 84.58, 90.7),
]
print(f"{'lecture run':<22} {'trained':<14} {'input':<26} {'valid acc ep 1/2/3':<20} "
      f"{'test acc':>8} {'time':>10}")
for run, trained, size, valid, test, minutes in LECTURE:
    print(f"{run:<22} {trained:<14} {size:<26} {' / '.join(f'{v:.1f}' for v in valid):<20} "
          f"{test:>7.2f}% {minutes:>6.1f} min")
print("* meant as fc6 + fc7 + head; the freezing bug trained only the head (lesson 2).")
print("Source: the lecture's published notebooks, as reported; not measured by this course.")

# %% [markdown]
# The course's reference runs (`python -m solutions run ...`, for instructors)
# record their results in `results/`, each with the machine, the weights and
# the data it used. Any recorded there are listed below.

# %%
results_dir = (PROJECT_ROOT or Path.cwd()) / "results"
recorded = sorted(results_dir.glob("**/results.json")) if results_dir.is_dir() else []
if not recorded:
    print("No course runs are recorded in results/ yet, so there is nothing to put beside the")
    print("lecture's figures: the table above is the lecture's own, not a measurement.")
for path in recorded:
    result = json.loads(path.read_text())
    valid = " / ".join(f"{v:.1f}" for v in result["valid_acc"][:3])
    test = f"{result['test_acc']:.2f}%" if result.get("test_acc") is not None else "-"
    print(f"{result['protocol']['name']} ({result['protocol']['trainable']} trains), "
          f"{result['size']} px, {result['epochs']} epochs: valid {valid}, test {test}, "
          f"{result['total_seconds'] / 60:.1f} min")
    print(f"    weights: {result['weights']} | data: {result['data']['source']}"
          f"{' (synthetic)' if result['data']['synthetic'] else ''}, train/valid/test "
          f"{result['data']['train']}/{result['data']['valid']}/{result['data']['test']}")
    print(f"    machine: {result['device']}; file: {path.relative_to(results_dir.parent)}")

# %% [markdown]
# When you compare such figures, compare like with like: the same protocol
# (a linear probe is not fc6 + fc7 + head), the same number of epochs, the same
# data (the course's CIFAR-10 copy is stored as JPEG, which can move accuracy
# by about a point), and times only from the same kind of machine.
#
# ## Caching frozen features
#
# In a linear probe, and in fc6 + fc7 + head, the 13 convolutional layers are
# frozen. With no random augmentation, their output for a given image is the
# same in every epoch, yet the loop recomputes it every time, and it is
# nearly all of the work (15.3 of 15.5 GMACs per image at 224 px, lesson 4).
# Compute it once, keep it, and train the classifier on the stored features.
#
# Is that *exactly* the same training? The convolutional part holds no
# dropout and no BatchNorm, and it draws no random numbers. So the
# classifier receives the same numbers either way, and its dropout draws the
# same random masks. Let us check, in train mode, with dropout active:

# %%
probe = linear_probe()
images = torch.stack([eval_tf(image) for image in splits.train.images[:8]])
probe.train()

torch.manual_seed(0)
full = probe(images)

with torch.no_grad():
    cached = torch.flatten(probe.avgpool(probe.features(images)), 1)  # computed once, stored
torch.manual_seed(0)
from_cache = probe.classifier(cached)

print("cached features:", tuple(cached.shape), "per batch of", len(images))
print("same logits, bit for bit, with dropout active:", torch.equal(full, from_cache))

# %% [markdown]
# With random augmentation it breaks down: each epoch crops each image
# differently, so its features change, and a cache would freeze one crop
# forever. Here are the features of the same eight images under two random crops:

# %%
with torch.no_grad():
    crop_1 = probe.features(torch.stack([train_tf(image) for image in splits.train.images[:8]]))
    crop_2 = probe.features(torch.stack([train_tf(image) for image in splits.train.images[:8]]))
print("features identical across two random crops:", torch.equal(crop_1, crop_2))
print(f"largest difference: {(crop_1 - crop_2).abs().max().item():.4f}")
print(run_label(probe.weights_label, DATA))

# %% [markdown]
# So caching is exact for the lecture's 224-px runs (no augmentation) and not
# for its 64-px run (random crops). How much time it saves, measured on the CPU
# where these checks ran:

# %%
with torch.no_grad():
    start = time.perf_counter()
    features = torch.flatten(probe.avgpool(probe.features(images)), 1)
    conv_seconds = time.perf_counter() - start
    start = time.perf_counter()
    probe.classifier(features)
    head_seconds = time.perf_counter() - start
cpu = f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
print(f"{len(images)} images at {SIZE} px on the {cpu} ({probe.weights_label}):")
print(f"  convolutional part {conv_seconds * 1000:7.1f} ms, classifier {head_seconds * 1000:6.1f} ms")
print(f"  with a cache, every epoch after the first skips the {conv_seconds * 1000:.1f} ms part")

# %% [markdown]
# The saving grows with the input size. The convolutions are 72% of VGG16's
# multiply-adds at 32 px (0.31 of 0.44 GMACs), 91% at 64 px, and 99% at
# 224 px (15.3 of 15.5 GMACs, lesson 4). At 224 px a cached epoch costs about
# a hundredth of a normal one. The course's fast path (`solutions.fast`, for
# instructors) uses exactly this to rerun the lecture's 224-px protocols on a
# GPU.
#
# ## Summary
#
# - `course.training.train` runs the lecture's loop and returns a `History`;
#   `course.plots` turns it into loss and accuracy curves, and `predict` plus
#   the plots give a prediction grid and a confusion matrix.
# - Linear probe, fc6 + fc7 + head, and from scratch differ in what trains,
#   and their cost grows with it.
# - The lecture's reported runs were linear probes; quote its figures as the
#   lecture's, and measured figures with their machine, weights and data.
# - Frozen convolutions + no random augmentation = features you can compute
#   once and cache, with exactly the same result.
#
# **Exercise:** task 7 of `course/exercises/transfer_learning.py`
# (`train_and_evaluate`) asks you to write a short version of this loop
# yourself.
# Next: [Lesson 6, beyond VGG16](06_beyond_vgg16.ipynb).
