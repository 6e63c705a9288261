"""Build the course site strictly and say how long it took.

    python scripts/build_site.py                 # the student site, into ./site
    python scripts/build_site.py --instructor    # the instructor site, into ./site-instructor
    python scripts/build_site.py --site-dir DIR  # elsewhere (the tests build into a temp dir)

It runs ``mkdocs build --strict``: any warning (a broken link, a lesson without
outputs, a missing docstring target) fails the build. Lessons are rendered from
their executed notebooks and never executed here; refresh their outputs first
with ``python scripts/execute_lessons.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDENT_CONFIG = ROOT / "mkdocs.yml"
INSTRUCTOR_CONFIG = ROOT / "mkdocs-instructor.yml"


@dataclass(frozen=True)
class BuildResult:
    """What one ``mkdocs build --strict`` did."""

    site_dir: Path
    returncode: int
    seconds: float
    log: str

    @property
    def ok(self) -> bool:
        """True when the build passed with no warning."""
        return self.returncode == 0


def build_site(
    site_dir: Path | None = None, *, use_cache: bool = True, instructor: bool = False
) -> BuildResult:
    """Run ``mkdocs build --strict`` from the repository root into ``site_dir``.

    Args:
        site_dir: where the HTML goes; ``ROOT / "site"`` (``site-instructor``) when ``None``.
        use_cache: keep mkdocs-jupyter's rendering cache (``.cache/mkdocs-jupyter``).
            ``False`` times a cold build, the worst case.
        instructor: build the instructor site (``mkdocs-instructor.yml``) instead of the
            student site (``mkdocs.yml``).
    """
    config = INSTRUCTOR_CONFIG if instructor else STUDENT_CONFIG
    default = ROOT / ("site-instructor" if instructor else "site")
    site_dir = (site_dir or default).resolve()
    if not use_cache:
        for cached in (ROOT / ".cache" / "mkdocs-jupyter").glob("*.json"):
            cached.unlink()
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-f", str(config)]
    command += ["--site-dir", str(site_dir)]
    # The banner about MkDocs 2 is advice to this file's authors, not news for every build.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    return BuildResult(site_dir, done.returncode, seconds, done.stdout + done.stderr)


def main(argv: list[str] | None = None) -> int:
    """Command line: build, print the log on failure, print the time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-dir", type=Path, default=None, help="output folder (./site)")
    parser.add_argument(
        "--cold", action="store_true", help="drop the notebook rendering cache first"
    )
    parser.add_argument(
        "--instructor", action="store_true", help="the instructor site (mkdocs-instructor.yml)"
    )
    args = parser.parse_args(argv)
    result = build_site(args.site_dir, use_cache=not args.cold, instructor=args.instructor)
    if not result.ok:
        print(result.log, file=sys.stderr)
        print(f"mkdocs build --strict failed after {result.seconds:.1f} s", file=sys.stderr)
        return result.returncode
    cache = "cold" if args.cold else "with the rendering cache"
    print(f"Site built in {result.seconds:.1f} s ({cache}): {result.site_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
