"""Task 4 of "Fine-tuning in stages" in your notebook: the inputs and the recorder of ``predict``.

Part of :mod:`course.grading_staged` (which re-exports these names; see its notes): two
tiny models with their own preprocessing, class names and PNG images built from a seed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course.grading_record import call, plain
from course.models import Preprocessing

#: Task 4: class names the fixtures draw from.
CLASS_POOL = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    "apple", "bicycle", "castle", "dolphin", "kettle", "tulip",
)  # fmt: skip


def predict_model(seed: int, classes: int) -> nn.Sequential:
    """Task 4's network: BatchNorm with its own running statistics and dropout, in train mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(3),  # keeps where things are: a crop or squeeze shows
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(8 * 9, classes),
        )
        with torch.no_grad():  # probabilities neither flat nor saturated; eval mode matters
            model[0].weight.mul_(2.0)
            model[1].running_mean.uniform_(-0.5, 0.5)
            model[1].running_var.uniform_(0.2, 0.6)
            model[6].weight.mul_(2.0)
    return model.train()  # as after training: predict must switch to eval mode itself


def image_array(seed: int, height: int, width: int) -> torch.Tensor:
    """A smooth colourful uint8 HWC image whose channels differ (so RGB/BGR matters)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 5, 6, generator=generator)
    smooth = nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")[0]
    tint = torch.tensor([0.35, 0.0, -0.25]).view(3, 1, 1)
    return ((smooth + tint).clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)


def predict_fixture(seed: int, folder: Path) -> list[dict[str, Any]]:
    """Task 4: two cases (model, preprocessing, class names, sizes), two PNG images each.

    The images are written into ``folder`` (lossless PNG, so both sides read the same pixels).
    """
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    draw = lambda low, high: int(torch.randint(low, high, (1,), generator=generator))  # noqa: E731
    random_stats = Preprocessing(
        mean=tuple(round(0.3 + 0.3 * float(v), 3) for v in torch.rand(3, generator=generator)),
        std=tuple(round(0.15 + 0.2 * float(v), 3) for v in torch.rand(3, generator=generator)),
        label="this model's own statistics",
    )
    pixel_128 = Preprocessing(
        mean=(128 / 255,) * 3, std=(128 / 255,) * 3, label="(pixel - 128) / 128"
    )
    cases = []
    for number, preprocessing in enumerate((pixel_128, random_stats)):
        classes = draw(3, 7)
        order = torch.randperm(len(CLASS_POOL), generator=generator)[:classes]
        resize = draw(36, 45)
        images = []
        for k in range(2):
            height, width = draw(40, 64), draw(48, 80)
            path = folder / f"image-{number}-{k}.png"
            array = image_array(seed + 10 * number + k, height, width)
            Image.fromarray(array.numpy(), mode="RGB").save(path)
            images.append(str(path))
        model = predict_model(seed + number, classes)
        model.preprocessing = preprocessing  # as course.models' models carry theirs
        cases.append(
            {
                "model": model,
                "preprocessing": preprocessing,
                "class_names": [CLASS_POOL[i] for i in order.tolist()],
                "resize": resize,
                "crop": resize - draw(4, 9),
                "images": images,
            }
        )
    return cases


def record_predict(predict: Callable[..., Any], seed: int) -> dict[str, Any]:
    """Task 4: each call's result, and what the model received (input, mode, grad)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="predict-") as folder:
        for case in predict_fixture(seed, Path(folder)):
            model = case["model"]
            for image in case["images"]:
                model.train()
                seen: list[dict[str, Any]] = []

                def watch(module: nn.Module, args: tuple[Any, ...], seen: list = seen) -> None:
                    first = args[0] if args else None
                    tensor = first if isinstance(first, torch.Tensor) else None
                    seen.append(
                        {
                            "training": module.training,
                            "grad_enabled": torch.is_grad_enabled(),
                            "input": plain(tensor)
                            if tensor is not None and tensor.numel() <= 3 * 128 * 128
                            else None,
                        }
                    )

                handle = model.register_forward_pre_hook(watch)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    result, error = call(
                        predict,
                        model,
                        image,
                        case["preprocessing"],
                        list(case["class_names"]),
                        resize=case["resize"],
                        crop=case["crop"],
                    )
                handle.remove()
                entry: dict[str, Any] = {"forwards": seen[:3], "forward_count": len(seen)}
                if error:
                    entry["error"] = error
                else:
                    entry["result"] = plain(result)
                out.append(entry)
    return {"calls": out}
