"""Where the course looks for data, weights and its own cache.

Environment variables (all optional):

- ``COURSE_DATA``: a CIFAR-10 source (folder, zip or torchvision root).
- ``COURSE_CACHE_DIR``: where decoded images and feature caches go.
- ``COURSE_OFFLINE``: ``1`` means never try the network (the default
  whenever ``CI`` is set).

Every on/off variable is read by :func:`env_flag`, so ``COURSE_OFFLINE=off`` and
``COURSE_QUICK=off`` mean the same thing: off.
"""

from __future__ import annotations

import os
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
    """Return ``../shared/data`` beside the checkout when it exists, else ``None``."""
    if PROJECT_ROOT is None:
        return None
    path = PROJECT_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


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
