"""What this machine has, and what each lesson will use: ``python -m course doctor``.

Every lesson's first cell calls :func:`print_summary` with its number, so a student sees,
before anything runs, which data and which weights the lesson will use, on which device, how
long it took on the course's 2-core machine, and how to fix what is missing. Measurement cells
call :func:`require_real` first: on synthetic images or random weights a measurement would
teach nothing, so the cell stops with the same remedy the doctor gives.

What is looked for (nothing is downloaded, nothing big is loaded):

- data: CIFAR-10 where ``course.data.load_cifar10`` finds it (``$COURSE_DATA``, torchvision's
  folders, the kit's subset, the project data folder), else synthetic stand-in images;
- weights: VGG16's ImageNet weights in torchvision's cache, else the offline ImageNet
  MobileNetV2 (the kit's ``pretrained/`` folder, ``$COURSE_PRETRAINED_DIR`` or
  the project data folder), else random weights;
- time: the seconds recorded in the executed lesson notebooks' metadata (the kit's
  ``lessons/`` or the checkout's ``course/lessons/``), never a guess.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from course import paths
from course.errors import CourseError

#: The lessons, by number: title, whether the lesson reads CIFAR-10, and whether its
#: measurements need pretrained weights (lessons 1-3 show structure, with random weights).
LESSONS: dict[str, tuple[str, bool, bool]] = {
    "01": ("A pretrained VGG16", False, False),
    "02": ("Freezing layers", True, False),
    "03": ("Replacing the head", True, False),
    "04": ("Inputs", True, True),
    "05": ("Training and evaluating", True, True),
    "06": ("Beyond VGG16", True, True),
    "07": ("Fine-tuning like a practitioner", True, True),
}

#: How to get real CIFAR-10 images: the doctor's fix and :func:`require_real`'s remedy.
DATA_REMEDY = (
    "Unzip the whole student kit and start Jupyter inside its folder (its data/ folder holds "
    "a CIFAR-10 subset, found without any setting); or, on a machine with network, run "
    "`from course.data import load_cifar10; load_cifar10(download=True)` once (about 170 MB); "
    "or set COURSE_DATA, in the shell that starts Jupyter, to a CIFAR-10 folder or zip"
)
#: How to get pretrained weights: the doctor's fix and :func:`require_real`'s remedy.
WEIGHTS_REMEDY = (
    "Unzip the whole student kit and start Jupyter inside its folder (its pretrained/ folder "
    "holds an ImageNet MobileNetV2, found without any setting); or set COURSE_PRETRAINED_DIR, "
    "in the shell that starts Jupyter, to a folder holding mobilenet_v2_1.0_224_quant.tflite; "
    "or, on a machine with network, run `from course.models import load_model; "
    "load_model('vgg16', weights='imagenet')` once (528 MB, kept in torchvision's cache)"
)


@dataclass(frozen=True)
class Diagnosis:
    """What a lesson (or, with ``lesson=None``, the quick-mode lessons) will use here.

    Attributes:
        lesson: the lesson number ("04"), or ``None`` for the machine as a whole.
        quick: quick (laptop) mode or the real mode, as ``COURSE_QUICK`` says.
        data_kind: ``"cifar10"``, ``"kit-subset"``, ``"synthetic"`` or ``"none"`` (the
            lesson reads no images, or nothing usable was found in real mode).
        data_label: one line saying which data, without build-machine paths.
        weights_kind: ``"vgg16-imagenet"``, ``"mobilenet-v2-imagenet"`` or ``"random"``.
        weights_label: one line saying which weights.
        device: ``"cpu"`` or ``"cuda: <GPU name>"``.
        expected_time: how long the lesson took, as measured (or "not measured").
        problems: ``(problem, fix)`` pairs; empty when the lesson can teach what it should.
    """

    lesson: str | None
    quick: bool
    data_kind: str
    data_label: str
    weights_kind: str
    weights_label: str
    device: str
    expected_time: str
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is missing for this lesson."""
        return not self.problems

    def render(self) -> str:
        """The summary as text: one line each for data, weights, device, time, then fixes."""
        mode = "quick (laptop) mode" if self.quick else "real mode"
        title = f"Lesson {self.lesson}" if self.lesson else "The lessons"
        lines = [
            f"{title} on this machine, {mode}:",
            f"  data:    {self.data_label}",
            f"  weights: {self.weights_label}",
            f"  device:  {self.device}",
            f"  time:    {self.expected_time}",
        ]
        for problem, fix in self.problems:
            lines += [f"  MISSING {problem}", f"    fix: {fix}"]
        if not self.problems:
            lines.append("  Nothing is missing.")
        return "\n".join(lines)


def lesson_key(lesson: str | int | None) -> str | None:
    """``"4"``, ``4``, ``"04"`` or ``"04_inputs"`` -> ``"04"``; ``None`` stays ``None``.

    Raises:
        CourseError: not one of the lessons' numbers.
    """
    if lesson is None:
        return None
    match = re.match(r"\s*0*(\d+)", str(lesson))
    key = f"{int(match.group(1)):02d}" if match else ""
    if key not in LESSONS:
        raise CourseError(
            f"There is no lesson {lesson!r}.",
            f"Pass a lesson number: {', '.join(LESSONS)}.",
        )
    return key


def lesson_notebook_dirs() -> list[Path]:
    """Where executed lesson notebooks are: the kit's ``lessons/``, the checkout's lessons."""
    places = []
    kit = paths.kit_dir()
    if kit is not None:
        places.append(kit / "lessons")
    if paths.PROJECT_ROOT is not None:
        places.append(paths.PROJECT_ROOT / "course" / "lessons")
    return [p for p in places if p.is_dir()]


def measured_seconds(lesson: str) -> tuple[float, str] | None:
    """(seconds, machine) of the lesson's recorded CPU run, from its notebook's metadata."""
    for folder in lesson_notebook_dirs():
        for notebook in sorted(folder.glob(f"{lesson}_*.ipynb")):
            try:
                meta = json.loads(notebook.read_text(encoding="utf-8"))["metadata"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            records = meta.get("course", {}).get("execution")
            if isinstance(records, Mapping):
                records = [records]
            for record in records or []:
                device = str(record.get("device", "cpu"))
                if isinstance(record, Mapping) and record.get("seconds") and "cuda" not in device:
                    return float(record["seconds"]), str(record.get("machine", "unknown machine"))
    return None


def expected_time(lesson: str | None, quick: bool = True) -> str:
    """How long a lesson took, as recorded: "about N min on a 2-core laptop CPU (...)"."""
    if not quick:
        return "real mode: on a GPU, see the Results page for measured runs"
    keys = [lesson] if lesson else list(LESSONS)
    found = {key: measured_seconds(key) for key in keys}
    if lesson is None:
        known = {k: v for k, v in found.items() if v}
        if not known:
            return "not measured (no executed lesson notebook found)"
        return ", ".join(f"{k}: {_minutes(v[0])}" for k, v in known.items()) + (
            " on a 2-core CPU (measured)"
        )
    record = found[lesson]
    if record is None:
        return "not measured (no executed lesson notebook found)"
    seconds, machine = record
    return f"{_minutes(seconds)} on a 2-core laptop CPU (measured: {seconds:.0f} s, {machine})"


def _minutes(seconds: float) -> str:
    """ "under 1 min" or "about N min" (N rounded up)."""
    return "under 1 min" if seconds < 60 else f"about {math.ceil(seconds / 60)} min"


def _device(quick: bool) -> str:
    if quick:
        return "cpu (quick mode always runs on the CPU)"
    from course.machine import gpu_name

    gpu = gpu_name()
    if gpu:
        return f"cuda: {gpu}"
    return "cpu (no GPU found: real mode will be slow)"


def _data(lesson: str | None, quick: bool, problems: list[tuple[str, str]]) -> tuple[str, str]:
    from course.data import find_cifar10

    if lesson is not None and not LESSONS[lesson][1]:
        return "none", "none: this lesson feeds random inputs (shapes do not depend on pixels)"
    try:
        found, _ = find_cifar10()
    except CourseError as error:
        problems.append((error.problem, error.remedy))
        return "synthetic", "synthetic stand-in images (the CIFAR-10 found is unusable)"
    if found is None:
        if quick:
            problems.append(
                ("No CIFAR-10 found: the lessons would use synthetic images.", DATA_REMEDY)
            )
            return "synthetic", "synthetic stand-in images, NOT CIFAR-10"
        problems.append(("No CIFAR-10 found: real mode needs the full data set.", DATA_REMEDY))
        return "none", "none found"
    if found.in_kit:
        per_class = paths.kit_manifest().get("per_class")
        counts = f" ({per_class})" if per_class else ""
        if not quick:
            problems.append(
                (
                    "Real mode needs the full CIFAR-10; only the kit's subset is here.",
                    "On a machine with network run `from course.data import load_cifar10; "
                    "load_cifar10(download=True)` once, or use quick mode (COURSE_QUICK=1).",
                )
            )
        return "kit-subset", f"CIFAR-10 subset shipped with the kit{counts}"
    return "cifar10", f"CIFAR-10 ({found.describe()})"


def _weights(lesson: str | None, quick: bool, problems: list[tuple[str, str]]) -> tuple[str, str]:
    from course.models import imagenet_weights_file
    from course.quick import quick_weights

    if quick and lesson is not None and not LESSONS[lesson][2]:
        return "random", "random VGG16 weights, by design: this lesson shows structure"
    if not quick:
        if imagenet_weights_file("vgg16").is_file():
            return "vgg16-imagenet", "ImageNet VGG16 (torchvision's weights, from its cache)"
        if not paths.offline():
            return (
                "vgg16-imagenet",
                "ImageNet VGG16: not in torchvision's cache yet; downloaded on first use "
                "(528 MB, needs the network)",
            )
        problems.append(
            (
                "Real mode needs VGG16's ImageNet weights; they are not in torchvision's cache "
                "and the course is offline (COURSE_OFFLINE=1 or CI).",
                "Copy vgg16-397923af.pth into torchvision's cache (lesson 1 shows where), or "
                "use quick mode (COURSE_QUICK=1), which uses the offline MobileNetV2.",
            )
        )
        return "random", "none found for real mode"
    try:
        choice = quick_weights()
    except CourseError as error:
        problems.append((error.problem, error.remedy))
        return "random", "random weights (the pretrained folder set is wrong)"
    if not choice.pretrained:
        problems.append(
            ("No pretrained weights found: measurements would use random weights.", WEIGHTS_REMEDY)
        )
        return "random", "random weights, NOT pretrained"
    kind = "vgg16-imagenet" if choice.name == "vgg16" else "mobilenet-v2-imagenet"
    return kind, choice.label


def diagnose(lesson: str | int | None = None) -> Diagnosis:
    """Say what ``lesson`` (or the quick-mode lessons, for ``None``) will use on this machine.

    Nothing is downloaded or decoded: only files are looked for, so it takes well under a
    second (after ``import torch``).

    Raises:
        CourseError: ``lesson`` is not a lesson number, or ``COURSE_QUICK`` holds a word
            that is neither on nor off.
    """
    from course.quick import quick_mode

    key = lesson_key(lesson)
    quick = quick_mode()
    problems: list[tuple[str, str]] = []
    data_kind, data_label = _data(key, quick, problems)
    weights_kind, weights_label = _weights(key, quick, problems)
    return Diagnosis(
        lesson=key,
        quick=quick,
        data_kind=data_kind,
        data_label=data_label,
        weights_kind=weights_kind,
        weights_label=weights_label,
        device=_device(quick),
        expected_time=expected_time(key, quick),
        problems=problems,
    )


def print_summary(lesson: str | int | None = None) -> Diagnosis:
    """Print :func:`diagnose`'s summary for ``lesson`` and return it (each lesson's first cell)."""
    diagnosis = diagnose(lesson)
    print(diagnosis.render())
    return diagnosis


def _weights_are_random(model: object) -> bool:
    info = getattr(model, "weights_info", None)
    kind = getattr(info, "kind", None)
    if kind is not None:
        return str(kind) == "random"
    if hasattr(model, "pretrained") and not callable(model.pretrained):
        return not model.pretrained  # a course.quick.QuickWeights
    label = getattr(model, "weights_label", None)
    if label is None and isinstance(model, str):
        label = model
    return label is None or str(label).strip().lower().startswith("random")


def require_real(splits: object | None, model: object | None, what: str) -> None:
    """Stop before a measurement that would be meaningless: synthetic data or random weights.

    Args:
        splits: a ``course.data.CIFAR10Splits`` (``None``: the data are not checked).
        model: a model from ``course.models.load_model`` (its ``weights_info`` or
            ``weights_label`` is read), a ``course.quick.QuickWeights``, or ``None`` (the
            weights are not checked). A model without a weights label counts as random.
        what: the measurement, for the message ("the input-size sweep").

    Raises:
        CourseError: the data are synthetic or the weights random; its remedy is the
            doctor's fix (get the kit's data or pretrained network, or download them).
    """
    if splits is not None and getattr(splits, "synthetic", False):
        raise CourseError(
            f"{what} would run on synthetic stand-in images, not CIFAR-10: its figures would "
            "mean nothing, so this cell stops here.",
            DATA_REMEDY + ". Then restart the kernel and run the lesson again "
            "(`python -m course doctor` checks the setup).",
        )
    if model is not None and _weights_are_random(model):
        raise CourseError(
            f"{what} would run with random weights, not pretrained ones: its figures would say "
            "nothing about transfer learning, so this cell stops here.",
            WEIGHTS_REMEDY + ". Then restart the kernel and run the lesson again "
            "(`python -m course doctor` checks the setup).",
        )


def report() -> str:
    """The whole report: the machine, then every lesson's summary (``python -m course doctor``)."""
    from course.quick import machine_label

    kit = paths.kit_dir()
    lines = [
        "Course doctor: what this machine has and what each lesson will use.",
        f"Machine: {machine_label()}",
        "Kit: " + ("found (data and pretrained network are read from it)" if kit else "none found"),
        "",
    ]
    diagnoses = [diagnose(key) for key in LESSONS]
    for diagnosis in diagnoses:
        lines += [diagnosis.render(), ""]
    missing = sum(len(d.problems) for d in diagnoses)
    lines.append(
        "All set: every lesson has what it needs."
        if not missing
        else "Fix the lines marked MISSING, restart Jupyter (from the same shell), and run "
        "`python -m course doctor` again."
    )
    return "\n".join(lines)
