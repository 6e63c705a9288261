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
    # Every file, lessons and the exercise source included: no exemption.
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"no modules found under {package}/"
    wrong = {
        str(m.relative_to(ROOT)): sorted(_imported_packages(m) - ALLOWED[package] - {package})
        for m in modules
    }
    assert {name: pkgs for name, pkgs in wrong.items() if pkgs} == {}


def test_no_private_names_imported_across_modules():
    """``from x import _name`` couples modules through internals (issue 11)."""
    found = []
    for package in sorted(ALLOWED):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom):
                    found += [
                        f"{path.relative_to(ROOT)}: {node.module}.{alias.name}"
                        for alias in node.names
                        if alias.name.startswith("_") and alias.name != "__version__"
                    ]
    assert found == []
