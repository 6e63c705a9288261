"""Quick mode for the lessons: random weights, a small data subset, the CPU.

Every lesson runs in two modes. The real mode uses ImageNet weights and the
full CIFAR-10, on a GPU when there is one. Quick mode (``COURSE_QUICK=1``, or
``QUICK = True`` in a lesson's parameter cell) swaps in random weights and a
few images per class so that all six lessons run on a laptop CPU in minutes.
Its figures show that the code works; they say nothing about transfer
learning, and every one of them says so on the output itself.
"""

from __future__ import annotations

import os

#: The environment variable that turns quick mode on.
QUICK_ENV = "COURSE_QUICK"

_FALSE = ("", "0", "false", "no", "off")


def quick_mode(override: bool | None = None) -> bool:
    """Return whether the lessons run in quick mode.

    Args:
        override: ``True`` or ``False`` wins; ``None`` follows ``COURSE_QUICK``.
    """
    if override is not None:
        return bool(override)
    return os.environ.get(QUICK_ENV, "").strip().lower() not in _FALSE


def banner(quick: bool) -> str:
    """The note printed at the top of every lesson, saying which mode it runs in."""
    if quick:
        return (
            "QUICK MODE: random weights (no ImageNet), a few images per class, CPU.\n"
            "Data: CIFAR-10 when found, synthetic images otherwise (each output says which).\n"
            "Numbers and plots below show that the code runs; they are not results.\n"
            f"For the real thing, run with {QUICK_ENV}=0 (ImageNet weights, full data)."
        )
    return (
        "REAL MODE: ImageNet weights and the full CIFAR-10 (GPU if there is one).\n"
        f"For a fast CPU run with random weights, set {QUICK_ENV}=1."
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
    full = sizes == "45000/5000/10000"
    return f"CIFAR-10{'' if full else ' subset'} (train/valid/test {sizes})"


def run_label(weights: str, data: str) -> str:
    """One line for a printed result or a plot title: which weights, which data."""
    return f"weights: {weights} | data: {data}"
