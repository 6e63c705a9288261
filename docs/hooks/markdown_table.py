"""Helpers shared by the hooks that write Markdown tables: cells, numbers, lookups.

Not a hook itself (mkdocs.yml does not list it): the table-writing hooks import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A Markdown table; ``|`` and newlines in cells are escaped so a cell stays one cell."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [str(cell).replace("|", "\\|").replace("\n", " ") for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def lookup(record: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """The first of ``keys`` present in ``record`` (dotted keys reach into dicts)."""
    for key in keys:
        value: Any = record
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                break
            value = value[part]
        else:
            return value
    return default


def fmt(value: Any, unit: str = "") -> str:
    """A value as a table cell: floats to 2 places, ints with thousands separators."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}{unit}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " / ".join(fmt(v) for v in value)
    return f"{value}{unit}"


def duration(seconds: Any) -> str:
    """Seconds as "12.3 s" or, from a minute on, "4.5 min"; "-" when unknown."""
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"
