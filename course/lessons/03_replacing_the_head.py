# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 3: Replacing the head
#
# A network pretrained on ImageNet ends in a layer with 1,000 outputs, one per
# ImageNet class. CIFAR-10 has 10 classes, so that last layer, the *head*, has
# to go. In this lesson you will:
#
# - replace VGG16's 1,000-way output layer with a fresh 10-way one;
# - find where the head lives in other torchvision families, which all put it
#   somewhere else;
# - see how the new layer starts out, and why that start is a sensible one.

# %% tags=["parameters"]
# None follows the COURSE_QUICK environment variable; True forces quick mode
# (laptop: CPU, random VGG16 weights, a few images), False the real mode.
QUICK = None

# %%
import math

import torch
from torch import nn
from torchvision.transforms import v2

from course.data import NORMALIZATIONS, load_cifar10
from course.models import build_on_meta, load_model
from course.doctor import print_summary
from course.quick import QuickWeights, banner, data_label, quick_mode, run_label

QUICK = quick_mode(QUICK)
# This lesson is about VGG16's structure: shapes and parameter counts need no trained
# weights, so quick mode skips the 528 MB file. Lessons 4-6 use a pretrained network.
WEIGHTS = "random" if QUICK else "imagenet"
torch.manual_seed(123)
print(banner(QUICK, QuickWeights(
    "vgg16", WEIGHTS, f"VGG16 with {WEIGHTS} weights",
    "this lesson shows structure (shapes, parameter counts, what freezing and a new head do), "
    "which does not depend on the weights")))
DIAGNOSIS = print_summary("03")  # what this lesson uses, and the fix for what is missing

# %% [markdown]
# ## VGG16: a new `classifier[6]`
#
# VGG16's head is the last entry of its `classifier` block. The replacement
# must accept the same 4,096 inputs (read them from the old layer rather than
# typing the number) and produce 10 outputs.

# %%
model = load_model("vgg16", weights=WEIGHTS)
WEIGHTS_LABEL = model.weights_label
print("before:", model.classifier[6])

model.classifier[6] = nn.Linear(model.classifier[6].in_features, 10)
print("after: ", model.classifier[6])

model.eval()
with torch.no_grad():
    print("output for 2 images:", tuple(model(torch.randn(2, 3, 32, 32)).shape))

# %% [markdown]
# Everything before the head keeps its pretrained weights; only the new layer
# starts from scratch. Its outputs are CIFAR-10's classes in CIFAR-10's order:
# output 0 is "airplane", whatever ImageNet's class 0 was ("tench", a fish).
#
# ## Where each family keeps its head
#
# Every torchvision classifier ends in a `Linear` layer with 1,000 outputs, but
# under different names. To find them we build each model on PyTorch's `meta`
# device (`course.models.build_on_meta`): the layers get their shapes but no
# memory and no values, so even large models are built instantly. Shapes are
# all we need here.

# %%
FAMILIES = {
    "VGG": "vgg16",
    "ResNet": "resnet50",
    "ResNeXt": "resnext50_32x4d",
    "Wide ResNet": "wide_resnet50_2",
    "DenseNet": "densenet121",
    "MobileNetV3": "mobilenet_v3_large",
    "EfficientNet": "efficientnet_b0",
    "Inception": "inception_v3",
    "ConvNeXt": "convnext_tiny",
    "ViT": "vit_b_16",
}



print(f"{'family':<13} {'model':<20} {'1000-way Linear layer(s)':<26} {'in_features':>11}")
for family, name in FAMILIES.items():
    net = build_on_meta(name)
    heads = [
        (module_name, module)
        for module_name, module in net.named_modules()
        if isinstance(module, nn.Linear) and module.out_features == 1000
    ]
    for module_name, module in heads:
        print(f"{family:<13} {name:<20} {module_name:<26} {module.in_features:>11,}")

# %% [markdown]
# Notice:
#
# - ResNet, ResNeXt and Wide ResNet use the name `fc`; VGG, DenseNet, MobileNet,
#   EfficientNet and ConvNeXt use a `classifier` (a `Sequential` in most of
#   them, so the head is its last entry); ViT keeps it in `heads.head`.
# - Inception v3 has *two* 1,000-way heads: `fc` and an auxiliary classifier
#   `AuxLogits.fc`, used only during training. Replace both, or build the model
#   with `aux_logits=False`.
# - `in_features` differs from family to family, so read it from the old layer.
#
# Replacing a head is an assignment to that name, for example:

# %%
resnet = build_on_meta("resnet50")
resnet.fc = nn.Linear(resnet.fc.in_features, 10)
print(f"{'resnet50.fc':<20}", resnet.fc)

vit = build_on_meta("vit_b_16")
vit.heads.head = nn.Linear(vit.heads.head.in_features, 10)
print(f"{'vit_b_16.heads.head':<20}", vit.heads.head)

# %% [markdown]
# (The new layers above were created outside the `meta` block, so they have
# real values; the rest of those two models has none. A real model is built the
# same way, without the `meta` block.)
#
# ## How the new layer starts
#
# `nn.Linear` draws its initial weights and biases uniformly from
# [-1/sqrt(in_features), +1/sqrt(in_features)]. For 4,096 inputs that bound is
# 1/64 = 0.015625, and a uniform distribution on it has standard deviation
# bound/sqrt(3). Let us measure:

# %%
head = nn.Linear(4096, 10)
bound = 1 / math.sqrt(head.in_features)
print(f"bound 1/sqrt(4096)        = {bound:.6f}")
print(f"weights: min {head.weight.min().item():+.6f}, max {head.weight.max().item():+.6f}")
print(f"weight std: measured {head.weight.std().item():.6f}, "
      f"expected bound/sqrt(3) = {bound / math.sqrt(3):.6f}")

# %% [markdown]
# Why is a small start sensible? With small weights the ten logits start close
# to each other, so the softmax is nearly uniform and the first loss is near
# ln(10) = 2.303: the model starts out "knowing nothing" rather than being
# confidently wrong. How near depends on the size of the features that come
# in; let us check on real images, through the network we just gave a new head.

# %%
splits = load_cifar10(subset=4, allow_synthetic=QUICK)
DATA = data_label(splits)
mean, std = NORMALIZATIONS["imagenet"]
to_input = v2.Compose([
    v2.Resize(64, antialias=True),
    v2.ToDtype(torch.float32, scale=True),
    v2.Normalize(mean, std),
])
images, labels = to_input(splits.train.images[:32]), splits.train.labels[:32]

model.eval()
with torch.no_grad():
    logits = model(images)
loss = nn.functional.cross_entropy(logits, labels)
print(run_label(model.weights_label, DATA))
print(f"logits: std {logits.std().item():.4f}, largest |logit| {logits.abs().max().item():.4f}")
print(f"first loss {loss.item():.4f}   (ln 10 = {math.log(10):.4f})")

# %% [markdown]
# Some practitioners go further and start the head at exactly zero. For the
# *last* layer that is safe: the logits are all 0, the loss is exactly ln(10),
# and the gradient of each weight is still non-zero, because it is the
# product of the layer's input (the fc7 features) and the error of the
# softmax. (Zeros would be a mistake in a *hidden* layer: every unit would get
# the same gradient and they would stay identical forever.)

# %%
zero_head = nn.Linear(4096, 10)
nn.init.zeros_(zero_head.weight)
nn.init.zeros_(zero_head.bias)

with torch.no_grad():
    fc7_features = model.classifier[:6](torch.flatten(model.avgpool(model.features(images)), 1))
loss = nn.functional.cross_entropy(zero_head(fc7_features), labels)
loss.backward()
print(f"loss with a zero head: {loss.item():.4f}")
print(f"gradient of the zero weights: largest |value| {zero_head.weight.grad.abs().max().item():.4f}")

# %% [markdown]
# Either start works; this unit keeps PyTorch's default, as the lecture does.
#
# ## Summary
#
# - Replace the 1,000-way head by a new `nn.Linear(old.in_features, 10)`; for
#   VGG16 that is `model.classifier[6]`.
# - Each family keeps its head under its own name: `fc`, `classifier[-1]`,
#   `heads.head`, and Inception has a second one in `AuxLogits.fc`.
# - A new `nn.Linear` starts with small uniform weights, so the first loss
#   is close to ln(10) = 2.303.
#
# **Exercise:** Task 3 (replace the output layer) in the exercise notebook
# `transfer_learning.ipynb` asks for one function that replaces the head of
# VGG16, a ResNet and a MobileNetV3 alike.
# Next: [Lesson 4, inputs](04_inputs.ipynb).
