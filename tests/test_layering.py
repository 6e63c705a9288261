"""Imports run one way: autograder -> solutions -> course, never back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A package may import only the packages listed for it (besides itself).
ALLOWED = {"course": set(), "solutions": {"course"}, "autograder": {"course", "solutions"}}
OURS = set(ALLOWED)


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package):
    modules = sorted((ROOT / package).rglob("*.py"))
    # Lessons and the exercise are not part of the package; they have their own tests.
    modules = [m for m in modules if not {"lessons", "exercises"} & set(m.parts)]
    assert modules, f"no modules found under {package}/"
    wrong = {
        str(m.relative_to(ROOT)): sorted(_imported_packages(m) - ALLOWED[package] - {package})
        for m in modules
    }
    assert {name: pkgs for name, pkgs in wrong.items() if pkgs} == {}
