"""Where the course looks for data, weights and its own cache.

Environment variables (all optional):

- ``COURSE_DATA``: a CIFAR-10 source (folder, zip or torchvision root).
- ``COURSE_CACHE_DIR``: where decoded images and feature caches go.
- ``COURSE_OFFLINE``: ``1`` means never try the network (the default
  whenever ``CI`` is set).
"""

from __future__ import annotations

import os
from pathlib import Path

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


def offline() -> bool:
    """True when the network must never be tried (``COURSE_OFFLINE=1`` or CI)."""
    flag = os.environ.get("COURSE_OFFLINE")
    if flag is not None:
        return flag.strip().lower() not in ("", "0", "false", "no")
    return bool(os.environ.get("CI"))
