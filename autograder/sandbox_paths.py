"""What the sandbox shows of the grader's Python, and which grading packages it masks.

:func:`python_roots` lists the folders the running Python imports from (bound read-only in the
sandbox): ``sys.prefix``, ``sys.base_prefix``, the ``sys.path`` folders outside them and the
package folders of editable installs; of a project folder only its ``course`` package and
project files. :func:`grading_package_copies` finds every copy of ``solutions`` and
``autograder`` those trees could show, for :mod:`autograder.sandbox` to mask. Folders this
user may not read are skipped: the sandbox could not read them either.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, but False where this user may not look (a private folder on the way).

    An ordinary user's ``sys.path`` can name folders with unreadable subfolders (``/tmp`` as
    the working folder, a shared home): what the grader cannot read, the sandbox cannot either,
    so there is nothing to bind or to mask there.
    """
    try:
        return path.is_dir()
    except OSError:
        return False


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where this user may not look (see :func:`_is_dir`)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _children(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted; none where this user may not list it."""
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def python_roots() -> list[Path]:
    """Folders the running Python and its packages are imported from (bound read-only)."""
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    executable = Path(sys.executable).resolve()
    if not any(executable.is_relative_to(r) for r in roots):
        roots.add(executable.parent)
    for entry in sys.path:
        if not entry or not _is_dir(Path(entry)):
            continue  # '' (the working folder), zip files and missing folders
        path = Path(entry).resolve()
        if any(path.is_relative_to(r) for r in roots):
            continue
        roots.update(_project_parts(path))
    for folder in _editable_packages():
        roots.add(folder)
        roots.update(
            p.resolve() for p in (folder.parent / n for n in _PROJECT_FILES) if _is_file(p)
        )
    return sorted(roots)


#: Files that mark a project folder (``course.paths`` finds the checkout by its pyproject).
_PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")


#: Top-level names that must not be importable inside, from any location.
GRADING_PACKAGES = ("solutions", "autograder")
#: The only package bound from a project folder (a checkout of this course).
STUDENT_PACKAGES = ("course",)


def _project_parts(folder: Path) -> list[Path]:
    """A sys.path folder outside the environment: its package folders and project files only.

    Running ``python -m autograder`` puts the working folder on ``sys.path``; binding it whole
    would show ``grading/`` (gradebook, originals) and everything else beside the code. Of a
    project folder (one with a ``pyproject.toml``...) only the ``course`` package is bound; of
    any other folder its packages except ``solutions`` and ``autograder``.
    """
    if _is_site_dir(folder):
        return [folder]
    parts = [folder / name for name in _PROJECT_FILES if _is_file(folder / name)]
    project = bool(parts)
    for child in _children(folder):
        if child.name.startswith(".") or not _is_file(child / "__init__.py"):
            continue
        if child.name in GRADING_PACKAGES or (project and child.name not in STUDENT_PACKAGES):
            continue
        parts.append(child)
    return [p.resolve() for p in parts]


def grading_package_copies() -> list[Path]:
    """Every copy of ``solutions`` and ``autograder`` a bound tree could show, to be masked.

    Looks in every ``sys.path`` folder (site-packages, ``.pth`` entries, the working folder)
    and in the mappings of editable installs: a package folder, a namespace folder, a module
    file or an extension module of either name is hidden wherever it lies.
    """
    found: set[Path] = set()
    for entry in sys.path:
        if not entry or not _is_dir(Path(entry)):
            continue
        folder = Path(entry)
        for name in GRADING_PACKAGES:
            if _is_dir(folder / name):
                found.add((folder / name).resolve())
            found.update(p.resolve() for p in folder.glob(f"{name}.py"))
            found.update(p.resolve() for p in folder.glob(f"{name}.*.so"))
            found.update(p.resolve() for p in folder.glob(f"{name}.pth"))
    for name, target in _editable_mapping().items():
        if name.split(".")[0] in GRADING_PACKAGES:
            found.add(target)
    return sorted(found)


def _is_site_dir(folder: Path) -> bool:
    return folder.name in ("site-packages", "dist-packages") or folder.name.startswith("python3")


_MAPPING = re.compile(r"^MAPPING\s*(?::[^=]*)?=\s*(\{.*?\})\s*$", re.M | re.S)


def _editable_packages() -> list[Path]:
    """Package folders of PEP 660 editable installs (setuptools' ``__editable__`` finders),
    except the grading packages (never bound)."""
    return [
        path
        for name, path in _editable_mapping().items()
        if name.split(".")[0] not in GRADING_PACKAGES
    ]


def _editable_mapping() -> dict[str, Path]:
    """Top-level name -> folder of every PEP 660 editable install on ``sys.path``."""
    import ast

    found: dict[str, Path] = {}
    for entry in sys.path:
        if not entry or not _is_dir(Path(entry)):
            continue
        for finder in Path(entry).glob("__editable___*_finder.py"):
            try:
                match = _MAPPING.search(finder.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                continue
            if not match:
                continue
            try:
                mapping = ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                continue
            if isinstance(mapping, dict):
                found.update(
                    {str(k): Path(p).resolve() for k, p in mapping.items() if Path(p).exists()}
                )
    return found
