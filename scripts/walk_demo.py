"""Print the walk of ``python -m solutions demo``: the project modules it enters, in order.

A ``sys.setprofile`` tracer records every Python call made while ``run_demo`` runs and keeps
the calls that code in ``solutions`` makes into this project's ``course`` or ``solutions``
modules (the run path's own steps; what ``course`` does inside, e.g. decoding each image, is
left out). Consecutive calls into one module are one *stop*; a module entered again after the
walk left it is a *re-entry*. The demo runs on a small subset (the call path does not depend
on its size)::

    python scripts/walk_demo.py [--subset 10] [--epochs 1]

It prints one line per stop (module, the first function entered there) and a summary:
stops, modules, re-entries. The issue-20 review counted these for the demo's call path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PACKAGES = ("course", "solutions")


def _module_of(filename: str) -> str | None:
    try:
        rel = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    if rel.parts[0] not in PACKAGES or rel.suffix != ".py":
        return None
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def walk(subset: int, epochs: int, out: Path) -> list[tuple[str, str]]:
    """Run the demo under the tracer; return the stops as ``(module, function)``."""
    from solutions.demo import DemoSettings, run_demo

    stops: list[tuple[str, str]] = []
    cache: dict[str, str | None] = {}

    def tracer(frame, event, arg):  # noqa: ANN001, ANN202 (sys.setprofile's signature)
        if event != "call":
            return
        filename = frame.f_code.co_filename
        if filename not in cache:
            cache[filename] = _module_of(filename)
        module = cache[filename]
        if module is None or frame.f_code.co_name.startswith("<"):
            return
        caller = frame.f_back.f_code.co_filename if frame.f_back else ""
        if caller not in cache:
            cache[caller] = _module_of(caller)
        if not (cache[caller] or "").startswith("solutions") and frame.f_code.co_name != "run_demo":
            return
        if not stops or stops[-1][0] != module:
            stops.append((module, frame.f_code.co_name))

    settings = DemoSettings(subset=subset, epochs=epochs, out=out)
    sys.setprofile(tracer)
    try:
        run_demo(settings)
    finally:
        sys.setprofile(None)
    return stops


def main() -> None:
    """Run the demo small, print its walk and the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/walk_demo_runs"))
    args = parser.parse_args()
    stops = walk(args.subset, args.epochs, args.out)
    print("\n--- walk of solutions.demo.run_demo (project modules, in order) ---")
    seen: set[str] = set()
    reentries: dict[str, int] = {}
    for i, (module, function) in enumerate(stops, 1):
        again = module in seen
        if again:
            reentries[module] = reentries.get(module, 0) + 1
        seen.add(module)
        print(f"{i:3d}. {module}:{function}{'   (re-entry)' if again else ''}")
    print(
        f"stops: {len(stops)}; modules: {len(seen)}; re-entries: {sum(reentries.values())}"
        + (
            f" ({', '.join(f'{m} x{n}' for m, n in sorted(reentries.items()))})"
            if reentries
            else ""
        )
    )


if __name__ == "__main__":
    main()
