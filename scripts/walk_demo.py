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

``--follow settings`` walks the settings instead of the calls: every read of a field of the
demo's ``DemoSettings``, of the ``RunOptions`` made from them and of the ``RunPlan`` resolved
from those, with the module that read it (reads by the object's own methods, such as a
``RunPlan`` property computing from the plan, are the object at work and are left out). A
stop is then a module reading the settings; a re-entry is a module that reads them again
after another module did. The demo makes two runs (pretrained, then random features), so
each run's walk is counted on its own.
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


def follow_settings(subset: int, epochs: int, out: Path) -> dict[str, list[tuple[str, str]]]:
    """Run the demo recording each read of a settings field; return the walks by phase
    (the demo's set-up, then each run)."""
    from solutions.demo import DemoSettings, run_demo
    from solutions.run import RunOptions

    classes: tuple[type, ...] = (DemoSettings, RunOptions)
    try:  # a checkout from before the plan (issue 20) has no RunPlan: walk the rest
        from solutions.run_setup import RunPlan

        classes += (RunPlan,)
    except ImportError:
        pass
    runs: list[list[tuple[str, str]]] = [[]]  # the set-up, then one per run
    saved = {cls: cls.__getattribute__ for cls in classes}

    def reader(cls: type):  # noqa: ANN202 (a __getattribute__)
        original = saved[cls]

        def get(self, name: str):  # noqa: ANN001, ANN202
            value = original(self, name)
            frame = sys._getframe(1)
            # A read by the object's own methods (a RunPlan property) is the object at work,
            # not another module taking the settings: only outside reads are stops.
            if not name.startswith("__") and frame.f_locals.get("self") is not self:
                module = _module_of(frame.f_code.co_filename)
                if module is not None:
                    stop = (module, f"{cls.__name__}.{name}")
                    if not runs[-1] or runs[-1][-1][0] != module:
                        runs[-1].append(stop)
            return value

        return get

    import solutions.demo as demo_module

    original_options = demo_module.demo_options

    def demo_options(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        runs.append([])  # each run starts where the demo turns its settings into run options
        return original_options(*args, **kwargs)

    demo_module.demo_options = demo_options
    for cls in classes:
        cls.__getattribute__ = reader(cls)
    try:
        run_demo(DemoSettings(subset=subset, epochs=epochs, out=out))
    finally:
        for cls, original in saved.items():
            cls.__getattribute__ = original
        demo_module.demo_options = original_options
    return {"set-up": runs[0], **{f"run {n}": stops for n, stops in enumerate(runs[1:], 1)}}


def _print_walk(title: str, stops: list[tuple[str, str]]) -> None:
    print(f"\n--- {title} ---")
    seen: set[str] = set()
    reentries: dict[str, int] = {}
    for i, (module, what) in enumerate(stops, 1):
        again = module in seen
        if again:
            reentries[module] = reentries.get(module, 0) + 1
        seen.add(module)
        print(f"{i:3d}. {module}:{what}{'   (re-entry)' if again else ''}")
    print(
        f"stops: {len(stops)}; modules: {len(seen)}; re-entries: {sum(reentries.values())}"
        + (
            f" ({', '.join(f'{m} x{n}' for m, n in sorted(reentries.items()))})"
            if reentries
            else ""
        )
    )


def main() -> None:
    """Run the demo small, print its walk and the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/walk_demo_runs"))
    parser.add_argument("--follow", choices=["calls", "settings"], default="calls")
    args = parser.parse_args()
    if args.follow == "settings":
        for phase, stops in follow_settings(args.subset, args.epochs, args.out).items():
            _print_walk(f"{phase}: reads of the demo's settings, options and plan", stops)
        return
    stops = walk(args.subset, args.epochs, args.out)
    _print_walk("walk of solutions.demo.run_demo (project modules, in order)", stops)


if __name__ == "__main__":
    main()
