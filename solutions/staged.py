"""Reference answers of the second exercise, "Fine-tuning in stages" (instructor-only).

``autograder/exercise/fine_tuning_in_stages.py`` gets its solution regions from the bodies of
these functions (``python -m autograder.exercise.answers --write``; a test fails when they
differ), and its hidden checks (:mod:`autograder.checks.staged`) compare every student answer
with these functions, run in the trusted grading process on the same inputs.

Each answer uses only what the exercise's setup cell provides (``copy``, ``torch``, ``nn``,
``T``, ``Image`` and :func:`head_of`), so it runs unchanged in the student's notebook:

- :func:`param_groups`: optimizer parameter groups with discriminative learning rates;
- :func:`train_in_stages`: train the head first, then everything with the body at a lower rate;
- :func:`keep_best`: early stopping that restores the best-validation state;
- :func:`predict`: one image through the model's own preprocessing, to a class and probability.
"""

import copy

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2 as T

__all__ = ["head_of", "keep_best", "param_groups", "predict", "train_in_stages"]


def head_of(model):
    """The model's head: its last `nn.Linear` layer."""
    return [module for module in model.modules() if isinstance(module, nn.Linear)][-1]


def param_groups(model, head_lr, body_lr):
    """Return optimizer parameter groups: the head at `head_lr`, the rest at `body_lr`."""
    head = {id(p) for p in head_of(model).parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) not in head], "lr": body_lr},
        {"params": [p for p in trainable if id(p) in head], "lr": head_lr},
    ]
    return [group for group in groups if group["params"]]


def train_in_stages(model, train_epoch, head_epochs, body_epochs, head_lr, body_lr, momentum=0.9):
    """Train only the head, then unfreeze everything and train the body at a lower rate."""
    head = head_of(model)
    # Stage 1: a linear probe. The body is frozen, the optimizer holds only the head.
    model.requires_grad_(False)
    head.requires_grad_(True)
    optimizer = torch.optim.SGD(head.parameters(), lr=head_lr, momentum=momentum)
    for _ in range(head_epochs):
        train_epoch(model, optimizer)
    # Stage 2: unfreeze, and a NEW optimizer: the old one knows only the head's parameters.
    model.requires_grad_(True)
    optimizer = torch.optim.SGD(param_groups(model, head_lr, body_lr), momentum=momentum)
    for _ in range(body_epochs):
        train_epoch(model, optimizer)
    return model


def keep_best(model, train_epoch, validate, max_epochs, patience):
    """Train with early stopping; restore the best-validation state; return (epoch, score)."""
    best_epoch, best_score, best_state = 0, None, None
    for epoch in range(1, max_epochs + 1):
        train_epoch(model)
        score = validate(model)
        if best_score is None or score > best_score:
            best_epoch, best_score = epoch, score
            # A deep copy: state_dict() holds the live tensors, which later epochs overwrite.
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    return best_epoch, best_score


def predict(model, image_path, preprocessing, class_names, resize=256, crop=224):
    """Return (class name, probability) of the model's top class for one image file."""
    transform = T.Compose(
        [
            T.ToImage(),
            T.Resize(resize, antialias=True),  # the shorter side becomes `resize` pixels
            T.CenterCrop(crop),
            T.ToDtype(torch.float32, scale=True),  # uint8 0-255 -> float 0-1
            T.Normalize(list(preprocessing.mean), list(preprocessing.std)),
        ]
    )
    image = Image.open(image_path).convert("RGB")  # RGB order, whatever the file holds
    device = next(model.parameters()).device
    batch = transform(image).unsqueeze(0).to(device)
    model.eval()  # BatchNorm's running statistics, no dropout
    with torch.no_grad():
        probabilities = torch.softmax(model(batch), dim=1)[0]
    index = int(probabilities.argmax())
    return class_names[index], float(probabilities[index])
