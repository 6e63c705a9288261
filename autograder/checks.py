"""Hidden checks for the ``transfer_learning`` exercise.

Each ``check_*`` function takes the student's function, runs it on fixtures it
builds itself, and compares the result with the reference implementation in
``solutions.transfer`` run on the same fixtures in the same process. A hidden
test cell imports one ``check_*`` function and calls it with the student's function.

Design rules, all of them load-bearing:

- Nothing here reads state from the student's notebook except the function
  under test: fixtures, seeds and expected values are made here, so a notebook
  cannot redefine what "expected" means.
- Every check runs offline on the CPU in well under ten seconds on two cores.
  Where only the *structure* of a large model matters (which parameters train,
  what the head looks like), the model lives on PyTorch's ``meta`` device: no
  memory, no initialization cost.
- A check is quiet on stderr when it passes (nbgrader gives zero points to a
  test cell that writes to stderr), and raises :class:`CheckFailure` with what
  was expected, what was found and a hint when it does not.
- The source exercise is executed with its solutions by
  ``tests/test_exercise_source.py``, and ``tests/test_checks.py`` runs every
  check against ``solutions.transfer``: together they keep the exercise's
  solution regions and ``solutions/`` from drifting apart silently.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.feedback import call_student, fail, summarize
from solutions import transfer as reference

TASKS = {
    "load": "Task 1 (load VGG16)",
    "freeze": "Task 2 (freeze and unfreeze)",
    "head": "Task 3 (replace the head)",
    "transforms": "Task 4 (transforms)",
    "optimizer": "Task 5 (optimizer)",
    "stats": "Task 6 (channel statistics)",
    "train": "Task 7 (train and evaluate)",
}

#: The lecture's exact bug leaves only the new 10-way head trainable: 4096 * 10 + 10.
LECTURE_BUG_TRAINABLE = 4096 * 10 + 10

_FREEZE_FIX = (
    "`model.classifier[3].requires_grad = True` only attaches a new attribute to the Linear "
    "module, and PyTorch never reads it. Call `model.classifier[3].requires_grad_(True)` (with "
    "the trailing underscore: it sets every parameter of the module), or loop: "
    "`for p in model.classifier[3].parameters(): p.requires_grad = True`. "
    "See Lesson 2: Freezing layers."
)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _isolated(seed: int = 0) -> Iterator[None]:
    """Seed torch, keep warnings off stderr, use one CPU thread; restore all of it afterwards.

    One thread because the fixtures are tiny: on a busy machine (parallel autograding) two
    OpenMP threads spin-wait for each other and a 20 ms forward pass takes seconds.
    """
    threads = torch.get_num_threads()
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def _meta_model(name: str) -> nn.Module:
    """A torchvision model with the real architecture and no storage (instant to build)."""
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None)


def _on_meta(task: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a student's model builder on the meta device (instant), or normally if that fails.

    Building VGG16's 138 million random weights takes seconds on a small CPU; only the
    architecture is checked, so the meta device is enough. Code that does not run on the meta
    device gets a normal call: the device is our shortcut and must never cost a point.
    """
    try:
        with torch.device("meta"):
            return function(*args, **kwargs)
    except Exception:  # retried for real, where errors become feedback
        return call_student(task, function, *args, **kwargs)


def _require_module(task: str, value: Any, call: str) -> nn.Module:
    if not isinstance(value, nn.Module):
        fail(
            task,
            "your function did not return a model.",
            expected=f"{call} to return an nn.Module",
            found=f"{type(value).__name__} ({value!r:.60})",
            hint="End the function with `return model`.",
        )
    return value


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _count(params: dict[str, nn.Parameter]) -> int:
    return sum(p.numel() for p in params.values())


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"


# --------------------------------------------------------------------------- task 1


def check_load_vgg16(load_vgg16: Callable[..., nn.Module]) -> None:
    """Task 1: ``load_vgg16(weights)`` returns course.models' VGG16 and passes ``weights`` on.

    Graded with ``weights="random"`` (no ImageNet download can happen here). A
    path to a missing file must raise the course's ``WeightsError``: that shows
    the argument reaches ``course.models.load_model`` instead of being ignored.
    """
    from course.errors import CourseError

    task = TASKS["load"]
    call = "load_vgg16(weights='random')"
    with _isolated():
        model = _require_module(task, _on_meta(task, load_vgg16, weights="random"), call)
        with torch.device("meta"):
            expected = reference.load_vgg16(weights="random")
    want, got = _shapes(expected), _shapes(model)
    if want != got:
        missing = [k for k in want if k not in got]
        wrong = [k for k in want if k in got and got[k] != want[k]]
        fail(
            task,
            "the model is not torchvision's VGG16 with its 1000-way ImageNet head.",
            expected=f"{type(expected).__name__} with {sum(math.prod(s) for s in want.values()):,} "
            "values in its state dict",
            found=f"{type(model).__name__}; missing: {summarize(missing)}; "
            f"different shape: {summarize(wrong)}",
            hint="Return `load_model('vgg16', weights=weights)` from course.models unchanged; "
            "tasks 2 and 3 modify it later.",
        )
    want_label = getattr(expected, "weights_label", None)
    got_label = getattr(model, "weights_label", None)
    if want_label != got_label:
        fail(
            task,
            "the model was not loaded through course.models.load_model.",
            expected=f"model.weights_label == {want_label!r}",
            found=f"model.weights_label == {got_label!r}",
            hint="Use `course.models.load_model('vgg16', weights=weights)`: it labels which "
            "weights a model carries, and gives a clear error when ImageNet weights are not "
            "available.",
        )
    missing_file = str(Path(tempfile.gettempdir()) / "no-such-dir-autograder" / "vgg16.pth")
    with _isolated(), torch.device("meta"):  # a student who ignores the path builds a VGG16
        try:
            load_vgg16(weights=missing_file)
        except CourseError:
            return
        except Exception as error:  # reported to the student
            found = f"{type(error).__name__}: {error}"
        else:
            found = "a model, as if the argument were ignored"
    fail(
        task,
        "the `weights` argument does not reach course.models.load_model.",
        expected=f"load_vgg16(weights={missing_file!r}) to raise course.errors.WeightsError",
        found=found,
        hint="Pass the argument on: `load_model('vgg16', weights=weights)`, not a fixed value.",
    )


# --------------------------------------------------------------------------- task 2


def _reference_trainable(head_first: bool) -> dict[str, nn.Parameter]:
    model = _meta_model("vgg16")
    with torch.device("meta"):
        if head_first:
            model = reference.replace_head(model, 10)
        model = reference.unfreeze(reference.freeze_backbone(model))
        if not head_first:
            model = reference.replace_head(model, 10)
    return _trainable(model)


def check_freezing(freeze_and_unfreeze: Callable[[nn.Module], nn.Module]) -> None:
    """Task 2: exactly fc6, fc7 and the head train; the lecture's bug is named with its fix.

    Two orders are tried on a VGG16 on the meta device: the lecture's (freeze,
    then task 3 replaces the head) and the reverse (head replaced first). Both
    must leave exactly the reference's parameter names trainable.
    """
    task = TASKS["freeze"]
    for head_first in (False, True):
        with _isolated():
            model = _meta_model("vgg16")
            if head_first:
                with torch.device("meta"):
                    model = reference.replace_head(model, 10)
            model = _require_module(
                task, call_student(task, freeze_and_unfreeze, model), "freeze_and_unfreeze(model)"
            )
            if not head_first:
                with torch.device("meta"):
                    model = reference.replace_head(model, 10)
            expected = _reference_trainable(head_first)
        _compare_trainable(task, model, expected, head_first)


def _compare_trainable(
    task: str, model: nn.Module, expected: dict[str, nn.Parameter], head_first: bool
) -> None:
    found = _trainable(model)
    if set(found) == set(expected):
        return
    order = (
        "with the head replaced before your function ran"
        if head_first
        else "in the lecture's order (your function, then the new head)"
    )
    want = f"{_count(expected):,} trainable parameters in {summarize(expected)}"
    got = f"{_count(found):,} trainable parameters in {summarize(found)}"
    flagged = [name for name, module in model.named_modules() if "requires_grad" in vars(module)]
    if flagged:
        where = ", ".join(
            f"{name or 'model'} ({type(model.get_submodule(name)).__name__})" for name in flagged
        )
        fail(
            task,
            "this is the lecture's freezing bug: `requires_grad` was set on a module, "
            "not on its parameters.",
            expected=want,
            found=f"{got}\na plain `requires_grad` attribute on {where}; its parameters stayed "
            "frozen",
            hint=_FREEZE_FIX,
        )
    if not head_first and _count(found) == LECTURE_BUG_TRAINABLE:
        fail(
            task,
            f"only the new head trains ({LECTURE_BUG_TRAINABLE:,} parameters): a linear probe, "
            "which is what the lecture's code really ran, not fine-tuning fc6 and fc7.",
            expected=want,
            found=got,
            hint="After freezing everything, make fc6 (classifier[0]) and fc7 (classifier[3]) "
            "trainable again with `.requires_grad_(True)`. " + _FREEZE_FIX,
        )
    extra = [n for n in found if n not in expected]
    missing = [n for n in expected if n not in found]
    if extra:
        fail(
            task,
            f"some parameters that must stay frozen are trainable ({order}).",
            expected=want,
            found=f"{got}\nshould be frozen: {summarize(extra)}",
            hint="Freeze everything first with `model.requires_grad_(False)`, then unfreeze "
            "only classifier[0] (fc6), classifier[3] (fc7) and classifier[6] (the head).",
        )
    head_missing = head_first and all(n.startswith("classifier.6.") for n in missing)
    fail(
        task,
        f"some parameters that must train are frozen ({order}).",
        expected=want,
        found=f"{got}\nshould train: {summarize(missing)}",
        hint=(
            "Unfreeze the head too (classifier[6]), so your function gives the same result "
            "whether the head is replaced before or after it runs."
            if head_missing
            else "fc6 is classifier[0] and fc7 is classifier[3] (the ReLU and Dropout layers "
            "between them have no parameters); call `.requires_grad_(True)` on each of them "
            "and on the head, classifier[6]."
        ),
    )


# --------------------------------------------------------------------------- task 3

#: (family, classes, on meta device). Structure is checked on all three; MobileNetV3-Small,
#: the one cheap to build for real, also runs an image and proves the rest kept its weights.
HEAD_CASES: tuple[tuple[str, int, bool], ...] = (
    ("vgg16", 10, True),
    ("resnet18", 7, True),
    ("mobilenet_v3_small", 3, False),
)


_HEAD_CRASH_HINT = (
    "Your function must work for other families too, each keeping its last layer in another "
    "place: VGG16 `model.classifier[6]`, ResNet `model.fc`, MobileNetV3 `model.classifier[3]`. "
    "Find the last `nn.Linear` in `model.named_modules()` and replace it there."
)


def check_head_replacement(replace_head: Callable[[nn.Module, int], nn.Module]) -> None:
    """Task 3: a fresh, trainable ``Linear(in_features, num_classes)`` replaces the last layer.

    Tried on VGG16, ResNet-18 and MobileNetV3-Small, each with a different
    number of classes, and compared with ``solutions.transfer.replace_head``.
    Meta-device models are only compared by structure: a student's new layer
    may live on the CPU, which is right for a real model.
    """
    task = TASKS["head"]
    for family, classes, meta in HEAD_CASES:
        with _isolated():
            # The reference needs only the architecture.
            ref = _meta_model(family)
            with torch.device("meta"):
                ref = reference.replace_head(ref, classes)
            head = reference.head_name(ref)
            model = _meta_model(family) if meta else _small_model(family)
            # Keeping the old parameters referenced also keeps their ids unique.
            old = dict(model.named_parameters())
            before = {} if meta else {n: p.detach().clone() for n, p in old.items()}
            call = f"replace_head(<{type(model).__name__}>, {classes})"
            answer = call_student(task, replace_head, model, classes, hint=_HEAD_CRASH_HINT)
            model = _require_module(task, answer, call)
            _compare_head(task, family, classes, call, model, ref, head, before, old)


def _small_model(name: str) -> nn.Module:
    return torchvision.models.get_model(name, weights=None)


def _compare_head(
    task: str,
    family: str,
    classes: int,
    call: str,
    model: nn.Module,
    ref: nn.Module,
    head: str,
    before: dict[str, torch.Tensor],
    old: dict[str, nn.Parameter],
) -> None:
    want, got = _shapes(ref), _shapes(model)
    ref_head = ref.get_submodule(head)
    expected = f"{family}.{head} = Linear({ref_head.in_features}, {classes})"
    if want != got:
        key = f"{head}.weight"
        if set(want) == set(got) and len(got[key]) == 2:
            out_f, in_f = got[key]
            found = f"{family}.{head} with weight shape {got[key]} = Linear({in_f}, {out_f})"
            if in_f != ref_head.in_features:
                hint = (
                    "Keep the old layer's input size: "
                    "`nn.Linear(old.in_features, num_classes)` where `old` is the layer you "
                    "replace; it differs between families."
                )
            else:
                hint = "Use the `num_classes` argument for the output size, not a fixed number."
            fail(
                task,
                f"the new head of {family} has the wrong shape.",
                expected=expected,
                found=found,
                hint=hint,
            )
        extra = [k for k in got if k not in want]
        missing = [k for k in want if k not in got]
        fail(
            task,
            f"{call} changed the wrong part of the model.",
            expected=expected + ", everything else unchanged",
            found=f"extra: {summarize(extra)}; missing: {summarize(missing)}",
            hint="Replace the last Linear layer in place (ResNet: `model.fc`; VGG and "
            "MobileNetV3: `model.classifier[-1]`) instead of adding a layer after it or "
            "wrapping the model.",
        )
    new_head = model.get_submodule(head)
    if not isinstance(new_head, nn.Linear) or new_head.weight is old.get(f"{head}.weight"):
        fail(
            task,
            f"the head of {family} was not replaced by a new layer.",
            expected=expected + " (a new layer)",
            found=f"{type(new_head).__name__} at {head}, the original object",
            hint="Assign a new `nn.Linear(old.in_features, num_classes)` to the head's place.",
        )
    frozen = [n for n, p in new_head.named_parameters() if not p.requires_grad]
    if frozen:
        fail(
            task,
            f"the new head of {family} is frozen.",
            expected="every parameter of the new head trainable",
            found=f"frozen: {', '.join(frozen)}",
            hint="A fresh nn.Linear is trainable; do not freeze it after creating it.",
        )
    now = dict(model.named_parameters())
    changed = [
        n
        for n, value in before.items()
        if not n.startswith(head + ".") and not torch.equal(now[n].detach(), value)
    ]
    if changed:
        fail(
            task,
            f"{call} changed layers other than the head.",
            expected="the rest of the model exactly as it came in",
            found=f"changed: {summarize(changed)}",
            hint="Only replace the last layer; do not reload or re-initialize the model.",
        )
    if before:  # real (small) models: run one image through
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 32, 32))
        if tuple(out.shape) != (1, classes):
            fail(
                task,
                f"{family} does not give {classes} scores per image.",
                expected=f"output shape (1, {classes})",
                found=f"{tuple(out.shape)}",
                hint="The last layer's out_features must be num_classes.",
            )


# --------------------------------------------------------------------------- task 4

#: (size, normalization, augment): the lecture's large and small protocols and a third mix.
TRANSFORM_CASES: tuple[tuple[int, str, bool], ...] = (
    (224, "imagenet", False),
    (64, "imagenet", True),
    (40, "half", False),
)
#: Mean absolute difference allowed on textured images, in normalized units. Different
#: resize implementations (tensor vs PIL, antialias) differ by ~1 grey level; a missing
#: resize, crop or normalization differs by far more.
TEXTURE_TOLERANCE = 0.05
#: A constant image resizes to exactly itself, so normalization is checked tightly:
#: tight enough to see the lecture's 0.2255 typo (a 0.2% change).
CONSTANT_TOLERANCE = 2e-4


def _fixed_images() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Constant-colour and smooth textured uint8 CHW images, the same on every run."""
    constants = [
        torch.full((3, 32, 32), 0, dtype=torch.uint8),
        torch.full((3, 32, 32), 255, dtype=torch.uint8),
        torch.tensor([128, 64, 200], dtype=torch.uint8).view(3, 1, 1).expand(3, 32, 32).clone(),
    ]
    generator = torch.Generator().manual_seed(7)
    textures = []
    for _ in range(2):
        coarse = torch.rand(1, 3, 8, 8, generator=generator)
        smooth = nn.functional.interpolate(coarse, size=(32, 32), mode="bicubic")[0]
        noise = 0.03 * torch.randn(3, 32, 32, generator=generator)
        textures.append(((smooth + noise).clamp(0, 1) * 255).round().to(torch.uint8))
    return constants, textures


def check_transforms(build_transforms: Callable[..., tuple[Callable, Callable]]) -> None:
    """Task 4: train and eval transforms match the reference for fixed images at several sizes.

    Normalization is checked exactly on constant images (that is where the
    lecture's ``0.2255`` typo shows); resizing and cropping are checked with a
    tolerance on textured images; a random crop must be *some* window of the
    resized image and must vary between calls.
    """
    task = TASKS["transforms"]
    constants, textures = _fixed_images()
    for size, normalization, augment in TRANSFORM_CASES:
        call = f"build_transforms({size}, {normalization!r}, augment={augment})"
        with _isolated():
            result = call_student(task, build_transforms, size, normalization, augment=augment)
            if not (
                isinstance(result, (tuple, list))
                and len(result) == 2
                and all(map(callable, result))
            ):
                fail(
                    task,
                    "the function must return two transforms.",
                    expected=f"{call} to return (train_transform, eval_transform)",
                    found=f"{type(result).__name__} ({result!r:.80})",
                    hint="End with `return train_transform, eval_transform`.",
                )
            train_tf, eval_tf = result
            ref_train, ref_eval = reference.build_transforms(size, normalization, augment=augment)
            for name, tf in (("eval", eval_tf), ("train", train_tf)):
                for image in constants:
                    _check_normalized(task, call, name, tf, image, ref_eval(image), normalization)
            for image in textures:
                _check_close(task, call, "eval", eval_tf, image, ref_eval(image), size, augment)
                if augment:
                    _check_random_crop(task, call, train_tf, image, size, normalization)
                else:
                    _check_close(
                        task, call, "train", train_tf, image, ref_train(image), size, augment
                    )


def _apply(task: str, call: str, which: str, tf: Callable, image: torch.Tensor) -> torch.Tensor:
    out = call_student(task, tf, image.clone())
    if not isinstance(out, torch.Tensor) or out.dtype != torch.float32 or out.dim() != 3:
        found = (
            f"{type(out).__name__} {tuple(out.shape)} {out.dtype}"
            if isinstance(out, torch.Tensor)
            else type(out).__name__
        )
        fail(
            task,
            f"the {which} transform does not return a float image tensor.",
            expected="a float32 tensor of shape (3, size, size)",
            found=found,
            hint="End the pipeline with `ToDtype(torch.float32, scale=True)` and `Normalize`.",
        )
    return out


def _check_normalized(
    task: str,
    call: str,
    which: str,
    tf: Callable,
    image: torch.Tensor,
    expected: torch.Tensor,
    normalization: str,
) -> None:
    from course.data import LECTURE_TYPO_STD, NORMALIZATIONS

    out = _apply(task, call, which, tf, image)
    found = out.double().mean(dim=(1, 2))
    want = expected.double().mean(dim=(1, 2))
    if torch.allclose(found, want, atol=CONSTANT_TOLERANCE, rtol=0):
        return
    value = image[:, 0, 0].double() / 255
    mean, std = (torch.tensor(v, dtype=torch.float64) for v in NORMALIZATIONS[normalization])
    colour = tuple(int(c) for c in image[:, 0, 0])
    close = lambda a: torch.allclose(found, a, atol=CONSTANT_TOLERANCE * 10, rtol=0)  # noqa: E731
    problem = f"the {which} transform normalizes a constant image {colour} wrongly."
    hint = (
        f"Normalize with course.data.NORMALIZATIONS[{normalization!r}] "
        "after `ToDtype(torch.float32, scale=True)`."
    )
    if close(value):
        hint = "The values are still in [0, 1]: add `Normalize(mean, std)` at the end."
    elif close(value * 255) or close((value * 255 - mean) / std):
        hint = "The values were never scaled to [0, 1]: use `ToDtype(torch.float32, scale=True)`."
    elif close((value - mean) / torch.tensor(LECTURE_TYPO_STD, dtype=torch.float64)):
        hint = (
            "That is the lecture's typo: std 0.2255 for blue instead of 0.225. "
            f"Use course.data.NORMALIZATIONS[{normalization!r}] instead of typing numbers."
        )
    else:
        for other, (m, s) in NORMALIZATIONS.items():
            if other != normalization and close(
                (value - torch.tensor(m, dtype=torch.float64))
                / torch.tensor(s, dtype=torch.float64)
            ):
                hint = (
                    f"These are the {other!r} statistics; use the `normalization` argument: "
                    f"NORMALIZATIONS[normalization]."
                )
    fail(
        task,
        problem,
        expected=f"{call}: per-channel values {_fmt(want.tolist())}",
        found=f"{_fmt(found.tolist())}",
        hint=hint,
    )


def _shape_hint(shape: tuple[int, ...], size: int, augment: bool) -> str:
    if shape[-2:] == (32, 32):
        return (
            f"The image was not resized: add `Resize({size + 6 if augment else size}, "
            "antialias=True)`."
        )
    if augment and shape[-2:] == (size + 6, size + 6):
        return (
            f"Crop after resizing: `RandomCrop({size})` for training, `CenterCrop({size})` "
            "for evaluation."
        )
    return (
        f"Resize to {size + 6} and crop {size}" if augment else f"Resize to {size}"
    ) + " (an int: the short side), as the task says."


def _check_close(
    task: str,
    call: str,
    which: str,
    tf: Callable,
    image: torch.Tensor,
    expected: torch.Tensor,
    size: int,
    augment: bool,
) -> None:
    out = _apply(task, call, which, tf, image)
    if out.shape != expected.shape:
        fail(
            task,
            f"the {which} transform gives images of the wrong size.",
            expected=f"{call}: shape {tuple(expected.shape)}",
            found=f"shape {tuple(out.shape)}",
            hint=_shape_hint(tuple(out.shape), size, augment),
        )
    error = (out - expected).abs().mean().item()
    if error > TEXTURE_TOLERANCE:
        fail(
            task,
            f"the {which} transform's pixels differ from the reference.",
            expected=f"{call}: mean absolute difference <= {TEXTURE_TOLERANCE}",
            found=f"{error:.3f}",
            hint=(
                "Evaluation must be deterministic: `Resize(size + 6)` then `CenterCrop(size)`."
                if augment
                else "Without augmentation both transforms are "
                "`Resize(size)`, `ToDtype(torch.float32, scale=True)`, `Normalize`; no crop "
                "or flip."
            )
            + " Use bilinear resizing (the default).",
        )


def _check_random_crop(
    task: str, call: str, tf: Callable, image: torch.Tensor, size: int, normalization: str
) -> None:
    _, big_eval = reference.build_transforms(size + 6, normalization, augment=False)
    big = big_eval(image)
    windows = big.unfold(1, size, 1).unfold(2, size, 1)  # (3, 7, 7, size, size)
    positions = set()
    for _ in range(6):
        out = _apply(task, call, "train", tf, image)
        if out.shape != (3, size, size):
            fail(
                task,
                "the train transform gives images of the wrong size.",
                expected=f"{call}: shape (3, {size}, {size})",
                found=f"shape {tuple(out.shape)}",
                hint=_shape_hint(tuple(out.shape), size, True),
            )
        errors = (windows - out[:, None, None]).abs().mean(dim=(0, 3, 4))
        best = errors.argmin()
        if errors.flatten()[best] > TEXTURE_TOLERANCE:
            fail(
                task,
                "the train transform's output is not a crop of the resized image.",
                expected=f"{call}: a {size}x{size} window of the image resized to {size + 6}",
                found=f"no window closer than {errors.min().item():.3f} (mean abs. difference)",
                hint=f"Training uses `Resize({size + 6})` then `RandomCrop({size})`, then "
                "`ToDtype` and `Normalize`.",
            )
        positions.add(int(best))
    if len(positions) < 2:
        fail(
            task,
            "the train transform always crops the same window.",
            expected="a random crop position",
            found="the same window in 6 calls",
            hint=f"Use `RandomCrop({size})` for training; `CenterCrop` is for evaluation.",
        )


# --------------------------------------------------------------------------- task 5


def _optimizer_models() -> list[tuple[str, nn.Module]]:
    """VGG16 as in task 2, and a ResNet-18 with only layer4 and fc trainable (meta device)."""
    vgg = _meta_model("vgg16")
    with torch.device("meta"):
        vgg = reference.unfreeze(reference.freeze_backbone(reference.replace_head(vgg, 10)))
    resnet = _meta_model("resnet18")
    resnet.requires_grad_(False)
    resnet.layer4.requires_grad_(True)
    resnet.fc.requires_grad_(True)
    return [("VGG16 (fc6, fc7, head trainable)", vgg), ("ResNet-18 (layer4, fc trainable)", resnet)]


def check_optimizer(make_optimizer: Callable[..., torch.optim.Optimizer]) -> None:
    """Task 5: SGD over exactly the trainable parameters, with the given lr and momentum."""
    task = TASKS["optimizer"]
    lr, momentum = 0.005, 0.8  # not the defaults, so fixed values show up
    for label, model in _optimizer_models():
        with _isolated():
            call = f"make_optimizer(<{label}>, lr={lr}, momentum={momentum})"
            opt = call_student(task, make_optimizer, model, lr=lr, momentum=momentum)
            ref = reference.make_optimizer(model, lr=lr, momentum=momentum)
        if not isinstance(opt, torch.optim.Optimizer) or type(opt) is not type(ref):
            fail(
                task,
                "the function must return the lecture's optimizer.",
                expected=f"{call} to return torch.optim.{type(ref).__name__}",
                found=type(opt).__name__,
                hint="Return `torch.optim.SGD(params, lr=lr, momentum=momentum)`.",
            )
        names = {id(p): n for n, p in model.named_parameters()}
        held = {id(p) for g in opt.param_groups for p in g["params"]}
        want = {id(p) for g in ref.param_groups for p in g["params"]}
        order = list(names)  # model order reads better than set order
        frozen = [names[i] for i in order if i in held - want]
        frozen += ["<not a parameter of the model>"] * len((held - want) - set(names))
        missing = [names[i] for i in order if i in want - held]
        if frozen or missing:
            fail(
                task,
                "the optimizer holds the wrong parameters.",
                expected=f"{call}: the {len(want)} trainable tensors "
                f"({summarize(names[i] for i in order if i in want)})",
                found=f"{len(held)} tensors; frozen ones included: {summarize(frozen)}; "
                f"trainable ones left out: {summarize(missing)}",
                hint="Give SGD only parameters that train: "
                "`[p for p in model.parameters() if p.requires_grad]`. It must work for any "
                "model, so do not pick layers by name.",
            )
        ref_group = ref.param_groups[0]
        for group in opt.param_groups:
            for key in ("lr", "momentum", "weight_decay", "dampening", "nesterov"):
                if group.get(key) != ref_group[key]:
                    fail(
                        task,
                        f"the optimizer's {key} is not the one asked for.",
                        expected=f"{call}: {key}={ref_group[key]}",
                        found=f"{key}={group.get(key)}",
                        hint="Pass the function's `lr` and `momentum` arguments to SGD and "
                        "leave the other settings at their defaults (the lecture's).",
                    )


# --------------------------------------------------------------------------- task 6


#: Absolute tolerance on each mean and std: float32 accumulation is well inside it.
STATS_TOLERANCE = 1e-5


def _stats_fixture() -> tuple[torch.Tensor, torch.Tensor]:
    """50 small uint8 images whose brightness varies, sorted so minibatches differ.

    6x6 pixels keep the data small enough that dividing by N - 1 instead of N
    shows clearly (1,800 values per channel: about 4e-5 apart, against a
    tolerance of 1e-5).
    """
    generator = torch.Generator().manual_seed(11)
    n = 50
    brightness = torch.rand(n, 1, 1, 1, generator=generator)
    channel = torch.tensor([0.8, 0.5, 0.3]).view(1, 3, 1, 1)
    noise = torch.rand(n, 3, 6, 6, generator=generator)
    images = (255 * (0.6 * brightness * channel + 0.4 * noise)).round().to(torch.uint8)
    order = images.float().mean(dim=(1, 2, 3)).argsort()
    labels = torch.randint(0, 10, (n,), generator=generator)
    return images[order], labels


def _as_stats(task: str, call: str, result: Any) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        mean, std = result
        mean = torch.as_tensor(mean, dtype=torch.float64).flatten()
        std = torch.as_tensor(std, dtype=torch.float64).flatten()
        assert mean.numel() == std.numel() == 3
    except Exception:  # any shape problem gets the same explanation
        fail(
            task,
            "the result has the wrong form.",
            expected=f"{call} to return (mean, std), each three numbers (R, G, B)",
            found=f"{type(result).__name__} ({result!r:.80})",
            hint="Return two tuples of three floats: `return tuple(mean.tolist()), "
            "tuple(std.tolist())`.",
        )
    return mean, std


def _wrong_stats(
    images: torch.Tensor, batch_size: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Typical wrong means and wrong stds, by name; a student may make one of each."""
    x = images.double() / 255
    batches = x.split(batch_size)
    dims = (0, 2, 3)
    means = {
        "the average of per-batch means (wrong when batches differ in size)": torch.stack(
            [b.mean(dim=dims) for b in batches]
        ).mean(0),
    }
    stds = {
        "the average of per-batch standard deviations (the lecture's way)": torch.stack(
            [b.std(dim=dims, unbiased=False) for b in batches]
        ).mean(0),
        "the average of per-batch sample standard deviations (the lecture's way, and "
        "torch.std divides by N - 1 unless unbiased=False)": torch.stack(
            [b.std(dim=dims) for b in batches]
        ).mean(0),
        "the sample standard deviation (divided by N - 1, torch.std's default)": x.std(dim=dims),
        "the variance, not its square root": x.var(dim=dims, unbiased=False),
        "the spread of per-image means, not of pixels": x.mean(dim=(2, 3)).std(
            dim=0, unbiased=False
        ),
    }
    return means, stds


def check_channel_stats(
    channel_stats: Callable[[Any], tuple[Sequence[float], Sequence[float]]],
) -> None:
    """Task 6: exact per-channel mean and population std over a whole loader, in one pass.

    Two loaders over the same images are tried: minibatches of 16 (the last
    one smaller) and one single batch. Typical mistakes are recognized by name.
    """
    task = TASKS["stats"]
    images, labels = _stats_fixture()
    want_mean, want_std = (
        torch.tensor(v, dtype=torch.float64) for v in reference.channel_stats(images)
    )
    dataset = TensorDataset(images.float() / 255, labels)
    for batch_size in (16, len(images)):
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
        call = f"channel_stats(<loader, {len(images)} images of 6x6, batches of {batch_size}>)"
        with _isolated():
            mean, std = _as_stats(task, call, call_student(task, channel_stats, loader))
        if torch.allclose(mean, want_mean, atol=STATS_TOLERANCE, rtol=0) and torch.allclose(
            std, want_std, atol=STATS_TOLERANCE, rtol=0
        ):
            continue
        hint = (
            "Accumulate, per channel and in float64, the number of pixels, their sum and "
            "the sum of their squares over all batches; at the end mean = sum / n and "
            "std = sqrt(sum_sq / n - mean**2)."
        )
        wrong_means, wrong_stds = _wrong_stats(images, batch_size)
        diagnoses = [
            f"Your {which} matches {mistake}."
            for which, value, candidates in (("mean", mean, wrong_means), ("std", std, wrong_stds))
            for mistake, candidate in candidates.items()
            if torch.allclose(value, candidate, atol=STATS_TOLERANCE, rtol=0)
        ]
        hint = " ".join([*diagnoses, hint])
        fail(
            task,
            "the statistics are not exact.",
            expected=f"{call}: mean {_fmt(want_mean.tolist())}, std {_fmt(want_std.tolist())}",
            found=f"mean {_fmt(mean.tolist())}, std {_fmt(std.tolist())}",
            hint=hint,
        )


# --------------------------------------------------------------------------- task 7


class _WatchedSGD(torch.optim.SGD):
    """SGD that counts steps and notices gradients accumulated over several backward passes."""

    def __init__(self, params: list[nn.Parameter], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.steps = 0
        self.accumulated_steps = 0
        self._latest: dict[int, torch.Tensor] = {}
        for p in params:
            p.register_hook(self._remember(id(p)))

    def _remember(self, key: int) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            self._latest[key] = grad.detach().clone()

        return hook

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        self.steps += 1
        for group in self.param_groups:
            for p in group["params"]:
                latest = self._latest.get(id(p))
                if p.grad is not None and latest is not None:
                    if not torch.allclose(p.grad, latest, atol=1e-7, rtol=1e-5):
                        self.accumulated_steps += 1
                        break
        return super().step(closure)


def _training_fixture() -> tuple[nn.Module, DataLoader, DataLoader, TensorDataset]:
    """A 4-class toy problem (8x8 colour patterns plus noise) and a tiny MLP with dropout.

    The noise is strong enough that accuracy stays below 100% (about 78% after three
    epochs), so averaging per-batch accuracies gives a different, detectably wrong number.
    """
    generator = torch.Generator().manual_seed(5)
    patterns = torch.rand(4, 3, 8, 8, generator=generator)

    def make(n_per_class: int) -> TensorDataset:
        labels = torch.arange(4).repeat_interleave(n_per_class)
        noise = 1.3 * torch.randn(len(labels), 3, 8, 8, generator=generator)
        return TensorDataset(patterns[labels] + noise, labels)

    train_set, eval_set = make(32), make(15)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4)
    )
    train_loader = DataLoader(
        train_set, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(3)
    )
    # 60 examples in batches of 24, 24, 12: averaging per-batch accuracies would be wrong.
    eval_loader = DataLoader(eval_set, batch_size=24)
    return model, train_loader, eval_loader, train_set


def _mean_loss(model: nn.Module, dataset: TensorDataset) -> float:
    model.eval()
    with torch.no_grad():
        images, labels = dataset.tensors
        return nn.functional.cross_entropy(model(images), labels).item()


def check_training(train_and_evaluate: Callable[..., tuple[Sequence[float], float]]) -> None:
    """Task 7: the loop lowers the loss, steps once per minibatch, and reports accuracy in %.

    The check measures the loss itself before and after (it does not trust the
    numbers the function returns), watches the optimizer for missing
    ``zero_grad`` calls, and re-evaluates the trained model with
    ``course.training.evaluate``.
    """
    from course.training import evaluate

    task = TASKS["train"]
    epochs = 3
    with _isolated(seed=0):
        model, train_loader, eval_loader, train_set = _training_fixture()
        optimizer = _WatchedSGD(list(model.parameters()), lr=0.05, momentum=0.9)
        loss_before = _mean_loss(model, train_set)
        modes: list[bool] = []
        handle = model.register_forward_hook(lambda m, i, o: modes.append(m.training))
        call = f"train_and_evaluate(model, optimizer, train_loader, eval_loader, epochs={epochs})"
        try:
            result = call_student(
                task, train_and_evaluate, model, optimizer, train_loader, eval_loader, epochs=epochs
            )
        finally:
            handle.remove()
        loss_after = _mean_loss(model, train_set)
        accuracy = evaluate(model, eval_loader)
    batches = epochs * len(train_loader)
    try:
        losses, reported = result
        losses = [float(v) for v in losses]
        reported = float(reported)
    except Exception:  # any form problem gets the same explanation
        fail(
            task,
            "the result has the wrong form.",
            expected=f"{call} to return (losses, accuracy): a list of floats and a float",
            found=f"{type(result).__name__} ({result!r:.80})",
            hint="Append `loss.item()` after each minibatch and return `losses, accuracy`.",
        )
    if optimizer.steps != batches:
        fail(
            task,
            "the optimizer did not take one step per minibatch.",
            expected=f"{batches} calls to optimizer.step() ({epochs} epochs x "
            f"{len(train_loader)} minibatches)",
            found=f"{optimizer.steps}",
            hint="Inside the loop over train_loader: zero_grad, forward, loss, backward, step.",
        )
    if optimizer.accumulated_steps:
        fail(
            task,
            "gradients piled up from earlier minibatches.",
            expected="each step to use only the current minibatch's gradient",
            found=f"{optimizer.accumulated_steps} of {batches} steps used accumulated gradients",
            hint="Call `optimizer.zero_grad()` before `loss.backward()` in every iteration.",
        )
    if not modes or modes[0] is False:
        fail(
            task,
            "the model was not in training mode while it trained.",
            expected="model.train() before the training loop",
            found="model.eval() mode",
            hint="Call `model.train()` at the start of each epoch (dropout must be active).",
        )
    if len(losses) != batches:
        fail(
            task,
            "the function must return one loss per minibatch.",
            expected=f"{batches} losses",
            found=f"{len(losses)}",
            hint="Append `loss.item()` inside the loop over minibatches, as in the lecture's plot.",
        )
    if not loss_after < 0.8 * loss_before:
        fail(
            task,
            "the loss did not fall.",
            expected=f"cross-entropy on the training set to fall below {0.8 * loss_before:.3f} "
            f"(from {loss_before:.3f})",
            found=f"{loss_after:.3f}",
            hint="Use `nn.functional.cross_entropy(model(images), labels)`, call "
            "`loss.backward()` and `optimizer.step()` for every minibatch.",
        )
    if modes[-1] is True:
        fail(
            task,
            "the model was evaluated in training mode (dropout still active).",
            expected="model.eval() before the loop over eval_loader",
            found="the last forward pass ran in training mode",
            hint="Call `model.eval()` and wrap the evaluation loop in `with torch.no_grad():`.",
        )
    if math.isclose(reported, accuracy, abs_tol=1e-3):
        return
    if math.isclose(reported * 100, accuracy, abs_tol=1e-3):
        hint = "Report the accuracy in percent (0-100), as the lecture does: multiply by 100."
    else:
        hint = (
            "Count correct predictions over the whole eval_loader and divide by the number "
            "of examples; averaging per-batch accuracies is wrong when batches differ "
            "in size."
        )
    fail(
        task,
        "the reported accuracy does not match the trained model's.",
        expected=f"{accuracy:.2f} (% correct on eval_loader, re-measured after training)",
        found=f"{reported:.4g}",
        hint=hint,
    )


__all__ = [
    "LECTURE_BUG_TRAINABLE",
    "TASKS",
    "check_channel_stats",
    "check_freezing",
    "check_head_replacement",
    "check_load_vgg16",
    "check_optimizer",
    "check_training",
    "check_transforms",
]
