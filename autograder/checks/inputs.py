"""Tasks 4 and 6: the transforms, and the data set's channel statistics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from autograder.checks.common import entry, fmt, isolated, raise_if_error, title
from autograder.feedback import fail
from course.data import LECTURE_TYPO_STD, NORMALIZATIONS
from course.grading_inputs import STATS_BATCHES, stats_fixture, transform_cases, transform_fixture
from solutions import transfer as reference

# --------------------------------------------------------------------------- task 4

#: Mean absolute difference allowed on textured images, in normalized units. Different
#: resize implementations (tensor vs PIL, antialias) differ by ~1 grey level; a missing
#: resize, crop or normalization differs by far more.
TEXTURE_TOLERANCE = 0.05
#: A constant image resizes to exactly itself, so normalization is checked tightly:
#: tight enough to see the lecture's 0.2255 typo (a 0.2% change).
CONSTANT_TOLERANCE = 2e-4
ORDER_HINT = (
    "The order matters: `ToDtype(torch.float32, scale=True)` first (it turns 0..255 into "
    "0..1 floats), then `Normalize(mean, std)`. Normalize before ToDtype sees integers "
    "0..255, or fails on uint8 images."
)


def check_transforms(record: Mapping[str, Any], seed: int) -> None:
    """Task 4: train and eval transforms match the reference for fixed images at several sizes.

    Normalization is checked exactly on constant images (that is where the lecture's
    ``0.2255`` typo shows); resizing and cropping are checked with a tolerance on textured
    images; a random crop must be *some* window of the resized image and must vary.
    """
    task = title("transforms")
    constants, textures = transform_fixture(seed)
    for size, normalization, augment in transform_cases(seed):
        call = f"build_transforms({size}, {normalization!r}, augment={augment})"
        found = entry(record, f"{size}-{normalization}-{augment}")
        raise_if_error(task, found, call)
        if "form" in found:
            fail(
                task,
                "the function must return two transforms.",
                expected=f"{call} to return (train_transform, eval_transform)",
                found=str(found["form"]),
                hint="End with `return train_transform, eval_transform`.",
            )
        with isolated():
            ref_train, ref_eval = reference.build_transforms(size, normalization, augment=augment)
            expected_constants = [ref_eval(image) for image in constants]
        for which in ("eval", "train"):
            outs = entry(found, f"{which}_constants")
            for image, out, want in zip(constants, outs, expected_constants, strict=True):
                check_normalized(task, call, which, out, image, want, normalization)
        for index, image in enumerate(textures):
            with isolated():
                want_eval = ref_eval(image)
            check_close(task, call, "eval", found["eval_textures"][index], want_eval, size, augment)
            draws = found["train_textures"][index]
            if augment:
                check_random_crop(task, call, draws, image, size, normalization)
            else:
                with isolated():
                    want_train = ref_train(image)
                check_close(task, call, "train", draws[0], want_train, size, augment)


def tensor_out(task: str, call: str, which: str, out: Any) -> torch.Tensor:
    """The recorded output of one transform call, or a failure saying what was wrong."""
    if isinstance(out, Mapping) and isinstance(out.get("error"), Mapping):
        message = str(out["error"].get("message", ""))
        if "float" in message and ("Normalize" in message or "tensor" in message):
            hint = ORDER_HINT
        else:
            hint = None
        raise_if_error(task, out, f"the {which} transform of {call}", hint=hint)
    tensor = out.get("tensor") if isinstance(out, Mapping) else None
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.float32 or tensor.dim() != 3:
        found = (
            f"{tuple(tensor.shape)} {tensor.dtype}"
            if isinstance(tensor, torch.Tensor)
            else str(out.get("described", "?") if isinstance(out, Mapping) else "?")
        )
        fail(
            task,
            f"the {which} transform does not return a float image tensor.",
            expected="a float32 tensor of shape (3, size, size)",
            found=found,
            hint="End the pipeline with `ToDtype(torch.float32, scale=True)` and `Normalize`.",
        )
    return tensor


def check_normalized(
    task: str,
    call: str,
    which: str,
    out: Any,
    image: torch.Tensor,
    expected: torch.Tensor,
    normalization: str,
) -> None:
    """A constant image must come out as (value - mean) / std in every channel."""
    found = tensor_out(task, call, which, out).double().mean(dim=(1, 2))
    want = expected.double().mean(dim=(1, 2))
    if found.shape == want.shape and torch.allclose(found, want, atol=CONSTANT_TOLERANCE, rtol=0):
        return
    value = image[:, 0, 0].double() / 255
    mean, std = (torch.tensor(v, dtype=torch.float64) for v in NORMALIZATIONS[normalization])
    colour = tuple(int(c) for c in image[:, 0, 0])

    def close(candidate: torch.Tensor) -> bool:
        return found.shape == candidate.shape and torch.allclose(
            found, candidate, atol=CONSTANT_TOLERANCE * 10, rtol=0
        )

    problem = f"the {which} transform normalizes a constant image {colour} wrongly."
    hint = (
        f"Normalize with course.data.NORMALIZATIONS[{normalization!r}] "
        "after `ToDtype(torch.float32, scale=True)`."
    )
    if close(value):
        hint = "The values are still in [0, 1]: add `Normalize(mean, std)` at the end."
    elif close((value - mean) / std * 255) or close((value * 255 - mean) / std):
        hint = "The values were never scaled to [0, 1] before Normalize. " + ORDER_HINT
    elif close(value * 255):
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
        expected=f"{call}: per-channel values {fmt(want.tolist())}",
        found=fmt(found.flatten()[:6].tolist()),
        hint=hint,
    )


def shape_hint(shape: tuple[int, ...], size: int, augment: bool) -> str:
    """What a wrong output size usually means."""
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


def check_close(
    task: str,
    call: str,
    which: str,
    out: Any,
    expected: torch.Tensor,
    size: int,
    augment: bool,
) -> None:
    """A textured image must come out close to the reference's."""
    tensor = tensor_out(task, call, which, out)
    if tensor.shape != expected.shape:
        fail(
            task,
            f"the {which} transform gives images of the wrong size.",
            expected=f"{call}: shape {tuple(expected.shape)}",
            found=f"shape {tuple(tensor.shape)}",
            hint=shape_hint(tuple(tensor.shape), size, augment),
        )
    error = (tensor - expected).abs().mean().item()
    if not error <= TEXTURE_TOLERANCE:  # NaN fails too
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


def check_random_crop(
    task: str, call: str, draws: list[Any], image: torch.Tensor, size: int, normalization: str
) -> None:
    """Every training output must be a window of the resized image, and the window must vary."""
    with isolated():
        _, big_eval = reference.build_transforms(size + 6, normalization, augment=False)
        big = big_eval(image)
    windows = big.unfold(1, size, 1).unfold(2, size, 1)  # (3, 7, 7, size, size)
    positions = set()
    for out in draws:
        tensor = tensor_out(task, call, "train", out)
        if tensor.shape != (3, size, size):
            fail(
                task,
                "the train transform gives images of the wrong size.",
                expected=f"{call}: shape (3, {size}, {size})",
                found=f"shape {tuple(tensor.shape)}",
                hint=shape_hint(tuple(tensor.shape), size, True),
            )
        errors = (windows - tensor[:, None, None]).abs().mean(dim=(0, 3, 4))
        best = errors.argmin()
        if not errors.flatten()[best] <= TEXTURE_TOLERANCE:
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
            found=f"the same window in {len(draws)} calls",
            hint=f"Use `RandomCrop({size})` for training; `CenterCrop` is for evaluation.",
        )


# --------------------------------------------------------------------------- task 6

#: Absolute tolerance on each mean and std: float32 accumulation is well inside it.
STATS_TOLERANCE = 1e-5


def wrong_stats(
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


def check_channel_stats(record: Mapping[str, Any], seed: int) -> None:
    """Task 6: exact per-channel mean and population std over a whole loader, in one pass.

    Two loaders over the same images were recorded: minibatches of 16 (the last one smaller)
    and one single batch. Typical mistakes are recognized by name.
    """
    task = title("stats")
    images, _ = stats_fixture(seed)
    want_mean, want_std = (
        torch.tensor(v, dtype=torch.float64) for v in reference.channel_stats(images)
    )
    for batch_size in STATS_BATCHES:
        call = f"channel_stats(<loader, {len(images)} images of 6x6, batches of {batch_size}>)"
        found = entry(record, str(batch_size))
        raise_if_error(task, found, call)
        mean = torch.tensor(found.get("mean", []), dtype=torch.float64)
        std = torch.tensor(found.get("std", []), dtype=torch.float64)
        if "form" in found or mean.numel() != 3 or std.numel() != 3:
            fail(
                task,
                "the result has the wrong form.",
                expected=f"{call} to return (mean, std), each three numbers (R, G, B)",
                found=str(found.get("form", f"{mean.numel()} and {std.numel()} numbers")),
                hint="Return two tuples of three floats: `return tuple(mean.tolist()), "
                "tuple(std.tolist())`.",
            )
        if torch.allclose(mean, want_mean, atol=STATS_TOLERANCE, rtol=0) and torch.allclose(
            std, want_std, atol=STATS_TOLERANCE, rtol=0
        ):
            continue
        hint = (
            "Accumulate, per channel and in float64, the number of pixels, their sum and "
            "the sum of their squares over all batches; at the end mean = sum / n and "
            "std = sqrt(sum_sq / n - mean**2)."
        )
        wrong_means, wrong_stds = wrong_stats(images, batch_size)
        diagnoses = [
            f"Your {which} matches {mistake}."
            for which, value, candidates in (("mean", mean, wrong_means), ("std", std, wrong_stds))
            for mistake, candidate in candidates.items()
            if torch.allclose(value, candidate, atol=STATS_TOLERANCE, rtol=0)
        ]
        fail(
            task,
            "the statistics are not exact.",
            expected=f"{call}: mean {fmt(want_mean.tolist())}, std {fmt(want_std.tolist())}",
            found=f"mean {fmt(mean.tolist())}, std {fmt(std.tolist())}",
            hint=" ".join([*diagnoses, hint]),
        )
