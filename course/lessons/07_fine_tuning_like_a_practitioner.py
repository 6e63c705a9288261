# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 7: Fine-tuning like a practitioner
#
# Lessons 5 and 6 trained with the lecture's recipe: one learning rate, constant
# until a plateau, the last epoch's weights. The guides practitioners learn from
# (PyTorch's tutorials, d2l's "Fine-Tuning", the Keras guide, fastai's
# `fine_tune`) add a handful of habits. This lesson measures each of them, one
# change at a time, with three seeds:
#
# - **staged** training (train the new head first, then unfreeze at a lower
#   rate) against training everything **jointly** from the start;
# - a **learning-rate range test** to choose the rate, then **warm-up + cosine**
#   decay against a **constant** rate;
# - **augmentation + weight decay** against neither;
# - the **best-validation checkpoint** with **early stopping** against the last epoch;
# - **BatchNorm frozen** against **re-estimated** while fine-tuning.
#
# Then it uses the result: it predicts an image of your own with the model's own
# preprocessing, saves the model *with* that preprocessing, reloads it and checks
# the predictions are identical, and measures test-time augmentation.

# %% tags=["parameters"]
# None follows the COURSE_QUICK environment variable; True forces quick mode
# (laptop: CPU, small CIFAR-10 subsets, cached features), False the real mode.
QUICK = None

# %%
# %matplotlib inline
import copy
import os
import time
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from course.data import CLASSES, load_cifar10
from course.doctor import print_summary, require_real
from course.errors import WeightsError
from course.features import extract_features
from course.finetune import (
    EarlyStopping,
    RandomViews,
    fit,
    load_finetuned,
    lr_range_test,
    param_group,
    predict_image,
    preprocess,
    read_image,
    save_finetuned,
    warmup_cosine,
)
from course.models import calibrate_batchnorm, load_model, trainable_parameters
from course.paths import cache_dir, env_flag
from course.plots import plot_comparison, plot_image_rows
from course.quick import banner, data_label, machine_label, quick_mode, run_label
from course.reporting import compare, summarize
from course.sources.member import stand_in_image
from course.training import evaluate

QUICK = quick_mode(QUICK)
SMALL = QUICK and env_flag("COURSE_TEST")  # the tests' smallest subsets
PER_CLASS = (20 if SMALL else 100) if QUICK else None  # images per class in each split
SIZE = 64  # input side in pixels: lesson 4 measured what 96 or 160 would add, and cost
TRAIN_FROM = 18 if QUICK else 14  # features[TRAIN_FROM:] and the head train; the rest is cached
BATCH = 64
EPOCHS = 4 if SMALL else 8
SEEDS = (1, 2) if SMALL else (1, 2, 3)
VIEWS = 2 if SMALL else 3  # augmented views of each training image, cached once
PATIENCE = 3  # early stopping: epochs without a better validation accuracy
DEVICE = "cpu" if QUICK else ("cuda" if torch.cuda.is_available() else "cpu")
MACHINE = machine_label()
LESSON_START = time.perf_counter()
torch.manual_seed(123)
print(banner(QUICK))
DIAGNOSIS = print_summary("07")  # what this lesson uses, and the fix for what is missing

# %% [markdown]
# ## Data, network, and the part that stays frozen
#
# The same pretrained MobileNetV2 as in lessons 4-6 (ImageNet weights, converted
# once from Google's published file, loaded offline) and small real subsets of
# CIFAR-10. Every comparison below trains many runs, so this lesson keeps each
# run small:
#
# - inputs of 64 px: a linear probe reaches less than at 96 px (lesson 4
#   measures how much), for less than half the compute;
# - in laptop mode only the network's last block (`features[18]`, a 1x1
#   convolution of 409,600 weights with its BatchNorm) and the new head train;
#   in the real mode `features[14:]`. Everything before is frozen, in eval mode,
#   and its output is computed once and cached (lesson 5): a run of 8 epochs
#   then takes seconds, not minutes (the baseline cell prints how many).
#   "Fine-tuning" below means these last layers, not the
#   whole network: say so whenever you quote these figures.

# %%
splits = load_cifar10(subset=PER_CLASS, allow_synthetic=QUICK)
DATA = data_label(splits)
try:
    backbone = load_model("mobilenet_v2", weights="imagenet").eval()
except WeightsError as error:
    print(f"No ImageNet MobileNetV2: {error}")
    backbone = load_model("mobilenet_v2", weights="random").eval()
require_real(splits, backbone, "Lesson 7's fine-tuning comparisons")
WEIGHTS_LABEL = backbone.weights_label
PREPROCESSING = backbone.preprocessing  # the normalization the weights were trained with
MEAN, STD = PREPROCESSING.mean, PREPROCESSING.std
LABEL = run_label(WEIGHTS_LABEL, DATA)
print(LABEL)
print("inputs:", PREPROCESSING.label, f"at {SIZE} px")

# %% [markdown]
# ### Augmentation on the cached path
#
# Random crops and flips change an image every epoch, which a feature cache
# cannot follow. A middle way: augment each training image a few times *once*,
# cache the frozen part's output for every version ("view"), and let every epoch
# draw one view of each image at random (`course.finetune.RandomViews`). View 0
# is the image itself, view 1 its mirror image, view 2 a random 32-px crop of
# the image padded by 4 pixels, flipped half of the time. This is weaker than
# fresh augmentation in every epoch (a few views, not endless ones), and exact
# otherwise.

# %%
def augmented_views(images: torch.Tensor, views: int, seed: int = 0) -> list[torch.Tensor]:
    """`views` versions of uint8 (N, 3, 32, 32) images: as they are, mirrored, random crops."""
    generator = torch.Generator().manual_seed(seed)
    out = [images, images.flip(-1)]
    padded = F.pad(images.float(), (4, 4, 4, 4), mode="reflect").to(torch.uint8)
    for _ in range(views - 2):
        n = len(images)
        dx = torch.randint(0, 9, (n,), generator=generator)
        dy = torch.randint(0, 9, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5
        crops = torch.stack([padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(n)])
        crops[flip] = crops[flip].flip(-1)
        out.append(crops)
    return out[:views]


train_views = augmented_views(splits.train.images, VIEWS)
plot_image_rows(
    {f"view {v}": view[:6] for v, view in enumerate(train_views)},
    column_titles=[CLASSES[int(c)] for c in splits.train.labels[:6]],
    title=f"The cached views of six training images\n{DATA}",
)

# %%
prefix = nn.Sequential(*backbone.features[:TRAIN_FROM]).eval()  # frozen, computed once


def features_of(images: torch.Tensor, labels: torch.Tensor, name: str) -> torch.Tensor:
    """The frozen prefix's output for these images at SIZE px, cached on disk."""
    split = SimpleNamespace(images=images, labels=labels, name=name)
    return extract_features(prefix, split, size=SIZE, mean=MEAN, std=STD)


start = time.perf_counter()
cached_views = torch.stack([
    features_of(view, splits.train.labels, f"train-view{v}") for v, view in enumerate(train_views)
])
valid_features = features_of(splits.valid.images, splits.valid.labels, "valid")
test_features = features_of(splits.test.images, splits.test.labels, "test")
test_mirrored = features_of(splits.test.images.flip(-1), splits.test.labels, "test-mirrored")
cache_seconds = time.perf_counter() - start
cached_images = len(splits.train) * VIEWS + 3 * len(splits.test)
print(f"frozen features[:{TRAIN_FROM}] of {cached_images:,} images at {SIZE} px: "
      f"{cache_seconds:.1f} s (computed now, or read back from an earlier run's cache); "
      f"one image -> {tuple(test_features.shape[1:])}")

# %% [markdown]
# The offline network's BatchNorm layers are folded into its convolutions (lesson 2):
# exact in eval mode, destroyed in train mode. `calibrate_batchnorm` measures the
# real statistics of the last block's BatchNorm on the cached training features and
# rescales its weights so that the eval-mode output stays the same. Only then can
# the BatchNorm comparison at the end train it.

# %%
last_block = copy.deepcopy(backbone.features[TRAIN_FROM:]).eval()
calibrate_batchnorm(last_block, cached_views[0].split(BATCH))
head_inputs = backbone.classifier[-1].in_features


def new_model(seed: int) -> nn.Sequential:
    """The trainable tail: the calibrated last block(s), pooling, dropout and a new 10-way head."""
    torch.manual_seed(seed)  # the new head's initial weights
    return nn.Sequential(
        copy.deepcopy(last_block), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(head_inputs, len(CLASSES)),
    ).requires_grad_(False)


def loaders(seed: int, augment: bool) -> dict:
    """Training batches (all views, or view 0 only), validation and test batches."""
    views = cached_views if augment else cached_views[:1]
    return {
        "train": RandomViews(views, splits.train.labels, batch_size=BATCH, seed=seed),
        "valid": DataLoader(TensorDataset(valid_features, splits.valid.labels), batch_size=256),
        "test": DataLoader(TensorDataset(test_features, splits.test.labels), batch_size=256),
    }


print(f"trainable tail: features[{TRAIN_FROM}:] + a Linear({head_inputs}, {len(CLASSES)}) head, "
      f"{trainable_parameters(new_model(0).requires_grad_(True)):,} parameters")

# %% [markdown]
# ## Choosing the learning rate: a range test
#
# Too low a rate wastes epochs; too high a rate makes the loss jump or explode.
# A range test (Leslie Smith's, popularised by fastai's `lr_find`) trains for a
# hundred or so batches while raising the rate geometrically, records the loss,
# and puts the model back as it was. The loss first barely moves, then falls
# faster and faster, then explodes. A good rate sits below the explosion. The
# classic rule of thumb takes a tenth of the rate where the smoothed loss was
# lowest, a cautious choice; each run here gets only 8 epochs, so we take a
# third: faster, and still below every rate where the loss rose.
#
# The test runs on the tail as the runs below train it: the head at the rate
# shown, the last block at a tenth of it (discriminative rates, lesson 6).

# %%
require_real(splits, backbone, "The learning-rate range test")
probe_model = new_model(0)
groups = [param_group("last block", probe_model[0], 0.1),
          param_group("head", probe_model[4], 1.0)]
finder = lr_range_test(probe_model, torch.optim.SGD(groups, momentum=0.9),
                       loaders(0, augment=False)["train"], start_lr=1e-4, end_lr=10.0,
                       steps=40 if SMALL else 100, divide=3)
LR = finder.suggestion
figure, axis = plt.subplots(figsize=(6, 3.2))
axis.plot(finder.lrs, finder.losses)
axis.axvline(finder.lowest, color="grey", linestyle=":", label=f"lowest loss, {finder.lowest:.3g}")
axis.axvline(LR, color="tab:red", linestyle="--", label=f"chosen: a third, {LR:.3g}")
axis.set(xscale="log", xlabel="head learning rate (last block: a tenth)",
         ylabel="smoothed training loss", title=f"Learning-rate range test\n{LABEL}")
axis.legend()
plt.show()
print(f"{len(finder.lrs)} steps; lowest smoothed loss at a head rate of {finder.lowest:.3g}: "
      f"every run below uses {LR:.3g} for the head and {LR / 10:.3g} for the last block.")

# %% [markdown]
# ## The baseline and one change at a time
#
# Every comparison starts from one baseline recipe and changes one thing:
#
# | | baseline | the change |
# | --- | --- | --- |
# | what trains, when | head and last block together from epoch 1 | **staged**: the head alone for half the epochs, then the block joins at its lower rate |
# | schedule | constant rate | **warm-up + cosine**: one epoch rising from a tenth, then a half cosine to 0 |
# | regularization | none | **augmentation + weight decay** (3 cached views, `weight_decay=5e-4`) |
# | which weights | the last epoch's | **early stopping**: the best validation epoch, stopped after 3 without progress |
# | BatchNorm | frozen (eval mode, statistics kept) | **re-estimated**: in train mode, its statistics and weights adapt |
#
# Every run: SGD with momentum 0.9, batches of 64, the rates chosen above, the
# same images; the seed sets the head's start, the order of batches and the views
# drawn. The baseline runs once per seed and serves every comparison. Its
# early-stopping figures come from the same runs: an `EarlyStopping` watches
# every baseline run and, once 3 epochs have passed without a better validation
# accuracy, keeps the state it would have stopped with. Training is
# deterministic for a given seed, so that is exactly what a run stopped there
# would have kept (`tests/test_finetune.py` checks it).

# %%
def run(seed: int, *, staged: bool = False, cosine: bool = False, augment: bool = False,
        weight_decay: float = 0.0, batchnorm: bool = False):
    """Train one tail; return its last-epoch test accuracy and what happened."""
    model = new_model(seed)
    data = loaders(seed, augment)
    # Watches the run, never stops it: it keeps what early stopping would have kept.
    stopper = EarlyStopping(patience=PATIENCE, stop_training=False)
    steps = EPOCHS * len(data["train"])

    def optimizer_for(head_lr: float, block: bool) -> torch.optim.SGD:
        groups = [param_group("head", model[4], head_lr, weight_decay=weight_decay)]
        if block:
            groups.append(param_group("last block", model[0], head_lr / 10,
                                      weight_decay=weight_decay, batchnorm=batchnorm))
        return torch.optim.SGD(groups, momentum=0.9)

    if staged:
        first = EPOCHS // 2  # the head alone, then the block joins at its lower rate
        fit(model, optimizer_for(LR, block=False), data, epochs=first, seed=seed)
        history = fit(model, optimizer_for(LR, block=True), data,
                      epochs=EPOCHS - first, seed=seed)
    else:
        optimizer = optimizer_for(LR, block=True)
        scheduler = (warmup_cosine(optimizer, warmup_steps=len(data["train"]), total_steps=steps)
                     if cosine else None)
        history = fit(model, optimizer, data, epochs=EPOCHS, scheduler=scheduler,
                      stopper=stopper, seed=seed)
    result = SimpleNamespace(model=model, history=history, last=evaluate(model, data["test"]))
    if not staged:
        early = copy.deepcopy(model)
        stopper.restore(early)
        result.early_model, result.best = early, evaluate(early, data["test"])
        result.best_epoch, result.stopped_epoch = stopper.best_epoch, stopper.stopped_epoch
    return result


def table(results: dict[str, list[float]], what: str = "test accuracy"):
    """Print each recipe's mean, seeds and range; return the plot of every seed."""
    print(f"{what} (%), {len(SEEDS)} seeds, {EPOCHS} epochs, {SIZE} px; measured on {MACHINE}")
    for name, values in results.items():
        print(f"  {name:<30} {summarize(values)}")
    return plot_comparison(results, chance=100 / len(CLASSES),
                           title=f"{what}, {len(SEEDS)} seeds, {EPOCHS} epochs, {SIZE} px\n{LABEL}")


require_real(splits, backbone, "The baseline runs")
start = time.perf_counter()
baseline = [run(seed) for seed in SEEDS]
run_seconds = (time.perf_counter() - start) / len(SEEDS)
print(f"baseline: {summarize([r.last for r in baseline])} test accuracy; "
      f"{run_seconds:.1f} s per run of {EPOCHS} epochs on {MACHINE}")

# %% [markdown]
# ### Staged against joint
#
# The new head starts random. Trained jointly, its large, random early gradients
# flow into the pretrained block from the first step. Staged training (Keras's
# recipe, fastai's `fine_tune`) first fits the head on frozen features, then
# unfreezes the block with lower rates, when the gradients carry signal.

# %%
require_real(splits, backbone, "Staged against joint")
staged = [run(seed, staged=True) for seed in SEEDS]
results = {"joint (baseline)": [r.last for r in baseline],
           "staged": [r.last for r in staged]}
figure = table(results)
print(compare("staged", results["staged"], "joint", results["joint (baseline)"], paired=True))
figure

# %% [markdown]
# ### Warm-up + cosine against a constant rate
#
# A warm-up starts with small steps while the head is still random and momentum
# has no history; a cosine decay ends with small steps, so the last epochs settle
# instead of bouncing around a minimum. Same peak rate as the constant baseline.

# %%
require_real(splits, backbone, "Warm-up + cosine against a constant rate")
cosine = [run(seed, cosine=True) for seed in SEEDS]
results = {"constant (baseline)": [r.last for r in baseline],
           "warm-up + cosine": [r.last for r in cosine]}
figure = table(results)
print(compare("warm-up + cosine", results["warm-up + cosine"],
              "constant", results["constant (baseline)"], paired=True))
figure

# %% [markdown]
# ### Augmentation + weight decay against neither
#
# With a thousand training images the tail can memorise them. Augmentation shows
# it more varied images; weight decay pulls every weight towards zero a little at
# each step. Both trade a little training fit for validation accuracy.

# %%
require_real(splits, backbone, "Augmentation and weight decay")
regularized = [run(seed, augment=True, weight_decay=5e-4) for seed in SEEDS]
results = {"none (baseline)": [r.last for r in baseline],
           "augmentation + weight decay": [r.last for r in regularized]}
figure = table(results)
train_gap = {name: sum(r.history.train_loss[-1] for r in runs) / len(runs)
             for name, runs in (("none", baseline), ("augmentation + weight decay", regularized))}
print("mean training loss in the last epoch: " +
      ", ".join(f"{name} {loss:.3f}" for name, loss in train_gap.items()))
print(compare("augmentation + weight decay", results["augmentation + weight decay"],
              "no regularization", results["none (baseline)"], paired=True))
figure

# %% [markdown]
# ### The best-validation checkpoint against the last epoch
#
# Every figure in lessons 4-6 is the last epoch's. A practitioner keeps the
# weights of the epoch with the best *validation* accuracy, and stops once it
# has not improved for a few epochs (`EarlyStopping(patience=3)`). The test set
# stays untouched until the end: choosing the epoch on it would make its
# accuracy optimistic. (No new training here: the baseline runs were watched.)

# %%
require_real(splits, backbone, "Early stopping against the last epoch")
early = baseline
results = {"last epoch (baseline)": [r.last for r in baseline],
           "best validation, early stop": [r.best for r in early]}
figure = table(results)
for seed, r in zip(SEEDS, early, strict=True):
    stopped = (f"stopped after epoch {r.stopped_epoch}" if r.stopped_epoch
               else f"ran all {EPOCHS} epochs")
    print(f"  seed {seed}: best validation accuracy at epoch {r.best_epoch}, {stopped}")
print(compare("the best-validation checkpoint", results["best validation, early stop"],
              "the last epoch", results["last epoch (baseline)"], paired=True))
figure

# %% [markdown]
# ### BatchNorm frozen against re-estimated
#
# In the baseline the last block's BatchNorm is frozen: eval mode, its statistics
# and weights fixed (lesson 2). The alternative trains it: in train mode each batch
# is normalized with its own statistics, the running statistics follow the new
# data, and its weight and bias learn. That needed the calibration above: the
# folded layer would otherwise normalize with meaningless statistics.

# %%
require_real(splits, backbone, "BatchNorm frozen against re-estimated")
retrained_bn = [run(seed, batchnorm=True) for seed in SEEDS]
results = {"frozen BatchNorm (baseline)": [r.last for r in baseline],
           "re-estimated BatchNorm": [r.last for r in retrained_bn]}
figure = table(results)
print(compare("re-estimated BatchNorm", results["re-estimated BatchNorm"],
              "frozen BatchNorm", results["frozen BatchNorm (baseline)"], paired=True))
figure

# %% [markdown]
# Read each sentence above with its table: a difference within the seed spread
# is no evidence on this budget, and a real one holds for this network, these
# layers and this many images. With more data, more epochs or more layers
# training, the same comparisons can come out differently; the code above reruns
# them (set `PER_CLASS` or `EPOCHS`, or run the real mode).
#
# ## Using the model
#
# A fine-tuned model is useful once it classifies images it has never seen. Three
# things go wrong in practice: the new image is preprocessed differently from the
# training images, the saved file loses the preprocessing (or the model's quirks),
# and a single view of the image is less reliable than a few.
#
# ### Saving the model with its preprocessing
#
# We take the early-stopped model of the first seed and put its trained tail back
# into the whole network. `save_finetuned` writes one file with the weights, the
# architecture's name, the input size, the normalization and the class names
# (and the offline network's TensorFlow-style padding, which a state dict alone
# would lose). It holds only tensors, numbers and strings, so `torch.load(...,
# weights_only=True)` reads it without running any code.

# %%
require_real(splits, backbone, "Saving and reloading the fine-tuned model")
chosen = early[0].early_model  # the best-validation state of the first seed
network = copy.deepcopy(backbone)
for offset, block in enumerate(chosen[0]):
    network.features[TRAIN_FROM + offset] = block
network.classifier[-1] = chosen[4]
network.eval()

path = save_finetuned(network, cache_dir() / "lesson07" / "cifar10_mobilenet_v2.pt",
                      architecture="mobilenet_v2", size=SIZE, preprocessing=PREPROCESSING,
                      classes=CLASSES)
reloaded = load_finetuned(path)
print(f"saved {path.stat().st_size / 1e6:.1f} MB; reloaded: {reloaded.weights_label}")
print(f"it carries: {reloaded.input_size} px, {reloaded.preprocessing.label}, "
      f"classes {', '.join(reloaded.classes[:3])}, ...")

CHECKED = 64 if SMALL else 200
images = splits.test.images[:CHECKED]
inputs = preprocess(images, SIZE, PREPROCESSING)  # what predict_image does to one image
with torch.no_grad():
    before, after = network(inputs), reloaded(inputs)
    from_cache = chosen.eval()(test_features[:CHECKED])
print(f"on the first {CHECKED} test images: logits identical after reloading: "
      f"{torch.equal(before, after)}; same predictions: "
      f"{int((before.argmax(1) == after.argmax(1)).sum())} of {CHECKED}")
print(f"the whole network predicts what its tail predicted from the cache for "
      f"{int((before.argmax(1) == from_cache.argmax(1)).sum())} of {CHECKED} images")

# %% [markdown]
# ### Your own image
#
# `assets/my_image.jpg` stands in for a photo of your own: it is a CIFAR-10
# training image (a horse; `assets/README.md` says which), because no real photo
# can be shipped here. The kit ships it; elsewhere `stand_in_image` copies it
# from the CIFAR-10 training data the first time this cell runs, and leaves a
# file already there alone. It is not in the test set, and the cell checks that it is
# not among the images this lesson trained or validated on either. The model's
# own preprocessing (`predict_image` reads it from the model) resizes it to 64 px
# and normalizes it as in training; a photo that is not square would be resized
# and cropped in the centre. Replace the file (or `MY_IMAGE`) with your own.

# %%
MY_IMAGE = stand_in_image(Path("assets") / "my_image.jpg")
mine = read_image(MY_IMAGE)
seen = torch.cat([splits.train.images, splits.valid.images]).float()
closest = (seen - mine.float()).abs().mean(dim=(1, 2, 3)).min().item()
print(f"{MY_IMAGE}: {mine.shape[2]}x{mine.shape[1]} pixels; the closest of the "
      f"{len(seen):,} training and validation images differs by {closest:.1f} "
      f"(mean absolute difference, 0-255): "
      f"{'not one the model has seen' if closest > 1 else 'ONE THE MODEL HAS SEEN'}")
for tta in (False, True):
    probabilities = predict_image(reloaded, MY_IMAGE, tta=tta)
    top = probabilities.topk(3)
    print(("with test-time augmentation: " if tta else "as it is:                   ") +
          ", ".join(f"{reloaded.classes[i]} {p:.1%}" for p, i in zip(top.values, top.indices,
                                                                     strict=True)))
plot_image_rows({"my image": mine.unsqueeze(0)}, column_titles=[MY_IMAGE.name],
                title=f"The image to classify\n{DATA}")

# %% [markdown]
# ### Test-time augmentation, measured
#
# Test-time augmentation (TTA) classifies a few versions of each test image and
# averages the class probabilities. The cheapest version uses the image and its
# mirror image (`flip_tta`): objects in CIFAR-10 look as natural mirrored, and
# the model trained on mirrored views. Here the mirrored test images' features
# are cached too, so the cost is one more pass of the tail.

# %%
require_real(splits, backbone, "Test-time augmentation")
plain, with_tta = [], []
labels = splits.test.labels
for r in early:
    model = r.early_model.eval()
    with torch.no_grad():
        p_plain = F.softmax(model(test_features), dim=1)
        p_mirror = F.softmax(model(test_mirrored), dim=1)
    plain.append(100 * (p_plain.argmax(1) == labels).float().mean().item())
    with_tta.append(100 * (((p_plain + p_mirror) / 2).argmax(1) == labels).float().mean().item())
results = {"one view": plain, "mirror TTA": with_tta}
figure = table(results, what="test accuracy of the early-stopped models")
print(compare("mirror TTA", with_tta, "one view", plain, paired=True))
figure

# %% [markdown]
# ## Time
#
# This lesson's whole budget, measured on this machine:

# %%
print(f"lesson run time so far: {time.perf_counter() - LESSON_START:.0f} s on {MACHINE}; "
      f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other programs "
      "running at the same time slow it down)")

# %% [markdown]
# ## Summary
#
# - Choose the rate with a range test, not by habit: a third to a tenth of the
#   rate where the loss was lowest is a sound start, and the ratio between
#   layer groups stays.
# - Staged training, warm-up + cosine, augmentation + weight decay, early
#   stopping and BatchNorm handling are each one change from a baseline: measure
#   each with seeds, and believe a difference only when it exceeds the seed
#   spread. The sentences above say which did on this budget.
# - On the cached path, augmentation means a few cached views per image.
# - A fine-tuned model is the weights *and* the preprocessing, the input size,
#   the class names and any quirk of the architecture: save them together,
#   reload, and check the predictions are identical before you ship it.
# - Test-time augmentation costs one more forward pass per view; measure what
#   it buys.
#
# **Exercise:** the second exercise notebook, "Fine-tuning in stages"
# (`fine_tuning_in_stages.ipynb`), asks you to write your own parameter groups,
# a two-stage schedule, a best-state keeper and `predict(image_path)`.
# Back to the start: [the lesson list](README.md).
