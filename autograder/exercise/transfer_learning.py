# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # Exercise: transfer learning with VGG16
#
# You will write the functions that turn an ImageNet VGG16 into a CIFAR-10
# classifier, the way the lecture does it, minus its two bugs. Tasks 1-7 are
# each one function, and its docstring says exactly what it must do; task 8 is a
# written answer.
#
# | task | what you write | points | lesson |
# | --- | --- | --- | --- |
# | 1 | `load_vgg16` | 1 | Lesson 1: A pretrained VGG16 |
# | 2 | `freeze_and_unfreeze` | 3 | Lesson 2: Freezing layers |
# | 3 | `replace_head` | 3 | Lesson 3: Replacing the head |
# | 4 | `build_transforms` | 3 | Lesson 4: Inputs, their size and their normalization |
# | 5 | `make_optimizer` | 2 | Lesson 2: Freezing layers |
# | 6 | `channel_stats` | 3 | Lesson 4: Inputs, their size and their normalization |
# | 7 | `train_and_evaluate` | 3 | Lesson 5: Training and evaluating |
# | 8 | a written answer | 2 (graded by hand) | Lesson 2: Freezing layers |
# | | **total** | **20** | |
#
# **How to work.** Replace each `raise NotImplementedError(...)` line with your code,
# keeping the function's name and arguments. Then run the test cell below it.
# Those tests are quick sanity checks; when you submit, the autograder runs
# more thorough checks on other inputs (other models, sizes, data), and tells
# you what it expected, what it found, and a hint.
#
# Everything here runs on a CPU in seconds with **random weights**: no download,
# no GPU. Numbers you see are not accuracies of a pretrained model.
#
# Do not delete, move or copy cells: the autograder finds answers and tests by
# their cell. Before submitting, run *Restart kernel and run all cells*.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import v2 as T

from course.data import NORMALIZATIONS
from course.models import load_model, trainable_parameters

torch.manual_seed(0)


# %% [markdown] nbgrader={"grade": false, "grade_id": "task1-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 1: load VGG16 (1 point)
#
# Write `load_vgg16(weights)` that returns VGG16 from
# `course.models.load_model`, passing `weights` on: `"imagenet"` for the
# pretrained weights, `"random"` for random ones, or the path of a weights file.
# Return the model unchanged: it still has its 1000-way ImageNet output layer.
# See *Lesson 1: A pretrained VGG16*.

# %% nbgrader={"grade": false, "grade_id": "task1-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_vgg16(weights="random"):
    """Return torchvision's VGG16 loaded with `weights` through course.models.load_model."""
    ### BEGIN SOLUTION
    return load_model("vgg16", weights=weights)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task1-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("load", load_vgg16)
### END HIDDEN TESTS
_model = load_vgg16("random")
assert isinstance(_model, torchvision.models.VGG), (
    f"load_vgg16 returned {type(_model).__name__}; use load_model('vgg16', weights=weights)."
)
assert _model.classifier[6].out_features == 1000, (
    "Keep the 1000-way ImageNet output layer for now: task 3 replaces it."
)
print("Task 1 looks right. weights:", _model.weights_label)
del _model


# %% [markdown] nbgrader={"grade": false, "grade_id": "task2-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 2: freeze, then unfreeze the fully connected layers (3 points)
#
# Write `freeze_and_unfreeze(model)` for a VGG16, or any model shaped like one
# (`features`, `avgpool`, and a `classifier` of Linear, ReLU, Dropout, Linear,
# ReLU, Dropout, Linear). It must
#
# 1. freeze every parameter of the model, then
# 2. make three layers trainable again: fc6 (`model.classifier[0]`), fc7
#    (`model.classifier[3]`) and the output layer (`model.classifier[6]`),
# 3. and return the model.
#
# It must give the same result whether task 3 replaces the output layer before
# or after it runs. With VGG16 and a 10-way head, 119,586,826 parameters then
# train. The autograder also tries smaller VGG-shaped models with other widths
# and depths, so find the layers by their place in `model.classifier`, not by
# their sizes.
#
# Careful: `layer.requires_grad = True` on a *module* changes no parameter. That
# is the lecture's bug, and the autograder recognizes it. See *Lesson 2:
# Freezing layers*.

# %% nbgrader={"grade": false, "grade_id": "task2-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def freeze_and_unfreeze(model):
    """Freeze all parameters of a VGG16, then make fc6, fc7 and the head trainable."""
    ### BEGIN SOLUTION
    model.requires_grad_(False)
    for index in (0, 3, 6):  # fc6, fc7, head; the ReLU/Dropout between them have no parameters
        model.classifier[index].requires_grad_(True)
    return model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task2-test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("freeze", freeze_and_unfreeze)
### END HIDDEN TESTS
# The "meta" device builds the architecture without allocating any weights: it is instant,
# and enough to see which parameters would train.
with torch.device("meta"):
    _vgg = torchvision.models.vgg16()
_vgg = freeze_and_unfreeze(_vgg)
assert _vgg is not None, "freeze_and_unfreeze must end with `return model`."
_training = [name for name, p in _vgg.named_parameters() if p.requires_grad]
_expected = [f"classifier.{i}.{leaf}" for i in (0, 3, 6) for leaf in ("weight", "bias")]
_attribute_on = [name for name, module in _vgg.named_modules() if "requires_grad" in vars(module)]
assert not _attribute_on, (
    f"`requires_grad` was set as a plain attribute on module(s) {_attribute_on}: that is the "
    "lecture's bug, and it changes no parameter.\n"
    "Use the method instead: model.classifier[3].requires_grad_(True) (note the underscore)."
)
assert _training == _expected, (
    f"These parameters train: {_training or 'none'}.\n"
    f"Expected exactly: {_expected}.\n"
    "Freeze with model.requires_grad_(False), then call .requires_grad_(True) on each layer."
)
print(f"Task 2 looks right: {trainable_parameters(_vgg):,} trainable parameters (1000-way head).")
del _vgg


# %% [markdown] nbgrader={"grade": false, "grade_id": "task3-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 3: replace the output layer (3 points)
#
# Write `replace_head(model, num_classes)`: put a new `nn.Linear` with
# `num_classes` outputs in place of the model's last layer, keeping that layer's
# `in_features`, and return the model. Everything else stays as it was.
#
# It must work for more than VGG16 (the autograder also tries a ResNet and a
# MobileNetV3): the last layer is `model.classifier[6]` in VGG16,
# `model.fc` in a ResNet and `model.classifier[3]` in MobileNetV3. A general
# way: the last `nn.Linear` in `model.named_modules()`. See *Lesson 3:
# Replacing the head*.

# %% nbgrader={"grade": false, "grade_id": "task3-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def replace_head(model, num_classes):
    """Replace the model's last Linear layer with a new one that has `num_classes` outputs."""
    ### BEGIN SOLUTION
    name = [n for n, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
    old = model.get_submodule(name)
    parent_name, _, attribute = name.rpartition(".")
    new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    # setattr also works for nn.Sequential, whose children are named "0", "1", ...
    setattr(model.get_submodule(parent_name), attribute, new)
    return model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task3-test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("head", replace_head)
### END HIDDEN TESTS
with torch.device("meta"):  # architectures only, as in task 2's test
    _vgg = torchvision.models.vgg16()
    _resnet = torchvision.models.resnet18()
_vgg = replace_head(_vgg, 10)
assert _vgg is not None, "replace_head must end with `return model`."
_head = _vgg.classifier[6]
assert isinstance(_head, nn.Linear) and (_head.in_features, _head.out_features) == (4096, 10), (
    f"VGG16's classifier[6] is {_head}; expected Linear(in_features=4096, out_features=10)."
)
_head = replace_head(_resnet, 7).fc
assert isinstance(_head, nn.Linear) and (_head.in_features, _head.out_features) == (512, 7), (
    f"ResNet-18's last layer, model.fc, is {_head}; expected Linear(in_features=512, "
    "out_features=7)."
)
print("Task 3 looks right for VGG16 and ResNet-18.")
del _vgg, _resnet, _head


# %% [markdown] nbgrader={"grade": false, "grade_id": "task4-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 4: input transforms (3 points)
#
# Write `build_transforms(size, normalization="imagenet", augment=False)`. It
# returns `(train_transform, eval_transform)`; each takes a `uint8` image
# tensor of shape `(3, 32, 32)` and returns a `float32` tensor of shape
# `(3, size, size)`. Use `torchvision.transforms.v2` (imported as `T`):
#
# - `augment=False` (the lecture's 224-px run): both transforms are
#   `ToImage`, `Resize(size)`, `ToDtype(torch.float32, scale=True)`, `Normalize`.
# - `augment=True` (the lecture's 64-px run): resize to `size + 6` first; then
#   training takes a `RandomCrop(size)` and evaluation a `CenterCrop(size)`.
# - Normalize with `NORMALIZATIONS[normalization]` (mean, std): `"imagenet"`,
#   `"cifar10"` or `"half"`. Do not type the numbers: the lecture's test
#   transform had a typo in them (0.2255).
#
# See *Lesson 4: Inputs, their size and their normalization*.

# %% nbgrader={"grade": false, "grade_id": "task4-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_transforms(size, normalization="imagenet", augment=False):
    """Return (train_transform, eval_transform) for `size` pixels and a named normalization."""
    ### BEGIN SOLUTION
    mean, std = NORMALIZATIONS[normalization]
    finish = [T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
    if not augment:
        transform = T.Compose([T.ToImage(), T.Resize(size, antialias=True), *finish])
        return transform, transform
    resize = [T.ToImage(), T.Resize(size + 6, antialias=True)]
    train = T.Compose([*resize, T.RandomCrop(size), *finish])
    evaluation = T.Compose([*resize, T.CenterCrop(size), *finish])
    return train, evaluation
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task4-test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("transforms", build_transforms)
### END HIDDEN TESTS
_train_tf, _eval_tf = build_transforms(64, "imagenet", augment=True)
_image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
for _name, _tf in (("train", _train_tf), ("eval", _eval_tf)):
    _out = _tf(_image)
    assert _out.dtype == torch.float32 and _out.shape == (3, 64, 64), (
        f"The {_name} transform gave {_out.dtype} {tuple(_out.shape)}; "
        "expected torch.float32 (3, 64, 64)."
    )
# A black image must come out as -mean / std in every channel.
_mean, _std = (torch.tensor(v) for v in NORMALIZATIONS["imagenet"])
_black = _eval_tf(torch.zeros(3, 32, 32, dtype=torch.uint8))[:, 0, 0]
assert torch.allclose(_black, -_mean / _std, atol=1e-4), (
    f"A black image became {_black.tolist()}; expected {(-_mean / _std).tolist()}. "
    "Scale with ToDtype(torch.float32, scale=True), then Normalize(mean, std)."
)
print("Task 4 looks right for size 64 with augmentation.")
del _train_tf, _eval_tf, _image, _out, _black


# %% [markdown] nbgrader={"grade": false, "grade_id": "task5-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 5: the optimizer (2 points)
#
# Write `make_optimizer(model, lr=0.01, momentum=0.9)`: the lecture's
# `torch.optim.SGD` with the given `lr` and `momentum`, over the model's
# **trainable** parameters only (those with `requires_grad`), whatever the
# model. Frozen parameters do not belong in it. Leave every other SGD setting
# at its default (`weight_decay=0`, `dampening=0`, `nesterov=False`), as the
# lecture did: the autograder checks them too. See *Lesson 2: Freezing layers*.

# %% nbgrader={"grade": false, "grade_id": "task5-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_optimizer(model, lr=0.01, momentum=0.9):
    """Return SGD with `lr` and `momentum` over the parameters of `model` that require grad."""
    ### BEGIN SOLUTION
    params_to_update = [param for param in model.parameters() if param.requires_grad]
    return torch.optim.SGD(params_to_update, lr=lr, momentum=momentum)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task5-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("optimizer", make_optimizer)
### END HIDDEN TESTS
_small = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
_small[0].requires_grad_(False)
_opt = make_optimizer(_small, lr=0.1, momentum=0.5)
assert isinstance(_opt, torch.optim.SGD), f"Expected torch.optim.SGD, got {type(_opt).__name__}."
_held = {id(p) for group in _opt.param_groups for p in group["params"]}
assert _held == {id(p) for p in _small[2].parameters()}, (
    f"The optimizer holds {len(_held)} tensors; expected only the 2 trainable ones "
    "(the last layer's weight and bias)."
)
assert _opt.param_groups[0]["lr"] == 0.1 and _opt.param_groups[0]["momentum"] == 0.5, (
    "Pass the lr and momentum arguments on to SGD."
)
print("Task 5 looks right.")
del _small, _opt, _held


# %% [markdown] nbgrader={"grade": false, "grade_id": "task6-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 6: per-channel mean and standard deviation (3 points)
#
# To normalize with a data set's own statistics (`"cifar10"`), you need the
# mean and standard deviation of every colour channel over *all pixels of all
# images*. Write `channel_stats(loader)`: the loader yields `(images, labels)`
# batches, images `float` of shape `(B, 3, H, W)` with values in [0, 1].
# Return `(mean, std)`, each a tuple of three floats (R, G, B).
#
# - Exact, not approximate: the result must not depend on the batch size, and the
#   last batch may be smaller.
# - Streaming: one pass, without holding all images at once. Keep running
#   per-channel sums (pixel count, sum, sum of squares) in `torch.float64`.
# - Population standard deviation: divide by the number of pixels *N*, not *N - 1*.
#
# See *Lesson 4: Inputs, their size and their normalization*.

# %% nbgrader={"grade": false, "grade_id": "task6-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def channel_stats(loader):
    """Return the exact per-channel (mean, std) of all pixels in `loader`, in one pass."""
    ### BEGIN SOLUTION
    count = 0
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    for images, _ in loader:
        pixels = images.to(torch.float64)
        count += pixels.numel() // pixels.shape[1]
        total += pixels.sum(dim=(0, 2, 3))
        total_sq += (pixels * pixels).sum(dim=(0, 2, 3))
    mean = total / count
    # float64 keeps E[x^2] - E[x]^2 exact enough; clamp guards against -0.0 rounding.
    std = (total_sq / count - mean**2).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task6-test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("stats", channel_stats)
### END HIDDEN TESTS
# Three images of grey level 0.2 and one of 0.6, in batches of 3 and 1: mean 0.3,
# std sqrt(0.03) = 0.1732. Averaging per-batch means would give 0.4.
_images = torch.tensor([0.2, 0.2, 0.2, 0.6]).view(4, 1, 1, 1).expand(4, 3, 2, 2).contiguous()
_loader = DataLoader(TensorDataset(_images, torch.zeros(4)), batch_size=3)
_mean, _std = channel_stats(_loader)
assert len(_mean) == 3 and len(_std) == 3, "Return two tuples of three floats: (mean, std)."
assert all(abs(m - 0.3) < 1e-6 for m in _mean), (
    f"Means {_mean}; expected 0.3 in every channel. Sum over all pixels, then divide once."
)
assert all(abs(s - 0.03**0.5) < 1e-6 for s in _std), (
    f"Stds {_std}; expected {0.03**0.5:.4f}. Use sums of squares over all pixels, divided by N."
)
print("Task 6 looks right.")
del _images, _loader, _mean, _std


# %% [markdown] nbgrader={"grade": false, "grade_id": "task7-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 7: train and evaluate (3 points)
#
# Write `train_and_evaluate(model, optimizer, train_loader, eval_loader,
# epochs=1)`, a short version of the lecture's loop:
#
# - for each epoch: put the model in training mode (`model.train()`), and for
#   each minibatch compute `nn.functional.cross_entropy`, call
#   `optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()`, and keep
#   `loss.item()`;
# - then evaluate once on `eval_loader`: `model.eval()`, `torch.no_grad()`,
#   and count correct predictions over all examples.
#
# Return `(losses, accuracy)`: the list of minibatch losses and the accuracy in
# percent (0-100). Train the model with the optimizer you are given. A plain
# `model.train()` is right here because every layer of this toy network
# trains; with a frozen pretrained backbone, lesson 2's rule applies instead
# (keep frozen BatchNorm layers in eval mode, as `course.training.train` does). The
# autograder runs your loop on a small toy problem (a network with BatchNorm and
# Dropout) and compares the trained weights, the losses and the accuracy with
# its own loop's from the same start. See *Lesson 5: Training and evaluating*.

# %% nbgrader={"grade": false, "grade_id": "task7-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_and_evaluate(model, optimizer, train_loader, eval_loader, epochs=1):
    """Train for `epochs`, then return (minibatch losses, accuracy in percent on eval_loader)."""
    ### BEGIN SOLUTION
    device = next(model.parameters()).device
    losses = []
    for _ in range(epochs):
        model.train()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in eval_loader:
            predicted = model(images.to(device)).argmax(dim=1)
            correct += (predicted == labels.to(device)).sum().item()
            total += labels.numel()
    return losses, 100.0 * correct / total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task7-test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("train", train_and_evaluate)
### END HIDDEN TESTS
# A toy problem with synthetic data: is a 4-number vector's sum positive?
_gen = torch.Generator().manual_seed(0)
_x = torch.randn(64, 4, generator=_gen)
_y = (_x.sum(dim=1) > 0).long()
_loader = DataLoader(TensorDataset(_x, _y), batch_size=16)
_net = nn.Linear(4, 2)
_losses, _accuracy = train_and_evaluate(
    _net, torch.optim.SGD(_net.parameters(), lr=0.5), _loader, _loader, epochs=3
)
assert len(_losses) == 3 * len(_loader), (
    f"Got {len(_losses)} losses; expected one per minibatch: {3 * len(_loader)}."
)
assert sum(_losses[-4:]) < sum(_losses[:4]), (
    f"The loss did not fall: {_losses}. Check zero_grad, backward and step."
)
assert 0 <= _accuracy <= 100 and _accuracy > 1, (
    f"Accuracy {_accuracy}: report it in percent (0-100)."
)
print(
    f"Task 7 looks right: loss {_losses[0]:.3f} -> {_losses[-1]:.3f}, "
    f"accuracy {_accuracy:.1f}% (toy data)."
)
del _gen, _x, _y, _loader, _net, _losses, _accuracy

# %% [markdown] nbgrader={"grade": false, "grade_id": "task8-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 8: what did the lecture really train? (2 points, graded by hand)
#
# The lecture's notebooks froze VGG16, then ran
#
# ```python
# model.classifier[1].requires_grad = True
# model.classifier[3].requires_grad = True
# ```
#
# and replaced `model.classifier[6]` with a new `Linear(4096, 10)`. In three to
# five sentences, answer in the cell below:
#
# 1. Why did only the new output layer train?
# 2. How could the authors have noticed?
# 3. What is the fix?
#
# See *Lesson 2: Freezing layers*.

# %% [markdown] nbgrader={"grade": true, "grade_id": "task8-answer", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# *Model answer (grading guide: 1 point for the cause, 1 for the check or the fix).*
# `requires_grad = True` on an `nn.Module` sets a new plain Python attribute on the
# module object; PyTorch never reads it, so every parameter stayed frozen
# (`classifier[1]` is even a ReLU, which has no parameters). Only the new
# `Linear(4096, 10)` trained, because a freshly created layer's parameters require
# gradients by default: the runs were linear probes on frozen fc7 features, not
# fine-tuning of three layers. Counting trainable parameters would have shown
# 40,970 instead of 119,586,826, or listing `n for n, p in model.named_parameters()
# if p.requires_grad`. The fix is `model.classifier[0].requires_grad_(True)` and
# `model.classifier[3].requires_grad_(True)` (the method, with the underscore), or
# setting `p.requires_grad = True` for each `p` in the layer's `parameters()`.
# ### END SOLUTION
