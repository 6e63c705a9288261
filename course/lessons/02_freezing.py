# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 2: Freezing layers
#
# Fine-tuning a pretrained network usually means training only some of its
# layers and keeping the others as they are: they are *frozen*. In this lesson
# you will:
#
# - see what `requires_grad = False` does, and what it does not do;
# - meet the lecture's freezing bug, which silently trained only the new
#   output layer, and the one-character fix;
# - build an optimizer over the trainable parameters only;
# - see why frozen BatchNorm layers also need eval mode.

# %% tags=["parameters"]
# None follows the COURSE_QUICK environment variable; True forces quick mode
# (laptop: CPU, random VGG16 weights, a few images), False the real mode.
QUICK = None

# %%
import copy

import torch
from torch import nn
from torchvision.transforms import v2

from course.data import NORMALIZATIONS, load_cifar10
from course.models import describe, load_model, trainable_parameter_names, trainable_parameters
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
DIAGNOSIS = print_summary("02")  # what this lesson uses, and the fix for what is missing

# %%
model = load_model("vgg16", weights=WEIGHTS)
WEIGHTS_LABEL = model.weights_label
pristine = copy.deepcopy(model)  # an untouched copy, so each demonstration starts fresh
print("weights:", model.weights_label)
print(f"trainable parameters after loading: {trainable_parameters(model):,}")

# %% [markdown]
# ## What `requires_grad` does
#
# Every parameter carries a flag, `requires_grad`. When it is `False`, autograd
# computes no gradient for that tensor, so an optimizer has nothing to apply and
# the values stay as they are. The layer itself still runs in the forward pass:
# a frozen layer still transforms its input, it just never learns.
#
# Let us freeze the convolutional part, run one training step on a few random
# inputs with random labels, and check which weights moved.

# %%
for parameter in model.features.parameters():
    parameter.requires_grad = False

conv1_before = model.features[0].weight.detach().clone()
head_before = model.classifier[6].weight.detach().clone()

optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
inputs, labels = torch.randn(4, 3, 32, 32), torch.randint(0, 1000, (4,))
model.train()
loss = nn.functional.cross_entropy(model(inputs), labels)
loss.backward()
optimizer.step()

print("forward pass ran through the frozen layers, loss:", round(loss.item(), 4))
print("gradient of the first conv layer:", model.features[0].weight.grad)
print("first conv layer unchanged:", torch.equal(conv1_before, model.features[0].weight))
print("output layer changed:      ", not torch.equal(head_before, model.classifier[6].weight))

# %% [markdown]
# The gradient of a frozen weight is `None`, not zero: autograd did not even
# compute it, which is why freezing also saves time and memory in the backward
# pass. Passing all parameters to the optimizer did no harm here: SGD skips
# parameters without a gradient. (We come back to the optimizer below.)

# %% [markdown]
# ## The lecture's pitfall
#
# The lecture freezes every parameter, then means to train "the last three
# layers" again, then replaces the output layer. Here is its code, verbatim:

# %%
model = copy.deepcopy(pristine)

for param in model.parameters():
    param.requires_grad = False

model.classifier[1].requires_grad = True
model.classifier[3].requires_grad = True

model.classifier[6] = torch.nn.Linear(4096, 10)

print(f"trainable parameters, lecture's code:   {trainable_parameters(model):,}")
print("trainable tensors:", trainable_parameter_names(model))

# %% [markdown]
# Only 40,970 parameters train: the new output layer's 4,096 x 10 weights and
# 10 biases. Two things went wrong:
#
# 1. `requires_grad` is a flag on *parameters* (tensors). `model.classifier[3]`
#    is a *module*, a `Linear` layer. Setting `module.requires_grad = True`
#    creates a new, unused Python attribute on the module; PyTorch does not
#    complain, and no parameter changes.
# 2. `classifier[1]` is not even a layer with weights: it is a ReLU.

# %%
print("classifier[1] is", model.classifier[1])
print("classifier[3] is", model.classifier[3])
print("classifier[3].requires_grad (a new plain attribute):", vars(model.classifier[3])["requires_grad"])
print("classifier[3].weight.requires_grad (the parameter): ", model.classifier[3].weight.requires_grad)

# %% [markdown]
# Because of this, the lecture's runs were *linear probes*: a single linear
# layer trained on top of frozen fc7 features. Not what the text described,
# though still a legitimate protocol. Lesson 5 keeps the two apart.
#
# ## The correct way
#
# `module.requires_grad_(True)` (with the trailing underscore) is a method that
# sets the flag on every parameter of the module. fc6 is `classifier[0]`, fc7
# is `classifier[3]`, and the new output layer is created trainable.

# %%
model = copy.deepcopy(pristine)

model.requires_grad_(False)  # freeze everything
model.classifier[6] = nn.Linear(4096, 10)  # new parameters are trainable by default
model.classifier[0].requires_grad_(True)  # fc6
model.classifier[3].requires_grad_(True)  # fc7

print(f"trainable parameters, requires_grad_(): {trainable_parameters(model):,}")

# %% [markdown]
# Always check what you froze. A table by block shows it at a glance, and the
# list of trainable tensors names every one:

# %%
print(describe(model))
print()
for name, parameter in model.named_parameters():
    if parameter.requires_grad:
        print(f"{name:<22} {str(tuple(parameter.shape)):<14} {parameter.numel():>12,}")

# %% [markdown]
# 119,586,826 parameters: fc6 (102,764,544), fc7 (16,781,312) and the new head
# (40,970). The order of the three steps matters too: a layer created *after*
# the freezing loop is trainable, a layer frozen *after* it was created is not.
#
# ## An optimizer over the trainable parameters only
#
# Give the optimizer exactly the parameters that should train. The list then
# documents what trains, and a frozen tensor that still carries an old gradient
# (one frozen after some training, say) can never be moved by momentum or
# weight decay.

# %%
trainable = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.SGD(trainable, lr=0.01, momentum=0.9)
print(f"optimizer holds {len(trainable)} tensors, "
      f"{sum(p.numel() for p in trainable):,} parameters")

# %% [markdown]
# The flip side: an optimizer only updates the tensors it was given when it was
# built. Unfreeze a layer *after* building the optimizer and that layer gets a
# gradient but never changes. Here the optimizer only knows the head; then we
# unfreeze fc7 and take a step:

# %%
model = copy.deepcopy(pristine)
model.requires_grad_(False)
model.classifier[6] = nn.Linear(4096, 10)
optimizer = torch.optim.SGD(model.classifier[6].parameters(), lr=0.01)

model.classifier[3].requires_grad_(True)  # too late for this optimizer
fc7_before = model.classifier[3].weight.detach().clone()
loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.randint(0, 10, (4,)))
loss.backward()
optimizer.step()
print("fc7 has a gradient:", model.classifier[3].weight.grad is not None)
print("fc7 changed:       ", not torch.equal(fc7_before, model.classifier[3].weight))

# %% [markdown]
# The fix is to build the optimizer again after changing what is frozen.
#
# ## Frozen BatchNorm layers need eval mode
#
# VGG16 has no BatchNorm, but most newer backbones do (ResNet, DenseNet,
# MobileNet). A BatchNorm layer has learned parameters (a scale and a shift)
# *and* buffers: running estimates of the mean and variance of its inputs.
# In train mode it updates those buffers on every forward pass, whatever
# `requires_grad` says. A "frozen" ResNet in train mode therefore keeps
# changing: its statistics drift from ImageNet's towards your data set's.
#
# Let us watch it happen on a few CIFAR-10 images.

# %%
splits = load_cifar10(subset=4, allow_synthetic=QUICK)
DATA = data_label(splits)
mean, std = NORMALIZATIONS["imagenet"]
to_input = v2.Compose([
    v2.Resize(64, antialias=True),
    v2.ToDtype(torch.float32, scale=True),
    v2.Normalize(mean, std),
])
images = to_input(splits.train.images[:32])
print(run_label(WEIGHTS, DATA))
print("input batch:", tuple(images.shape))

# %%
def drift_after_train_mode(net: nn.Module, passes: int = 3) -> tuple[float, float]:
    """Run `passes` forward passes in train mode; report how far the statistics and outputs moved.

    Returns the largest change of the first BatchNorm layer's running mean, and
    the largest change of the eval-mode output for the same images.
    """
    net.requires_grad_(False)
    first_norm = next(m for m in net.modules() if "BatchNorm" in type(m).__name__)
    mean_before = first_norm.running_mean.clone()
    net.eval()
    with torch.no_grad():
        output_before = net(images)
        net.train()
        for _ in range(passes):
            net(images)
        net.eval()
        output_after = net(images)
    return (
        (first_norm.running_mean - mean_before).abs().max().item(),
        (output_after - output_before).abs().max().item(),
    )


resnet = load_model("resnet18", weights=WEIGHTS)
stat_drift, output_drift = drift_after_train_mode(resnet)
print(f"ResNet-18, every parameter frozen, 3 passes in train mode ({run_label(WEIGHTS, DATA)}):")
print(f"  running mean of bn1 moved by up to {stat_drift:.4f}")
print(f"  eval-mode outputs for the same images moved by up to {output_drift:.4f}")

# %% [markdown]
# No parameter changed, yet the network now computes a different function.
# Two remedies:
#
# - call `.eval()` on every BatchNorm module after each `model.train()` (the
#   training loop calls `model.train()` at the start of every epoch, so this
#   has to be repeated there);
# - or replace each BatchNorm layer by `torchvision.ops.FrozenBatchNorm2d`,
#   which always uses its stored statistics, in either mode. torchvision's
#   detection models do exactly this for their pretrained backbones.

# %%
from torchvision.ops import FrozenBatchNorm2d


def with_frozen_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d under `module` for a FrozenBatchNorm2d with the same numbers."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.load_state_dict(child.state_dict())
            setattr(module, name, frozen)
        else:
            with_frozen_batchnorm(child)
    return module


resnet = with_frozen_batchnorm(load_model("resnet18", weights=WEIGHTS))
stat_drift, output_drift = drift_after_train_mode(resnet)
print(f"ResNet-18 with FrozenBatchNorm2d, 3 passes in train mode ({run_label(WEIGHTS, DATA)}):")
print(f"  running mean of bn1 moved by up to {stat_drift:.4f}")
print(f"  eval-mode outputs for the same images moved by up to {output_drift:.4f}")

# %% [markdown]
# Whether you *want* BatchNorm statistics to adapt is a separate choice: when
# you fine-tune the whole network on a data set that looks different from
# ImageNet, updating them is often right. What matters is to decide, not to
# let a forgotten `model.train()` decide for you.
#
# ## Summary
#
# - A parameter with `requires_grad=False` still takes part in the forward
#   pass; it just gets no gradient and never changes.
# - `module.requires_grad = True` sets a plain attribute and changes nothing.
#   Use `module.requires_grad_(True)`, then check the trainable count:
#   fc6 + fc7 + a 10-way head = 119,586,826; the lecture's code = 40,970.
# - Build the optimizer over the trainable parameters, and rebuild it when
#   you change what is frozen.
# - Frozen BatchNorm layers still update their statistics in train mode: keep
#   them in eval mode or use `FrozenBatchNorm2d`.
#
# **Exercise:** in the exercise notebook `transfer_learning.ipynb`, Task 2
# (freeze, then unfreeze the fully connected layers) and Task 5 (the
# optimizer) package these steps as functions, and the autograder knows the
# lecture's bug. Task 8 (what did the lecture really train?) asks you to
# explain that bug in your own words.
# Next: [Lesson 3, replacing the head](03_replacing_the_head.ipynb).
