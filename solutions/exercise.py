"""The exercise's answers, written once, as a student would write them.

``autograder/exercise/transfer_learning.py`` gets its solution regions from the bodies of these
functions (``python -m autograder.exercise.answers --write``; a test fails when they differ).
Each function uses only what the exercise's setup cell imports (``torch``, ``nn``, ``T``,
``NORMALIZATIONS``, ``load_model``), so it runs unchanged in the student's notebook.

The grader does not score against these: it compares with :mod:`solutions.transfer`, an
independent and more general implementation, so a mistake here cannot hide itself.
"""

import torch
from torch import nn
from torchvision.transforms import v2 as T

from course.data import NORMALIZATIONS
from course.models import load_model

__all__ = [
    "build_transforms",
    "channel_stats",
    "freeze_and_unfreeze",
    "load_vgg16",
    "make_optimizer",
    "replace_head",
    "train_and_evaluate",
]


def load_vgg16(weights="random"):
    """Return torchvision's VGG16 loaded with `weights` through course.models.load_model."""
    return load_model("vgg16", weights=weights)


def freeze_and_unfreeze(model):
    """Freeze all parameters of a VGG16, then make fc6, fc7 and the head trainable."""
    model.requires_grad_(False)
    for index in (0, 3, 6):  # fc6, fc7, head; the ReLU/Dropout between them have no parameters
        model.classifier[index].requires_grad_(True)
    return model


def replace_head(model, num_classes):
    """Replace the model's last Linear layer with a new one that has `num_classes` outputs."""
    name = [n for n, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
    old = model.get_submodule(name)
    parent_name, _, attribute = name.rpartition(".")
    new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    # setattr also works for nn.Sequential, whose children are named "0", "1", ...
    setattr(model.get_submodule(parent_name), attribute, new)
    return model


def build_transforms(size, normalization="imagenet", augment=False):
    """Return (train_transform, eval_transform) for `size` pixels and a named normalization."""
    mean, std = NORMALIZATIONS[normalization]
    finish = [T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
    if not augment:
        transform = T.Compose([T.ToImage(), T.Resize(size, antialias=True), *finish])
        return transform, transform
    resize = [T.ToImage(), T.Resize(size + 6, antialias=True)]
    train = T.Compose([*resize, T.RandomCrop(size), *finish])
    evaluation = T.Compose([*resize, T.CenterCrop(size), *finish])
    return train, evaluation


def make_optimizer(model, lr=0.01, momentum=0.9):
    """Return SGD with `lr` and `momentum` over the parameters of `model` that require grad."""
    params_to_update = [param for param in model.parameters() if param.requires_grad]
    return torch.optim.SGD(params_to_update, lr=lr, momentum=momentum)


def channel_stats(loader):
    """Return the exact per-channel (mean, std) of all pixels in `loader`, in one pass."""
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


def train_and_evaluate(model, optimizer, train_loader, eval_loader, epochs=1):
    """Train for `epochs`, then return (minibatch losses, accuracy in percent on eval_loader)."""
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
