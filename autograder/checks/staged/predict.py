"""Task 4 of "Fine-tuning in stages": ``predict`` on one image (:func:`check_predict`)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms import v2 as T

from autograder.checks.common import entry, isolated, raise_if_error
from autograder.checks.staged.shared import INPUT_TOLERANCE, PROBABILITY_TOLERANCE, TASKS
from autograder.feedback import fail
from course.grading_staged_predict import predict_fixture
from course.models import IMAGENET_PREPROCESSING
from solutions import staged as reference

#: Preparation mistakes the hints name: variant -> (problem, hint).
MISTAKES = {
    "imagenet": (
        "the image was normalized with ImageNet's mean/std, not this model's.",
        "Normalize with the statistics you are given: `T.Normalize(preprocessing.mean, "
        "preprocessing.std)`. Models trained with other preprocessing (such as the offline "
        "MobileNetV2's (p - 128) / 128) expect their own.",
    ),
    "squash": (
        "the image was squeezed to a square instead of resized and center-cropped.",
        "`T.Resize(resize)` (one number: the shorter side, keeping the aspect ratio), then "
        "`T.CenterCrop(crop)`.",
    ),
    "noscale": (
        "the pixels were not scaled from 0-255 to 0-1 before normalizing.",
        "Use `T.ToDtype(torch.float32, scale=True)` (scale=True divides uint8 values by 255).",
    ),
    "bgr": (
        "the colour channels are in BGR order.",
        "Open the file with PIL, `Image.open(path).convert('RGB')` (OpenCV reads BGR).",
    ),
    "nonorm": (
        "the image was not normalized.",
        "End the transform with `T.Normalize(preprocessing.mean, preprocessing.std)`.",
    ),
}


def prepared(path: str, preprocessing: Any, resize: int, crop: int, variant: str) -> torch.Tensor:
    """The model input for ``path``: the reference's (``"right"``) or a known mistake's."""
    from PIL import Image

    image = T.ToImage()(Image.open(path).convert("RGB"))
    if variant == "bgr":
        image = image.flip(0)
    if variant == "squash":
        image = T.Resize((crop, crop), antialias=True)(image)
    else:
        image = T.Resize(resize, antialias=True)(image)
        if variant != "nocrop":
            image = T.CenterCrop(crop)(image)
    image = T.ToDtype(torch.float32, scale=variant != "noscale")(image)
    stats = IMAGENET_PREPROCESSING if variant == "imagenet" else preprocessing
    if variant != "nonorm":
        image = T.Normalize(list(stats.mean), list(stats.std))(image)
    return image.unsqueeze(0)


def _matches(found: torch.Tensor, want: torch.Tensor) -> bool:
    return found.shape == want.shape and float((found - want).abs().max()) <= INPUT_TOLERANCE


def check_predict(record: Mapping[str, Any], seed: int) -> None:
    """Task 4: the class and probability the reference predicts, from the same model input."""
    task = TASKS["predict"]
    calls = list(entry(record, "calls"))
    with tempfile.TemporaryDirectory(prefix="predict-check-") as folder, isolated(seed):
        cases = predict_fixture(seed, Path(folder))
        jobs = [(case, image) for case in cases for image in case["images"]]
        for (case, image), found in zip(jobs, calls, strict=True):
            check_one_prediction(task, case, image, found)


def check_one_prediction(
    task: str, case: Mapping[str, Any], image: str, found: Mapping[str, Any]
) -> None:
    """Compare one recorded ``predict`` call with the reference (see :func:`check_predict`)."""
    stats, resize, crop = case["preprocessing"], case["resize"], case["crop"]
    call = (
        f"predict(model, '{Path(image).name}', preprocessing, class_names, resize={resize}, "
        f"crop={crop})"
    )
    model = case["model"]
    want_class, want_probability = reference.predict(
        model, image, stats, list(case["class_names"]), resize=resize, crop=crop
    )
    raise_if_error(task, found, call)
    forwards = list(found.get("forwards", []))
    if not forwards:
        fail(
            task,
            "the model was never called.",
            expected=f"{call} to run the model on the prepared image",
            found="no forward pass",
            hint="Call `model(batch)` on the transformed image with a batch dimension "
            "(`.unsqueeze(0)`).",
        )
    first = forwards[0]
    if first.get("training") is not False:
        fail(
            task,
            "the model predicted in training mode.",
            expected="model.eval() before the forward pass",
            found="training mode: dropout active, BatchNorm using the batch's statistics",
            hint="Call `model.eval()` first: a model fresh from training is still in training "
            "mode, and its predictions then change from call to call.",
        )
    if first.get("grad_enabled") is not False:
        fail(
            task,
            "the forward pass recorded gradients.",
            expected="the forward pass inside `with torch.no_grad():`",
            found="autograd enabled",
            hint="Wrap the prediction in `with torch.no_grad():` (or `torch.inference_mode()`):"
            " it saves memory and time, and the result needs no gradient.",
        )
    want_input = prepared(image, stats, resize, crop, "right")
    seen = first.get("input")
    if isinstance(seen, torch.Tensor) and not _matches(seen.float(), want_input):
        shape = tuple(seen.shape)
        for variant in ("nocrop", *MISTAKES):
            if _matches(seen.float(), prepared(image, stats, resize, crop, variant)):
                if variant == "nocrop":
                    problem, hint = (
                        "the image was resized but not center-cropped.",
                        f"After `T.Resize({resize})`, take `T.CenterCrop({crop})`: the model "
                        f"expects a {crop}x{crop} input.",
                    )
                else:
                    problem, hint = MISTAKES[variant]
                fail(
                    task,
                    problem,
                    expected=f"{call}: the model's input {tuple(want_input.shape)}, "
                    "resized, center-cropped, scaled to 0-1, normalized with its own mean/std",
                    found=f"an input {shape} that matches this mistake",
                    hint=hint,
                )
        if shape != tuple(want_input.shape):
            fail(
                task,
                "the model got an input of the wrong shape.",
                expected=f"{call}: an input of shape {tuple(want_input.shape)}",
                found=f"{shape}",
                hint=f"`T.Resize({resize})`, `T.CenterCrop({crop})`, then `.unsqueeze(0)` for "
                "the batch dimension.",
            )
        fail(
            task,
            "the model's input is not the prepared image.",
            expected=f"{call}: Resize({resize}), CenterCrop({crop}), ToDtype(float32, "
            "scale=True), Normalize(preprocessing.mean, preprocessing.std)",
            found=f"an input {shape} whose values differ by up to "
            f"{float((seen.float() - want_input).abs().max()):.3f}",
            hint="Build the transform in that order from torchvision.transforms.v2, applied "
            "to the RGB image.",
        )
    result = found.get("result")
    if not (
        isinstance(result, list)
        and len(result) == 2
        and isinstance(result[0], str)
        and isinstance(result[1], (int, float))
    ):
        fail(
            task,
            "the result has the wrong form.",
            expected=f"{call} to return (class name, probability): a str and a float",
            found=f"{result!r:.120}",
            hint="Return `class_names[index], float(probabilities[index])`.",
        )
    name, probability = result
    if name == want_class and abs(probability - want_probability) <= PROBABILITY_TOLERANCE:
        return
    if not 0 <= probability <= 1:
        hint = "Turn the logits into probabilities with `torch.softmax(logits, dim=1)`."
    else:
        hint = (
            "Take the softmax over the classes (`dim=1` of the (1, classes) output), its "
            "argmax, and return the class's name from `class_names` with its probability."
        )
    fail(
        task,
        "the predicted class or probability is not the reference's.",
        expected=f"{call}: ({want_class!r}, {want_probability:.4f})",
        found=f"({name!r}, {probability:.4f})",
        hint=hint,
    )
