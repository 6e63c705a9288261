"""The demo's settings walk forward (issue 20): ``scripts/walk_demo.py --follow settings``.

Each run turns the demo's settings into run options once (``solutions.demo``), resolves them
into one plan (``solutions.run_setup``) and runs the plan (``solutions.run``): no module reads
the settings again after handing them on.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the demo twice, small (about 15 s)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "walk_demo.py"


@pytest.fixture(scope="module")
def walk_demo():
    spec = importlib.util.spec_from_file_location("walk_demo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_run_reads_the_settings_once_per_module_in_order(walk_demo, tmp_path: Path) -> None:
    walks = walk_demo.follow_settings(subset=2, epochs=1, out=tmp_path)
    runs = {phase: stops for phase, stops in walks.items() if phase.startswith("run")}
    assert runs, walks  # the demo made at least one run
    for phase, stops in runs.items():
        modules = [module for module, _ in stops]
        assert modules == ["solutions.demo", "solutions.run_setup", "solutions.run"], (
            phase,
            stops,
        )
