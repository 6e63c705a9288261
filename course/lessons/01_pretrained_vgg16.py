# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 1: A pretrained VGG16
#
# Transfer learning starts from a network someone else trained on a large data
# set. In this unit that network is VGG16, trained on ImageNet (1.28 million
# photos, 1,000 classes), and the new task is CIFAR-10 (60,000 tiny photos,
# 10 classes).
#
# In this lesson you will:
#
# - load VGG16 through torchvision's weights API, with or without a network;
# - see its three blocks, `features`, `avgpool` and `classifier`, and where its
#   138 million parameters live;
# - follow an image through the network at 32, 64 and 224 pixels, and see what
#   the adaptive average pool does to each.

# %% tags=["parameters"]
# None follows the COURSE_QUICK environment variable; True forces quick mode
# (laptop: CPU, random VGG16 weights, a few images), False the real mode.
QUICK = None

# %%
import tempfile
from pathlib import Path

import torch
from torch import nn

from course.errors import WeightsError
from course.models import count_parameters, describe, load_model
from course.doctor import print_summary
from course.quick import QuickWeights, banner, quick_mode

QUICK = quick_mode(QUICK)
# This lesson is about VGG16's structure: shapes and parameter counts need no trained
# weights, so quick mode skips the 528 MB file. Lessons 4-6 use a pretrained network.
WEIGHTS = "random" if QUICK else "imagenet"
torch.manual_seed(123)
print(banner(QUICK, QuickWeights(
    "vgg16", WEIGHTS, f"VGG16 with {WEIGHTS} weights",
    "this lesson shows structure (shapes, parameter counts, what freezing and a new head do), "
    "which does not depend on the weights")))
DIAGNOSIS = print_summary("01")  # what this lesson uses, and the fix for what is missing

# %% [markdown]
# ## The weights API
#
# torchvision names each set of pretrained weights with an enum member. The
# member knows where its file lives online, which classes it predicts, and how
# its inputs were preprocessed during training. Nothing is downloaded until you
# build a model with it.

# %%
from torchvision.models import VGG16_Weights

imagenet_weights = VGG16_Weights.IMAGENET1K_V1
meta = imagenet_weights.meta
print("file:      ", imagenet_weights.url)
print("parameters:", f"{meta['num_params']:,}")
print("classes:   ", len(meta["categories"]), "e.g.", meta["categories"][:3])
print("preprocess:", imagenet_weights.transforms())

# %% [markdown]
# The preprocessing matters: these weights were trained on 224-pixel crops,
# normalized with ImageNet's channel means and standard deviations. Lesson 4
# comes back to both.
#
# `torchvision.models.vgg16(weights=VGG16_Weights.IMAGENET1K_V1)` downloads the
# file once into torch's cache and reads it from there afterwards. That cache
# is an ordinary folder: you can also copy the file into it by hand on a
# machine without network.
#
# The lecture writes `models.vgg16(pretrained=True)`. That is the spelling from
# before torchvision 0.13, which replaced it with the weights API:
#
# | the lecture (torchvision < 0.13) | today |
# | --- | --- |
# | `vgg16(pretrained=True)` | `vgg16(weights=VGG16_Weights.IMAGENET1K_V1)` (or `weights="DEFAULT"`, the best weights torchvision has) |
# | `vgg16(pretrained=False)` | `vgg16(weights=None)` |
#
# The old argument still works here, with a warning that it may be removed;
# on the `meta` device (shapes only, nothing downloaded) we can read the warning:

# %%
import warnings

import torchvision

with warnings.catch_warnings(record=True) as caught, torch.device("meta"):
    warnings.simplefilter("always")
    torchvision.models.vgg16(pretrained=False)
print(f"torchvision {torchvision.__version__}, vgg16(pretrained=False) warns:")
for warning in caught:
    print(" -", str(warning.message).splitlines()[0])

# %%
cached_file = Path(torch.hub.get_dir()) / "checkpoints" / Path(imagenet_weights.url).name
print("torch looks for the file here:", cached_file)
print("present:", cached_file.exists())

# %% [markdown]
# ## Loading weights offline
#
# `course.models.load_model` wraps the weights API with three choices:
# `"imagenet"` (through that cache), a path to a local weights file, or
# `"random"`. When the ImageNet file is missing and the machine is offline
# (`COURSE_OFFLINE=1`), it stops with one error that says which file to put
# where, instead of a long download traceback:

# %%
try:
    load_model("vgg16", weights="imagenet", offline=True)
    print("The ImageNet weights are in the cache: no download needed.")
except WeightsError as error:
    print(error)

# %% [markdown]
# A local file is any state dict saved with `torch.save(model.state_dict(), path)`.
# To keep this demonstration small we save and reload a ResNet-18 with random
# weights (45 MB instead of VGG16's 528 MB); it works the same for any model.
# Loading checks every key and shape, so a file for another architecture fails
# with a message that names the file and the mismatch.

# %%
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "resnet18-random.pth"
    original = load_model("resnet18", weights="random")
    torch.save(original.state_dict(), path)

    reloaded = load_model("resnet18", weights=str(path))
    same = all(
        torch.equal(a, b)
        for a, b in zip(original.state_dict().values(), reloaded.state_dict().values(), strict=True)
    )
    print("weights label:", reloaded.weights_label)
    print("identical tensors after reloading:", same)

    try:
        load_model("resnet34", weights=str(path))
    except WeightsError as error:
        print("\nA ResNet-18 file loaded into a ResNet-34:")
        print(error)

# %% [markdown]
# ## The three blocks of VGG16
#
# Now the model this unit uses. Printing it shows its three blocks:
#
# - `features`: 13 convolutions (3x3, with ReLU) in five groups, each group
#   ending in a 2x2 max-pool that halves the image;
# - `avgpool`: an adaptive average pool that always outputs 7x7;
# - `classifier`: three fully connected layers, fc6 (25,088 to 4,096),
#   fc7 (4,096 to 4,096) and the output layer (4,096 to 1,000), with ReLU and
#   dropout between them.

# %%
model = load_model("vgg16", weights=WEIGHTS)
WEIGHTS_LABEL = model.weights_label
DATA = "none: random inputs (shapes do not depend on pixel values)"
print("weights:", WEIGHTS_LABEL)
model

# %% [markdown]
# Where do the parameters live? `course.models.describe` counts them by block.

# %%
print(describe(model))

# %% [markdown]
# The convolutions hold about 11% of the parameters but do nearly all of the
# computation (lesson 4 counts it); the fully connected layers hold about 89%,
# most of them in fc6 alone:

# %%
fc6 = model.classifier[0]
print(f"fc6: {count_parameters(fc6):,} parameters "
      f"({count_parameters(fc6) / count_parameters(model):.0%} of the model)")

# %% [markdown]
# ## An image's journey at 32, 64 and 224 pixels
#
# CIFAR-10 images are 32x32; ImageNet models were trained on 224x224. Each of
# the five max-pools halves the side, so the feature map that leaves `features`
# is the input side divided by 32. Forward hooks record the shape after each
# stage. (The input is random noise: shapes do not depend on pixel values.)

# %%
def stage_shapes(model: nn.Module, side: int) -> dict[str, tuple[int, ...]]:
    """Shapes after each group of convolutions, after `avgpool` and at the output."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(module, inputs, output):
            shapes[name] = tuple(output.shape)
        return hook

    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    stages = [(f"group {i}", pool) for i, pool in enumerate(pools, start=1)]
    stages.append(("avgpool", model.avgpool))
    hooks = [module.register_forward_hook(record(name)) for name, module in stages]
    model.eval()
    with torch.no_grad():
        shapes["output"] = tuple(model(torch.randn(1, 3, side, side)).shape)
    for hook in hooks:
        hook.remove()
    return shapes


table = {side: stage_shapes(model, side) for side in (32, 64, 224)}
print(f"{'stage':<10}" + "".join(f"{f'{side} px input':>22}" for side in table))
for stage in table[32]:
    print(f"{stage:<10}" + "".join(f"{str(shapes[stage]):>22}" for shapes in table.values()))

# %% [markdown]
# At every size `avgpool` hands the classifier a 512x7x7 map, so fc6 always
# gets its 25,088 inputs and any image size of at least 32 pixels runs. But
# look at what goes *into* the pool: a 1x1 map at 32 px, 2x2 at 64 px, 7x7 at
# 224 px.
#
# An adaptive pool picks its windows so that the output has the size you ask
# for. When the input is smaller than the output, windows overlap and values
# are copied. A 2x2 map with values 1 to 4 shows it:

# %%
tiny = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
print(nn.AdaptiveAvgPool2d(7)(tiny)[0, 0])

# %% [markdown]
# Each value is copied into a 3x3 corner and the middle row and column average
# their neighbours. At 32 px it is starker: the single 1x1 value is copied 49
# times. Let us check that on VGG16 itself:

# %%
with torch.no_grad():
    small_map = model.features(torch.randn(1, 3, 32, 32))  # (1, 512, 1, 1)
    pooled = model.avgpool(small_map)  # (1, 512, 7, 7)
print("feature map at 32 px:", tuple(small_map.shape))
print("all 49 positions equal the single 1x1 value:",
      torch.equal(pooled, small_map.expand_as(pooled)))

# %% [markdown]
# So at 32 px, fc6 sees 49 copies of one vector, where during ImageNet training
# it saw 49 different positions of a 224-pixel photo. The weights still run, but
# on inputs unlike anything they learned from. That is one reason the lecture
# resizes CIFAR-10 images up before feeding them to VGG16 (lesson 4).

# %% [markdown]
# ## Summary
#
# - `VGG16_Weights.IMAGENET1K_V1` describes the pretrained weights: file,
#   classes and preprocessing. The file is cached under `torch.hub.get_dir()`,
#   and `load_model` accepts that cache, a local file, or random weights.
# - VGG16 = `features` (13 conv layers, 14.7 M parameters) + `avgpool`
#   (always 7x7) + `classifier` (3 linear layers, 123.6 M parameters).
# - The feature map is the input side / 32: 1x1 at 32 px, 2x2 at 64 px,
#   7x7 at 224 px. The adaptive pool copies small maps up to 7x7.
#
# **Exercise:** Task 1 (load VGG16) in the exercise notebook
# `transfer_learning.ipynb` builds VGG16 with ImageNet, local-file or random
# weights.
# Next: [Lesson 2, freezing](02_freezing.ipynb).
