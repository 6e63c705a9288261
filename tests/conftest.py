"""Shared fixtures. Tests never download anything and run on the CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("COURSE_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CIFAR-10 JPEG zips beside the checkout, or skip saying why."""
    if not (SHARED_DATA / "cifar10-jpeg-train.zip").exists():
        pytest.skip(f"real CIFAR-10 not found at {SHARED_DATA} (see its README)")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep caches out of the user's home, but share them across the session."""
    if "COURSE_CACHE_DIR" not in os.environ:
        os.environ["COURSE_CACHE_DIR"] = str(tmp_path_factory.mktemp("course-cache"))
