"""A fine-tuned model saved with its preprocessing, and used on a new image.

- :func:`save_finetuned` / :func:`load_finetuned`: the model *with its preprocessing*, in one file;
- :func:`read_image`, :func:`preprocess`, :func:`predict_image`, :func:`flip_tta`: use the model
  on a new image, with or without test-time augmentation.

Lesson 7 imports these from :mod:`course.finetune`, which re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from course.errors import CourseError
from course.models.imagenet import Preprocessing
from course.models.mobilenet_tflite import install_tf_same_padding

#: Version of the file :func:`save_finetuned` writes.
FILE_FORMAT = 1


def save_finetuned(
    model: nn.Module,
    path: str | Path,
    *,
    architecture: str,
    size: int,
    preprocessing: Preprocessing,
    classes: Sequence[str],
) -> Path:
    """Save a fine-tuned torchvision model *with* what it needs to be used: one file.

    Stored: the architecture's torchvision name, the state dict, the input size, the
    normalization (mean, std and where it comes from), the class names, and whether the
    model pads its strided convolutions TensorFlow's way (the offline MobileNetV2 does, with
    hooks a state dict does not hold). Only tensors, numbers and strings: the file loads with
    ``torch.load(weights_only=True)``, which cannot run code.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tf_padding = any(getattr(m, "tf_same_padding", False) for m in model.modules())
    torch.save(
        {
            "format": FILE_FORMAT,
            "architecture": architecture,
            "num_classes": len(classes),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "size": int(size),
            "mean": [float(v) for v in preprocessing.mean],
            "std": [float(v) for v in preprocessing.std],
            "preprocessing_label": preprocessing.label,
            "classes": list(classes),
            "tf_same_padding": tf_padding,
        },
        path,
    )
    return path


def load_finetuned(path: str | Path) -> nn.Module:
    """Rebuild a model saved by :func:`save_finetuned`, in eval mode, on the CPU.

    The model carries ``preprocessing`` (a ``Preprocessing``), ``input_size`` and ``classes``,
    so :func:`predict_image` needs nothing else.

    Raises:
        CourseError: the file is missing or was not written by :func:`save_finetuned`.
    """
    import torchvision

    path = Path(path)
    if not path.is_file():
        raise CourseError(f"No saved model at {path}.", "Pass the path save_finetuned wrote.")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        architecture, state = saved["architecture"], saved["state_dict"]
    except (RuntimeError, KeyError, TypeError, EOFError) as err:
        raise CourseError(
            f"{path} is not a model saved by course.finetune.save_finetuned ({err}).",
            "Save the model with save_finetuned(model, path, ...) and load that file.",
        ) from err
    with torch.device("meta"):
        model = torchvision.models.get_model(architecture, num_classes=saved["num_classes"])
    model = model.to_empty(device="cpu")
    model.load_state_dict(state)  # strict: every tensor comes from the file
    if saved.get("tf_same_padding"):
        install_tf_same_padding(model)
    model.preprocessing = Preprocessing(
        tuple(saved["mean"]), tuple(saved["std"]), saved["preprocessing_label"]
    )
    model.input_size = saved["size"]
    model.classes = tuple(saved["classes"])
    model.weights_label = f"fine-tuned {architecture}, loaded from {path.name}"
    return model.eval()


def read_image(path: str | Path) -> torch.Tensor:
    """A JPEG or PNG file as a uint8 ``(3, H, W)`` RGB tensor (decoded by Pillow)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise CourseError(f"No image at {path}.", "Check the path; JPEG and PNG files work.")
    try:
        with Image.open(path) as image:
            pixels = np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise CourseError(
            f"{path} is not a readable image ({err}).", "Use a JPEG or PNG file."
        ) from err
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def preprocess(images: torch.Tensor, size: int, preprocessing: Preprocessing) -> torch.Tensor:
    """uint8 ``(3, H, W)`` or ``(N, 3, H, W)`` images as model input: resize, scale, normalize.

    A square image is resized to ``size`` x ``size`` (as in training). A photo of another shape
    is resized so its shorter side is ``size`` and then cropped in the centre, so that nothing
    is squashed.
    """
    from torchvision.transforms.v2 import functional as TF

    from course.features import resize_normalize

    batch = images.unsqueeze(0) if images.ndim == 3 else images
    if batch.shape[-1] != batch.shape[-2]:
        batch = TF.center_crop(TF.resize(batch, size, antialias=True), [size, size])
    return resize_normalize(batch, size, preprocessing.mean, preprocessing.std)


@torch.inference_mode()
def flip_tta(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Test-time augmentation: class probabilities averaged over the input and its mirror image."""
    was_training = model.training
    model.eval()
    try:
        probs = F.softmax(model(inputs), dim=1) + F.softmax(model(inputs.flip(-1)), dim=1)
    finally:
        model.train(was_training)
    return probs / 2


@torch.inference_mode()
def predict_image(
    model: nn.Module, image: str | Path | torch.Tensor, *, tta: bool = False
) -> torch.Tensor:
    """Class probabilities ``(num_classes,)`` for one image, with the model's own preprocessing.

    Args:
        model: from :func:`load_finetuned`, or any model with ``preprocessing`` and
            ``input_size`` attributes.
        image: a file path or a uint8 ``(3, H, W)`` tensor.
        tta: average over the image and its mirror image (:func:`flip_tta`).

    Raises:
        CourseError: the model does not say how its inputs must look.
    """
    preprocessing = getattr(model, "preprocessing", None)
    size = getattr(model, "input_size", None)
    if preprocessing is None or size is None:
        raise CourseError(
            "This model does not carry its preprocessing and input size.",
            "Load it with course.finetune.load_finetuned, or set model.preprocessing and "
            "model.input_size to what it was trained with.",
        )
    pixels = read_image(image) if isinstance(image, (str, Path)) else image
    inputs = preprocess(pixels, size, preprocessing)
    if tta:
        return flip_tta(model, inputs)[0]
    was_training = model.training
    model.eval()
    try:
        return F.softmax(model(inputs), dim=1)[0]
    finally:
        model.train(was_training)
