"""Laptop mode for the lessons and the demo: real pretrained weights, a small subset, the CPU.

Every lesson runs in two modes. The real mode uses the lecture's VGG16 with ImageNet weights
and the full CIFAR-10, on a GPU when there is one. Quick mode (``COURSE_QUICK=1``, or
``QUICK = True`` in a lesson's parameter cell) runs on a laptop CPU in minutes: a small real
subset of CIFAR-10, frozen features computed once and cached (``course.features``), and the
best *pretrained* weights this machine holds, chosen by :func:`quick_weights`:

1. VGG16's ImageNet weights, when torchvision's cache holds them (the lecture's network);
2. else the offline ImageNet MobileNetV2: the student kit's ``pretrained/`` folder, or
   ``shared/data/mobilenet-v2-imagenet`` next to a checkout (Google's uint8 TFLite file,
   converted once; see ``course.models``);
3. else random weights, the labelled last resort: such figures show that the code runs
   and say nothing about transfer learning.

Every output names its weights, data and machine (:func:`run_label`, :func:`machine_label`).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from course import paths
from course.paths import display_path, env_flag

#: The environment variable that turns quick mode on.
QUICK_ENV = "COURSE_QUICK"

#: How every banner's first line starts, so a page can tell the mode from a lesson's outputs.
QUICK_MARK = "QUICK MODE"
REAL_MARK = "REAL MODE"


def quick_mode(override: bool | None = None) -> bool:
    """Return whether the lessons run in quick mode.

    Args:
        override: ``True`` or ``False`` wins; ``None`` follows ``COURSE_QUICK``
            (read by ``course.paths.env_flag``: 1/true/yes/on or 0/false/no/off/empty).
            When it is unset, quick mode is on inside the student kit (``course.paths.kit_dir``)
            and off elsewhere.
    """
    if override is not None:
        return bool(override)
    # Inside the student kit quick mode is the default: students set nothing.
    return env_flag(QUICK_ENV, default=paths.kit_dir() is not None)


@dataclass(frozen=True)
class QuickWeights:
    """Which network and weights quick mode uses, and why.

    ``name`` and ``weights`` go straight to ``course.models.load_model(name, weights)``.
    """

    name: str  # a torchvision model name: "vgg16" or "mobilenet_v2"
    weights: str  # "imagenet" or "random"
    label: str  # one line for outputs, e.g. "ImageNet MobileNetV2 (offline TFLite file)"
    reason: str  # why this one was chosen, naming the files looked for

    @property
    def pretrained(self) -> bool:
        """True when the weights were trained on ImageNet (not the random last resort)."""
        return self.weights != "random"


def quick_weights() -> QuickWeights:
    """Choose quick mode's network: the best pretrained weights this machine holds.

    VGG16's ImageNet weights from torchvision's cache when present (nothing is downloaded),
    else the offline ImageNet MobileNetV2, else VGG16 with random weights, labelled as such.
    Nothing is loaded here: only files are looked for, so the call is instant.

    Raises:
        WeightsError: ``$COURSE_PRETRAINED_DIR`` is set but does not hold the offline file.
    """
    # torchvision is imported only when asked, so quick_mode() and banner labels stay light.
    from course.models import imagenet_weights_file, offline_weights_file

    vgg_file = imagenet_weights_file("vgg16")
    if vgg_file.is_file():
        return QuickWeights(
            "vgg16",
            "imagenet",
            "ImageNet VGG16 (torchvision's weights, from its cache)",
            f"found VGG16's ImageNet weights at {display_path(vgg_file)}: the lecture's own "
            "network",
        )
    mobilenet = offline_weights_file()
    if mobilenet is not None:
        return QuickWeights(
            "mobilenet_v2",
            "imagenet",
            "ImageNet MobileNetV2 (Google's uint8 TFLite file, converted offline)",
            f"VGG16's ImageNet weights are not in torchvision's cache "
            f"({display_path(vgg_file)}); the offline ImageNet MobileNetV2 is in "
            f"{display_path(mobilenet.parent)}",
        )
    return QuickWeights(
        "vgg16",
        "random",
        "random weights (no pretrained network found): NOT transfer learning",
        f"no pretrained weights here: neither {display_path(vgg_file)} nor the offline "
        "MobileNetV2 (the kit's pretrained/ folder, $COURSE_PRETRAINED_DIR, or the project "
        "data folder) exists. Results show the code runs, not what pretrained features do. "
        "`python -m course doctor` says how to get them",
    )


def machine_label() -> str:
    """One line naming the machine: CPU model, cores, GPU if any, and the torch version."""
    import torch

    cpu = _cpu_model()
    parts = [f"{cpu}, {os.cpu_count()} cores"]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    parts.append(f"torch {torch.__version__}")
    return " | ".join(parts)


def _cpu_model() -> str:
    # platform.processor() is empty on most Linux systems; /proc/cpuinfo names the model.
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def banner(quick: bool, weights: QuickWeights | None = None) -> str:
    """The note printed at the top of every lesson, saying which mode it runs in.

    Args:
        quick: quick (laptop) mode or the real mode.
        weights: quick mode's choice (:func:`quick_weights`); looked up when ``None``.
    """
    if quick:
        weights = weights or quick_weights()
        lines = [
            f"{QUICK_MARK} (laptop): a small CIFAR-10 subset on the CPU, frozen features cached.",
            f"Weights: {weights.label}.",
            f"Why: {weights.reason}.",
            f"Machine: {machine_label()}.",
        ]
        if not weights.pretrained:
            lines.append("Numbers and plots below show that the code runs; they are not results.")
        lines.append(f"For the lecture's full runs set {QUICK_ENV}=0 (full data, GPU advised).")
        return "\n".join(lines)
    return (
        f"{REAL_MARK}: ImageNet weights and the full CIFAR-10 (GPU if there is one).\n"
        f"Machine: {machine_label()}.\n"
        f"For a few minutes on a laptop CPU, set {QUICK_ENV}=1."
    )


def data_label(splits: object) -> str:
    """Say which data a run used, in one short line: real or synthetic, and split sizes.

    Args:
        splits: a ``course.data.CIFAR10Splits`` (read through its attributes only,
            so this module stays import-light). Its ``source`` says where the images
            came from in full.
    """
    sizes = "/".join(str(len(getattr(splits, name).labels)) for name in ("train", "valid", "test"))
    if getattr(splits, "synthetic", False):
        return f"synthetic images, not CIFAR-10 (train/valid/test {sizes})"
    if getattr(splits, "from_kit", False):
        return f"CIFAR-10 subset shipped with the kit, JPEG copy (train/valid/test {sizes})"
    full = sizes == "45000/5000/10000"
    copy = ", JPEG copy" if "jpeg" in str(getattr(splits, "source", "")).lower() else ""
    return f"CIFAR-10{'' if full else ' subset'}{copy} (train/valid/test {sizes})"


def run_label(weights: str, data: str) -> str:
    """One line for a printed result or a plot title: which weights, which data."""
    return f"weights: {weights} | data: {data}"
