"""Shared fixtures. Tests never download anything and run on the CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("COURSE_OFFLINE", "1")


def _grade_without_sandbox_where_there_is_none() -> None:
    """The grader refuses to run without bubblewrap unless ``--sandbox off`` is asked for.

    On a machine without it (``which bwrap`` fails or it cannot start a sandbox) the tests that
    grade ask for ``off`` explicitly, through ``AUTOGRADER_SANDBOX``; every result then says
    NOT sandboxed, and the tests of attacks that need the sandbox skip (``needs_bwrap``).
    """
    from autograder.limits import SANDBOX_ENV
    from autograder.sandbox import sandbox_available

    usable, _ = sandbox_available()
    if not usable:
        os.environ.setdefault(SANDBOX_ENV, "off")


_grade_without_sandbox_where_there_is_none()

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CIFAR-10 JPEG zips beside the checkout, or skip saying why."""
    if not (SHARED_DATA / "cifar10-jpeg-train.zip").exists():
        pytest.skip(f"real CIFAR-10 not found at {SHARED_DATA} (see its README)")
    return SHARED_DATA


# Keep caches out of the user's home but inside the (git-ignored) checkout, so the
# decoded CIFAR-10 (about 20 s to build on 2 cores) is reused from one run to the next.
os.environ.setdefault("COURSE_CACHE_DIR", str(ROOT / ".cache" / "test-cache"))
