# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 4: Inputs, their size and their normalization
#
# A pretrained network expects its inputs to look like the ones it was trained
# on: 224-pixel photos, normalized with ImageNet's channel statistics. CIFAR-10
# images are 32 pixels wide. In this lesson you will:
#
# - resize CIFAR-10 images from 32 to 64 and 224 pixels and look at them;
# - count what that costs: about 49 times the convolution work at 224 px;
# - compare ImageNet's normalization with CIFAR-10's own statistics, and see
#   why the lecture's way of computing those statistics is not exact;
# - measure what the lecture's `0.2255` typo does to the blue channel.

# %% tags=["parameters"]
# None follows the COURSE_QUICK environment variable; True forces quick mode
# (random weights, a few images, CPU), False forces the real mode.
QUICK = None

# %%
# %matplotlib inline
import platform
import time

import matplotlib.pyplot as plt
import torch
import torchvision
from torch import nn
from torchvision.transforms import v2

from course.data import CLASSES, LECTURE_TYPO_STD, NORMALIZATIONS, load_cifar10
from course.models import load_model
from course.quick import banner, data_label, quick_mode
from course.training import pick_device

QUICK = quick_mode(QUICK)
WEIGHTS = "random" if QUICK else "imagenet"
DEVICE = torch.device("cpu") if QUICK else pick_device()
torch.manual_seed(123)
print(banner(QUICK))

# %%
splits = load_cifar10(subset=50 if QUICK else None, allow_synthetic=QUICK)
DATA = data_label(splits)
print(DATA)

# %% [markdown]
# ## Resizing: 32, 64 and 224 pixels
#
# Resizing cannot add detail that a 32-pixel image never had: it interpolates
# between the existing pixels. What it changes is the *scale* of things: a
# car that fills a CIFAR-10 image is 32 pixels wide; at 224 pixels it is as
# wide as the objects VGG16's filters learned to recognise on ImageNet.

# %%
SIDES = (32, 64, 224)
one_per_class = torch.stack([
    splits.test.images[(splits.test.labels == c).nonzero()[0, 0]] for c in range(5)
])

fig, axes = plt.subplots(len(SIDES), len(one_per_class), figsize=(10, 6.4))
for row, side in enumerate(SIDES):
    resized = v2.Resize(side, antialias=True)(one_per_class)
    for col, image in enumerate(resized):
        ax = axes[row, col]
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if col == 0:
            ax.set_ylabel(f"{side} px")
        if row == 0:
            ax.set_title(CLASSES[col])
fig.suptitle(f"The same test images at three sizes\n{DATA}", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the bigger inputs cost
#
# A convolution computes, for every output value, one multiply-add per input
# channel and kernel position. Its cost therefore grows with the area of the
# feature map: 7 times the side means 49 times the work. Forward hooks count
# the multiply-adds (MACs) of every layer. We again build VGG16 on the `meta`
# device: counting needs the shapes, not the values.

# %%
def count_macs(model: nn.Module, side: int) -> dict[str, int]:
    """Multiply-adds of one image through `features` (convolutions) and `classifier`."""
    macs = {"features": 0, "classifier": 0}

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        macs["features"] += output.numel() * per_output

    def linear_hook(module: nn.Linear, inputs, output) -> None:
        macs["classifier"] += output.numel() * module.in_features

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    model(torch.zeros(1, 3, side, side, device="meta"))
    for hook in hooks:
        hook.remove()
    return macs


with torch.device("meta"):
    shapes_only = torchvision.models.vgg16()
macs = {side: count_macs(shapes_only, side) for side in SIDES}

print(f"{'input':>6} {'conv GMACs':>11} {'classifier GMACs':>17} {'conv work vs 32 px':>19}")
for side, m in macs.items():
    ratio = m["features"] / macs[32]["features"]
    print(f"{side:>4}px {m['features'] / 1e9:>11.3f} {m['classifier'] / 1e9:>17.3f} {ratio:>18.1f}x")

# %% [markdown]
# The convolutions cost 49 times more at 224 px than at 32 px (15.3 GMACs per
# image, against 0.31), while the classifier costs the same at every size:
# the adaptive pool always hands it 7x7 (lesson 1). The ratio is exactly
# (224/32)^2 = 49 because every layer's map grows by 7 in each direction.
#
# What does that mean in seconds? Here is the time of one forward pass of
# `features` on this machine (a measurement, so it depends on the hardware
# and on what else runs on it):

# %%
def seconds_per_image(model: nn.Module, side: int, device: torch.device) -> float:
    """Best of three timings of `features`, per image, on batches of about equal total work."""
    batch = max(1, round(BASE_BATCH * (32 / side) ** 2))
    x = torch.randn(batch, 3, side, side, device=device)
    best = float("inf")
    with torch.no_grad():
        model.features(x)  # warm-up: the first call pays for memory allocation
        for _ in range(3):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.features(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, (time.perf_counter() - start) / batch)
    return best


BASE_BATCH = 1024 if DEVICE.type == "cuda" else 64  # images per batch at 32 px; fewer when larger
model = load_model("vgg16", weights=WEIGHTS).to(DEVICE).eval()
machine = f"{DEVICE.type}: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
timings = {side: seconds_per_image(model, side, DEVICE) for side in SIDES}
print(f"measured on {machine} (weights: {model.weights_label}; timings do not depend on them)")
for side, seconds in timings.items():
    print(f"{side:>4}px  {seconds * 1000:8.2f} ms per image  ({seconds / timings[32]:5.1f}x the 32-px time)")

# %% [markdown]
# Measured ratios can differ from 49 either way: small inputs may not keep the
# hardware busy (so they cost more per multiply-add), and other programs
# running at the same time disturb the measurement. The lecture's 224-px run
# took 213 minutes against 38 minutes at 64 px (its figures, on its GPU).
#
# ## Normalization
#
# `Normalize(mean, std)` maps each channel `x` to `(x - mean) / std`. The
# lecture uses ImageNet's statistics, because the pretrained filters were
# trained on inputs normalized that way. It also tries CIFAR-10's own
# statistics. The course ships both:

# %%
def show(label: str, stats) -> None:
    mean, std = stats
    def fmt(values) -> str:
        return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"

    print(f"{label:<44} mean {fmt(mean)}  std {fmt(std)}")


# As printed by the lecture's notebook 1.2-vgg16-standardized.ipynb (its from-scratch VGG16):
# 64-px images, averages of per-batch values.
LECTURE_CIFAR10 = ((0.4894929, 0.4773143, 0.44135574), (0.23783134, 0.23433842, 0.25187373))

show("ImageNet (what the weights expect)", NORMALIZATIONS["imagenet"])
show("CIFAR-10, exact, 45,000 training images", NORMALIZATIONS["cifar10"])
show("CIFAR-10, the lecture's printed numbers", LECTURE_CIFAR10)

# %% [markdown]
# The lecture's numbers are lower than the exact ones, especially the
# standard deviations. The lecture computed them like this: resize every image
# to 70 px and crop 64, then for each batch of 256 images take the mean and
# standard deviation of each channel, and finally average those per-batch
# values over all batches. Let us run that method on our data, once at 32 px
# and once the lecture's way at 64 px:

# %%
def lecture_method(images: torch.Tensor, transform, batch_size: int):
    """The lecture's recipe: mean over batches of each batch's per-channel mean and std."""
    means, stds = [], []
    for start in range(0, len(images), batch_size):
        batch = transform(images[start:start + batch_size])
        means.append(batch.mean(dim=(0, 2, 3)))
        stds.append(batch.std(dim=(0, 2, 3), correction=0))
    return tuple(torch.stack(means).mean(0).tolist()), tuple(torch.stack(stds).mean(0).tolist())


BATCH = 64 if QUICK else 256
at_32 = v2.ToDtype(torch.float32, scale=True)
at_64 = v2.Compose([v2.Resize(70, antialias=True), v2.CenterCrop(64),
                    v2.ToDtype(torch.float32, scale=True)])
train_images = splits.train.images
print(f"on {len(train_images):,} training images, batches of {BATCH} ({DATA})")
show("lecture's method, 32 px", lecture_method(train_images, at_32, BATCH))
show("lecture's method, 70 px resize + 64 px crop", lecture_method(train_images, at_64, BATCH))

# %% [markdown]
# Two things make the lecture's numbers differ from the data set's:
#
# 1. **Averaging standard deviations is not the standard deviation of the whole.**
#    The variance of all pixels is the average variance *within* batches plus
#    the variance *between* batch means (the law of total variance), and
#    averaging square roots gives less than the square root of the average.
#    Both make the average of per-batch stds too small. With batches of 256
#    the error is small, but it never goes away. (On a few hundred images, as
#    in quick mode, sampling noise can be larger than this effect.)
# 2. **The resize changes the pixels.** Upsampling interpolates: new pixels
#    are weighted averages of their neighbours, so they spread less than the
#    originals, and the crop drops the border. That is the larger effect here.
#
# The exact statistics take one pass over all training pixels, adding up the
# values and their squares in float64. `NORMALIZATIONS["cifar10"]` holds the
# result for this data at 32 px.
#
# Does it matter which normalization you use? The lecture found no meaningful
# difference for CIFAR-10. With pretrained weights the usual choice is the
# statistics the weights were trained with, ImageNet's; lesson 6 says when your
# own are the better choice.
#
# ## The `0.2255` typo
#
# The lecture's *test* transform normalizes the blue channel with std
# `0.2255` instead of `0.225` (its training transform has the right value):

# %%
print("ImageNet std:     ", NORMALIZATIONS["imagenet"][1])
print("lecture's typo:   ", LECTURE_TYPO_STD)

mean_blue, std_blue, typo_blue = NORMALIZATIONS["imagenet"][0][2], 0.225, LECTURE_TYPO_STD[2]
blue = splits.test.images[:, 2].float() / 255
right = (blue - mean_blue) / std_blue
typo = (blue - mean_blue) / typo_blue
print(f"\nblue channel of {len(blue):,} test images ({DATA}):")
print(f"  every value scaled by 0.225/0.2255 = {std_blue / typo_blue:.5f} "
      f"(shrunk by {1 - std_blue / typo_blue:.2%})")
print(f"  largest change {(typo - right).abs().max().item():.5f}, "
      f"mean change {(typo - right).abs().mean().item():.5f}, "
      f"on values of typical size {right.abs().mean().item():.3f}")
print(f"  largest possible change: {max(mean_blue, 1 - mean_blue) * (1 / std_blue - 1 / typo_blue):.5f}")

# %% [markdown]
# A 0.22% shrink of one channel is far below what changes a prediction: this
# typo is harmless for the lecture's accuracies. The lesson is the *kind* of
# bug: training and test transforms written twice, by hand, drift apart.
# Write them once, in one function, and derive both from it.
#
# ## Summary
#
# - Resizing 32 to 224 px scales objects up to ImageNet's size and multiplies
#   the convolution work by (224/32)^2 = 49; the classifier's cost stays the same.
# - ImageNet's statistics are what pretrained weights expect; CIFAR-10's exact
#   statistics are in `NORMALIZATIONS["cifar10"]`.
# - Averaging per-batch standard deviations underestimates the data set's
#   standard deviation; computing them after a resize changes them too.
# - The `0.2255` typo shrinks the normalized blue channel by 0.22%.
#
# **Exercise:** in `course/exercises/transfer_learning.py`, task 4
# (`build_transforms`) builds the training and test transforms from one
# definition, and task 6 (`channel_stats`) computes the exact statistics in
# one streaming pass.
# Next: [Lesson 5, training and evaluating](05_training_and_evaluating.ipynb).
