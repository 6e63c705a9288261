"""Where the course looks for data, weights and its own cache.

Environment variables (all optional):

- ``COURSE_DATA``: a CIFAR-10 source (folder, zip or torchvision root).
- ``COURSE_CACHE_DIR``: where decoded images and feature caches go.
- ``COURSE_OFFLINE``: ``1`` means never try the network (the default
  whenever ``CI`` is set).

The student kit needs none of them: its root holds the marker file ``transfer-course-kit.json``
(:data:`KIT_MARKER`), and :func:`kit_dir` finds it from the working directory (a lesson
notebook runs in the kit's ``lessons/`` folder) or from the virtualenv's location. The kit's
CIFAR-10 subset (:func:`kit_data_dir`) and its offline pretrained network
(:func:`kit_pretrained_dir`) are found through it.

Every on/off variable is read by :func:`env_flag`, so ``COURSE_OFFLINE=off`` and
``COURSE_QUICK=off`` mean the same thing: off.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from course.errors import CourseError

#: Words an on/off environment variable may hold (compared lower-case, spaces stripped).
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")

#: The checkout this package was imported from (``None`` for a wheel install).
PROJECT_ROOT: Path | None = (
    Path(__file__).resolve().parent.parent
    if (Path(__file__).resolve().parent.parent / "pyproject.toml").exists()
    else None
)


def cache_dir() -> Path:
    """Return (and create) the folder for decoded data and feature caches."""
    env = os.environ.get("COURSE_CACHE_DIR")
    path = Path(env) if env else Path.home() / ".cache" / "transfer-course"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_dir() -> Path | None:
    """Return the project data folder (``shared/data`` next to the checkout) or ``None``."""
    if PROJECT_ROOT is None:
        return None
    path = PROJECT_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


#: The file at the root of an unzipped student kit; :func:`kit_dir` looks for it.
KIT_MARKER = "transfer-course-kit.json"
#: Where a kit keeps its CIFAR-10 subset and its offline network, unless its marker says else.
KIT_DATA = "data/cifar10-subset"
KIT_PRETRAINED = "pretrained"


def _kit_candidates() -> list[Path]:
    """The folders :func:`kit_dir` tries: the working directory and its parents, then the
    virtualenv's folder and its parents (a ``.venv`` made inside the kit)."""
    places: list[Path] = []
    for start in (Path.cwd(), Path(sys.prefix)):
        try:
            start = start.resolve()
        except OSError:  # a working directory that was deleted
            continue
        for folder in (start, *start.parents):
            if folder not in places:
                places.append(folder)
    return places


def kit_dir() -> Path | None:
    """The root of the unzipped student kit this session runs in, or ``None`` outside a kit.

    The root is the folder holding :data:`KIT_MARKER`, searched for in the working directory
    and its parents, then beside the virtualenv (``sys.prefix``) and its parents.
    """
    for folder in _kit_candidates():
        if (folder / KIT_MARKER).is_file():
            return folder
    return None


def kit_manifest(root: Path | None = None) -> dict[str, object]:
    """The kit's marker file as a dict (empty when there is no kit or it is unreadable)."""
    root = root or kit_dir()
    if root is None:
        return {}
    try:
        loaded = json.loads((root / KIT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _kit_folder(key: str, default: str) -> Path | None:
    root = kit_dir()
    if root is None:
        return None
    relative = kit_manifest(root).get(key, default)
    folder = root / str(relative)
    return folder if folder.is_dir() else None


def kit_data_dir() -> Path | None:
    """The kit's CIFAR-10 subset (``train/<class>/`` and ``test/<class>/`` JPEGs), if any."""
    return _kit_folder("data", KIT_DATA)


def kit_pretrained_dir() -> Path | None:
    """The kit's folder with the offline MobileNetV2 (the TFLite file and its licence), if any."""
    return _kit_folder("pretrained", KIT_PRETRAINED)


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as students should read it: known places in words, never a build machine's path.

    The kit's files become "the kit's data/...", the shared data beside a checkout "the
    project data folder",
    the course cache "the course cache (...)", anything else under the home folder ``~/...``.
    Other paths (one the user typed) are returned as they are.
    """
    path = Path(path)
    try:
        resolved = path.expanduser().resolve()
    except OSError:
        return str(path)
    named: list[tuple[Path | None, str]] = [
        (kit_dir(), "the kit's "),
        (shared_data_dir(), "the project data folder"),
        (
            Path(os.environ["COURSE_CACHE_DIR"]) if os.environ.get("COURSE_CACHE_DIR") else None,
            "the course cache",
        ),
        (Path.home() / ".cache" / "transfer-course", "the course cache"),
    ]
    for root, words in named:
        if root is None:
            continue
        try:
            relative = resolved.relative_to(root.resolve())
        except (ValueError, OSError):
            continue
        rel = relative.as_posix()
        if words.endswith("'s "):
            return words + (rel if rel != "." else "folder")
        return words if rel == "." else f"{words} ({rel})"
    try:
        return "~/" + resolved.relative_to(Path.home().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def env_flag(name: str, default: bool = False) -> bool:
    """Read the on/off environment variable ``name``; ``default`` when it is not set.

    ``1/true/yes/on`` mean on and ``0/false/no/off`` or an empty value mean off, in any case.
    Any other word is a mistake we can name, so it raises instead of guessing.

    Raises:
        CourseError: the variable holds a word that is neither on nor off.
    """
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CourseError(
        f"The environment variable {name}={value!r} is neither on nor off.",
        f"Set {name} to one of {', '.join(TRUE_WORDS)} (on) or "
        f"{', '.join(w for w in FALSE_WORDS if w)} (off), or unset it.",
    )


def offline() -> bool:
    """True when the network must never be tried (``COURSE_OFFLINE`` on, or under CI)."""
    # CI is the build systems' variable, not ours: any value but an "off" word counts as on.
    under_ci = os.environ.get("CI", "").strip().lower() not in FALSE_WORDS
    return env_flag("COURSE_OFFLINE", default=under_ci)
