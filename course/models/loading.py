"""``load_model``: a torchvision classifier filled with ImageNet, local-file or random weights.

The kinds of weights:

- ``"imagenet"``: torchvision's default pretrained weights, read from torchvision's own cache
  (``torch.hub.get_dir()/checkpoints``). Offline (``COURSE_OFFLINE=1``, CI, or ``offline=True``)
  the network is never tried: a missing file gives a ``WeightsError`` that names the exact file
  and the folder to put it in. For ``mobilenet_v2`` without torchvision's file, Google's uint8
  TFLite MobileNetV2 that ships with the course data is converted instead (once, then cached):
  the one real ImageNet network available offline (see ``course.models.offline_mobilenet``).
- a path to a local file saved with ``torch.save(model.state_dict(), path)`` (or a checkpoint
  dict holding it under ``"state_dict"`` or ``"model"``). Keys and shapes are checked against
  the architecture before anything is loaded.
- ``"random"``: torchvision's own initialization. Every result computed with it must say so,
  which is why each model carries a ``weights_label``.

Every model also carries ``preprocessing`` (a ``course.models.Preprocessing``): the mean and
standard deviation its inputs must be normalized with.
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

from torch import nn
from torchvision.models import get_model, get_model_weights

from course.errors import WeightsError
from course.models import offline_mobilenet
from course.models.builders import check_name, quiet_kwargs
from course.models.checkpoint_files import load_file
from course.models.imagenet import IMAGENET_PREPROCESSING, Preprocessing, imagenet_weights_file
from course.models.messages import short_error
from course.models.weights_info import WeightsInfo, attach_weights_info
from course.paths import offline as offline_default

#: The ``weights_label`` of a randomly initialized model.
RANDOM_LABEL = "random (no pretrained weights)"


def load_model(
    name: str = "vgg16",
    weights: str | os.PathLike[str] = "random",
    *,
    num_classes: int | None = None,
    offline: bool | None = None,
) -> nn.Module:
    """Build a torchvision classifier and fill it with ImageNet, local-file or random weights.

    Args:
        name: a torchvision classification model, e.g. ``"vgg16"`` (see ``available_models()``).
        weights: ``"random"``, ``"imagenet"``, or the path of a local weights file.
        num_classes: size of the output layer. ``None`` keeps the architecture's own (1000 for
            ImageNet models). ImageNet weights always come with a 1000-way head: load them
            with ``num_classes=None`` and replace the head afterwards. For a local file, give
            the number of classes the file was trained for.
        offline: ``True`` never tries the network; ``None`` follows ``course.paths.offline()``.

    Returns:
        The model (in training mode, as torchvision returns it), with ``weights_info``
        (a :class:`course.models.WeightsInfo`: kind, label, preprocessing, notes) and the
        attributes derived from it: ``weights_label`` saying which weights it holds, e.g.
        ``"random (no pretrained weights)"``, ``"imagenet (VGG16_Weights.IMAGENET1K_V1)"``,
        ``"imagenet (MobileNetV2 from Google's uint8 TFLite file)"`` or
        ``"file: /path/vgg16.pth"``, and ``preprocessing`` saying how to normalize inputs
        (ImageNet's mean/std, except ``mean = std = 128/255`` for the TFLite MobileNetV2).

    Raises:
        CourseError: unknown model name.
        WeightsError: weights missing, unreadable, or made for another architecture.
    """
    name = check_name(name)
    offline = offline_default() if offline is None else offline
    kind = weights.strip().lower() if isinstance(weights, str) else None

    preprocessing: Preprocessing = IMAGENET_PREPROCESSING
    if kind == "random":
        source = "random"
        kwargs = quiet_kwargs(name)
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        model = get_model(name, weights=None, **kwargs)
        label = RANDOM_LABEL
    elif kind == "imagenet":
        _check_imagenet_classes(name, num_classes)
        if name == "mobilenet_v2" and not imagenet_weights_file(name).is_file():
            file = offline_mobilenet.offline_weights_file()
            if file is not None:
                return offline_mobilenet.load_offline_mobilenet_v2(file)
        model, label, preprocessing = _load_imagenet(name, offline=offline)
        source = "imagenet"
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"weights={str(weights)!r} is neither 'random', 'imagenet', nor an existing file"
                + (" (it is a folder)" if path.is_dir() else ""),
                "pass weights='random', weights='imagenet', or the path of a file saved with "
                "torch.save(model.state_dict(), path)",
            )
        model = load_file(name, path.resolve(), num_classes=num_classes)
        label = f"file: {path.resolve()}"
        source = "file"

    return attach_weights_info(model, WeightsInfo(source, label, preprocessing))


def _check_imagenet_classes(name: str, num_classes: int | None) -> None:
    weights = get_model_weights(name).DEFAULT
    categories = len(weights.meta.get("categories") or ()) or None
    if num_classes is not None and num_classes != categories:
        raise WeightsError(
            f"ImageNet weights for {name} come with a {categories}-way output layer, "
            f"not num_classes={num_classes}",
            "load with num_classes=None, then replace the output layer with a new one "
            f"for your {num_classes} classes",
        )


def _load_imagenet(name: str, *, offline: bool) -> tuple[nn.Module, str, Preprocessing]:
    weights = get_model_weights(name).DEFAULT
    label = f"imagenet ({weights})"
    keywords = getattr(weights.transforms, "keywords", {})
    preprocessing = Preprocessing(
        mean=tuple(keywords.get("mean", IMAGENET_PREPROCESSING.mean)),
        std=tuple(keywords.get("std", IMAGENET_PREPROCESSING.std)),
        label=f"ImageNet mean/std ({weights})",
    )
    file = imagenet_weights_file(name)
    place = (
        f"put {file.name} (from {weights.url}) into the folder {file.parent}, or pass the "
        "path of a local weights file, or use weights='random' (no pretrained weights)"
    )
    if name == "mobilenet_v2":  # the offline TFLite file is the other way to get here
        place += f"; or {offline_mobilenet.PROVIDE_FILE}"
    if offline and not file.is_file():
        problem = (
            f"the ImageNet weights for {name} are not in torchvision's cache and downloads "
            f"are off (offline mode): missing file {file.name} in {file.parent}"
        )
        if name == "mobilenet_v2":
            problem += "; and " + offline_mobilenet.missing_file_text()[0]
        raise WeightsError(problem, place)
    try:
        model = get_model(name, weights=weights)
    except (urllib.error.URLError, OSError) as err:  # no network, or the host is unreachable
        raise WeightsError(
            f"could not download the ImageNet weights for {name} ({short_error(err)})", place
        ) from err
    except Exception as err:
        if not file.is_file():  # the download itself failed (e.g. a hash mismatch)
            raise WeightsError(
                f"could not download the ImageNet weights for {name} ({short_error(err)})",
                place,
            ) from err
        # A truncated or corrupt file in the cache.
        raise WeightsError(
            f"the cached ImageNet weights file {file} could not be read ({short_error(err)})",
            f"delete {file} and try again with network access, or {place}",
        ) from err
    return model, label, preprocessing
