# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # Exercise: fine-tuning in stages
#
# Practitioners rarely fine-tune a pretrained network in one go. They train the new head
# first while the body stays frozen, then unfreeze the body and train it at a lower learning
# rate; they keep the weights of the best validation epoch, not the last; and they predict
# new images with the preprocessing the network was trained with. You will write those four
# pieces. Each task is one function; its docstring and the text above it say what it must do.
#
# | task | what you write | points | lesson |
# | --- | --- | --- | --- |
# | 1 | `param_groups` | 3 | Lesson 7: Fine-tuning like a practitioner |
# | 2 | `train_in_stages` | 3 | Lesson 7: Fine-tuning like a practitioner |
# | 3 | `keep_best` | 3 | Lesson 7: Fine-tuning like a practitioner |
# | 4 | `predict` | 3 | Lesson 7: Fine-tuning like a practitioner; Lesson 4: Inputs |
# | 5 | a written answer | 2 (graded by hand) | Lesson 7: Fine-tuning like a practitioner |
# | | **total** | **14** | |
#
# **How to work.** Replace each `raise NotImplementedError(...)` line with your code,
# keeping the function's name and arguments. Then run the test cell below it. Those tests
# are quick sanity checks; when you submit, the autograder runs your functions on other
# small models, learning rates, schedules and images, and tells you what it expected, what
# it found, and a hint.
#
# Everything here runs on a CPU in seconds with tiny random networks: no download, no GPU.
#
# Do not delete, move or copy cells: the autograder finds answers and tests by their cell.
# Before submitting, run *Restart kernel and run all cells*.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import copy
import tempfile
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2 as T

from course.models import Preprocessing

torch.manual_seed(0)


def head_of(model):
    """The model's head: its last `nn.Linear` layer."""
    return [module for module in model.modules() if isinstance(module, nn.Linear)][-1]


def tiny_model(classes=3):
    """A small network for the visible tests: convolutions, BatchNorm, then a linear head."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, classes),
    )


# %% [markdown] nbgrader={"grade": false, "grade_id": "task1-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 1: parameter groups with discriminative learning rates (3 points)
#
# A pretrained body already computes useful features; a new head starts from random
# weights. So the head gets a larger learning rate than the body. PyTorch optimizers take
# *parameter groups* for that: a list of dicts, each with its own `"params"` and `"lr"`.
#
# Write `param_groups(model, head_lr, body_lr)`. The head is the model's last `nn.Linear`,
# `head_of(model)` (defined in the setup cell). Return a list of two dicts:
#
# - `{"params": [...], "lr": body_lr}`: every trainable parameter that is not the head's;
# - `{"params": [...], "lr": head_lr}`: the head's trainable parameters.
#
# Only parameters with `requires_grad` belong in them (frozen ones are left out), each
# parameter in exactly one group; leave out a group that would be empty. The result goes
# straight into an optimizer: `torch.optim.SGD(param_groups(model, 0.01, 0.001), momentum=0.9)`.
# See *Lesson 7: Fine-tuning like a practitioner*.

# %% nbgrader={"grade": false, "grade_id": "task1-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def param_groups(model, head_lr, body_lr):
    """Return optimizer parameter groups: the head at `head_lr`, the rest at `body_lr`."""
    ### BEGIN SOLUTION
    head = {id(p) for p in head_of(model).parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) not in head], "lr": body_lr},
        {"params": [p for p in trainable if id(p) in head], "lr": head_lr},
    ]
    return [group for group in groups if group["params"]]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task1-test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("groups", param_groups)
### END HIDDEN TESTS
_model = tiny_model()
_model[0].requires_grad_(False)  # the first convolution stays frozen
_groups = param_groups(_model, head_lr=0.01, body_lr=0.001)
_by_rate = {group["lr"]: {id(p) for p in group["params"]} for group in _groups}
assert set(_by_rate) == {0.01, 0.001}, (
    f"The groups' rates are {sorted(_by_rate)}; expected the head at 0.01 and the body at 0.001."
)
assert _by_rate[0.01] == {id(p) for p in _model[5].parameters()}, (
    "The head's group (lr=head_lr) must hold exactly the last Linear layer's weight and bias."
)
assert _by_rate[0.001] == {id(p) for p in _model[1].parameters()}, (
    "The body's group (lr=body_lr) must hold the trainable body parameters only: here the "
    "BatchNorm's weight and bias. The first convolution is frozen: leave it out."
)
_optimizer = torch.optim.SGD(_groups, momentum=0.9)  # an optimizer accepts the groups as they are
print(f"Task 1 looks right: {len(_groups)} groups, rates {sorted(_by_rate)}.")
del _model, _groups, _by_rate, _optimizer


# %% [markdown] nbgrader={"grade": false, "grade_id": "task2-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 2: train the head first, then everything at a lower rate (3 points)
#
# Write `train_in_stages(model, train_epoch, head_epochs, body_epochs, head_lr, body_lr,
# momentum=0.9)`. `train_epoch(model, optimizer)` is given to you: it trains the model for
# one epoch with that optimizer. Your function runs two stages and returns the model:
#
# 1. **Stage 1, the head alone.** Freeze every parameter, make the head (`head_of(model)`)
#    trainable, and call `train_epoch` `head_epochs` times with
#    `torch.optim.SGD(<the head's parameters>, lr=head_lr, momentum=momentum)`.
# 2. **Stage 2, everything.** Unfreeze every parameter and make a **new** optimizer,
#    `torch.optim.SGD(param_groups(model, head_lr, body_lr), momentum=momentum)`, so the
#    body learns at the lower `body_lr`; call `train_epoch` `body_epochs` times with it.
#
# Why a new optimizer: the first one holds only the head's parameters, so the body would
# stay as it is even though it is unfrozen. Why a lower rate for the body: large updates to
# a pretrained body, driven by a head that is still random, wipe out what it learned.
# See *Lesson 7: Fine-tuning like a practitioner*.

# %% nbgrader={"grade": false, "grade_id": "task2-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_in_stages(model, train_epoch, head_epochs, body_epochs, head_lr, body_lr, momentum=0.9):
    """Train only the head, then unfreeze everything and train the body at a lower rate."""
    ### BEGIN SOLUTION
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
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task2-test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("stages", train_in_stages)
### END HIDDEN TESTS
_seen = []


def _note_epoch(model, optimizer):
    """A stand-in for train_epoch: notes what trains and at which rates, trains nothing."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    held = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
    rates = sorted({group["lr"] for group in optimizer.param_groups})
    _seen.append((trainable, held, rates))


_model = tiny_model()
_returned = train_in_stages(_model, _note_epoch, 1, 2, head_lr=0.1, body_lr=0.01)
assert _returned is _model, "train_in_stages must end with `return model`."
_head, _all = 4 * 3 + 3, sum(p.numel() for p in _model.parameters())
assert len(_seen) == 3, f"train_epoch ran {len(_seen)} times; expected 1 + 2 epochs."
assert _seen[0] == (_head, _head, [0.1]), (
    f"Stage 1 (trainable, in the optimizer, rates) was {_seen[0]}; expected only the head's "
    f"{_head} values, trainable and in the optimizer, at lr 0.1."
)
assert _seen[1][0] == _all, (
    f"Stage 2 trains {_seen[1][0]} of {_all} values: unfreeze the model before stage 2."
)
assert _seen[1][1] == _all, (
    f"Stage 2's optimizer holds {_seen[1][1]} of {_all} values: make a new one after unfreezing."
)
assert _seen[1][2] == [0.01, 0.1], (
    f"Stage 2's rates are {_seen[1][2]}; expected the body at 0.01 and the head at 0.1."
)
print("Task 2 looks right:", _seen)
del _seen, _model, _returned, _head, _all


# %% [markdown] nbgrader={"grade": false, "grade_id": "task3-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 3: keep the best validation state, and stop early (3 points)
#
# The last epoch is rarely the best one. Write `keep_best(model, train_epoch, validate,
# max_epochs, patience)`:
#
# - for each epoch `1, 2, ..., max_epochs`: call `train_epoch(model)`, then
#   `score = validate(model)` (higher is better);
# - when the score is strictly higher than every earlier one, remember that epoch, its
#   score, and a **copy** of the model's state: `copy.deepcopy(model.state_dict())`;
# - stop early once `patience` epochs in a row brought no improvement
#   (`epoch - best_epoch >= patience`);
# - at the end, put the best state back with `model.load_state_dict(...)` and return
#   `(best_epoch, best_score)`.
#
# Careful: `model.state_dict()` returns the model's *live* tensors. Keeping it without a
# deep copy (or with `dict.copy()`, which copies only the dict) means the "best" state
# follows every later epoch, silently. The state dict also holds buffers such as
# BatchNorm's running statistics, which belong to the best state too.
# See *Lesson 7: Fine-tuning like a practitioner*.

# %% nbgrader={"grade": false, "grade_id": "task3-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def keep_best(model, train_epoch, validate, max_epochs, patience):
    """Train with early stopping; restore the best-validation state; return (epoch, score)."""
    ### BEGIN SOLUTION
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
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task3-test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("best", keep_best)
### END HIDDEN TESTS
_model = nn.Linear(2, 1)
_scores = [0.5, 0.7, 0.6, 0.65, 0.55, 0.9]  # best so far at epoch 2; with patience 2, stop at 4
_log = []


def _step(model):
    """A stand-in for train_epoch: changes the weights in place, as an optimizer does."""
    with torch.no_grad():
        model.weight.add_(1.0)
    _log.append(model.weight[0, 0].item())


def _validate(model):
    return _scores[len(_log) - 1]


_result = keep_best(_model, _step, _validate, max_epochs=6, patience=2)
assert len(_log) == 4, f"{len(_log)} epochs ran; expected 4 (no improvement in epochs 3 and 4)."
assert tuple(_result) == (2, 0.7), f"Returned {_result}; expected (2, 0.7): epochs count from 1."
assert _model.weight[0, 0].item() == _log[1], (
    f"The model ends with the weight {_model.weight[0, 0].item():.1f} (epoch 4's: {_log[3]:.1f}); "
    f"expected epoch 2's, {_log[1]:.1f}. Save copy.deepcopy(model.state_dict()) and restore it."
)
print("Task 3 looks right: best epoch", _result[0], "restored.")
del _model, _scores, _log, _result


# %% [markdown] nbgrader={"grade": false, "grade_id": "task4-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 4: predict one image with the model's own preprocessing (3 points)
#
# Write `predict(model, image_path, preprocessing, class_names, resize=256, crop=224)` that
# returns `(class_name, probability)` for the model's most likely class:
#
# 1. Open the file with PIL in RGB: `Image.open(image_path).convert("RGB")`.
# 2. Transform it as the model's evaluation inputs were: `T.ToImage()`, `T.Resize(resize)`
#    (the shorter side becomes `resize` pixels), `T.CenterCrop(crop)`,
#    `T.ToDtype(torch.float32, scale=True)` (0-255 to 0-1), and
#    `T.Normalize(preprocessing.mean, preprocessing.std)`: the statistics of **this**
#    model (`model.preprocessing` for `course.models`), which are not always ImageNet's.
# 3. Add the batch dimension (`.unsqueeze(0)`), put the model in evaluation mode
#    (`model.eval()`) and run it inside `with torch.no_grad():`.
# 4. Turn the logits into probabilities with `torch.softmax(..., dim=1)`; return the name
#    `class_names[i]` of the largest and its probability as a Python `float`.
#
# See *Lesson 7: Fine-tuning like a practitioner* and *Lesson 4: Inputs*.

# %% nbgrader={"grade": false, "grade_id": "task4-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def predict(model, image_path, preprocessing, class_names, resize=256, crop=224):
    """Return (class name, probability) of the model's top class for one image file."""
    ### BEGIN SOLUTION
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
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "task4-test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
# Saves what your function returns on the grader's inputs; the grader compares.
from course.grading_record import record_task

record_task("predict", predict)
### END HIDDEN TESTS
_model = tiny_model(classes=3).train()  # fresh from training: predict must switch to eval
_stats = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), label="(x - 0.5) / 0.5")
_pixels = torch.randint(0, 256, (50, 70, 3), dtype=torch.uint8).numpy()
with tempfile.TemporaryDirectory() as _folder:
    _path = Path(_folder) / "photo.png"
    Image.fromarray(_pixels).save(_path)
    _name, _probability = predict(_model, _path, _stats, ["cat", "dog", "ship"], resize=40, crop=32)
assert _name in ("cat", "dog", "ship"), f"Returned the class {_name!r}: use class_names[index]."
assert isinstance(_probability, float) and 1 / 3 <= _probability <= 1, (
    f"Returned the probability {_probability!r}: the softmax's largest value, as a float."
)
assert not _model.training, "The model is still in training mode: call model.eval()."
print(f"Task 4 looks right: {_name} ({_probability:.1%}).")
del _model, _stats, _pixels, _path, _name, _probability

# %% [markdown] nbgrader={"grade": false, "grade_id": "task5-text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Task 5: why in stages? (2 points, graded by hand)
#
# In three to five sentences, answer in the cell below:
#
# 1. Why train the new head alone first, instead of unfreezing everything from the start?
# 2. Why does the body get a lower learning rate than the head once it is unfrozen?
#
# See *Lesson 7: Fine-tuning like a practitioner*.

# %% [markdown] nbgrader={"grade": true, "grade_id": "task5-answer", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# *Model answer (grading guide: 1 point for each question).*
# A new head starts from random weights, so its first gradients are large and point in
# arbitrary directions; flowing back into an unfrozen body they would overwrite pretrained
# features before the head has learned anything to use them for. Training the head alone
# first (a linear probe on frozen features) gives it sensible weights, so the gradients
# that later reach the body are small and meaningful. The pretrained body is already close
# to good weights and only needs small adjustments: a lower learning rate keeps it near
# what it learned on the large data set (less forgetting, less overfitting of a small
# data set), while the head, which is still far from its optimum, keeps the larger rate.
# ### END SOLUTION
