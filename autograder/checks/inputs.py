"""Tasks 4 and 6: the transforms, and the data set's channel statistics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks.common import (
    TASKS,
    _fmt,
    _isolated,
)
from autograder.feedback import call_student, fail
from solutions import transfer as reference

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
