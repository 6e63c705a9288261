"""The "Benchmarks" section of the Results page, from ``benchmarks/results/*.json``.

Benchmarks differ in what they measure, so every field a record has is shown: scalars
and small mappings (machine, limits) as facts, lists of measurements as tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from markdown_table import duration, fmt, table
from recorded_runs import without_paths


def rate(value: Any) -> str:
    """Images per second, one decimal; "-" when not measured."""
    return "-" if value is None else f"{value:,.1f}"


def fast_path_rows(rows: list[Mapping[str, Any]]) -> str:
    """``benchmarks/bench_fast.py``'s rows: one line per protocol and path."""
    lines = []
    for row in rows:
        for path in ("naive", "fast"):
            rates = row.get(path)
            if not isinstance(rates, Mapping):
                continue
            peak = rates.get("peak_gpu_mb", rates.get("peak_rss_mb"))
            speedup = row.get("speedup_epoch") if path == "fast" else None
            lines.append(
                (
                    f"`{row.get('protocol', '?')}`",
                    fmt(row.get("size")),
                    path,
                    fmt(row.get("images")),
                    rate(rates.get("train_ips")),
                    rate(rates.get("eval_ips")),
                    rate(rates.get("build_ips")),
                    duration(rates.get("total_seconds")),
                    "-" if peak is None else f"{peak:,.0f}",
                    "" if speedup is None else f"{speedup:.1f}x",
                )
            )
    header = (
        "protocol",
        "px",
        "path",
        "images measured",
        "train img/s",
        "eval img/s",
        "cache build img/s",
        "50 epochs (projected)",
        "peak memory (MB)",
        "epoch speed-up",
    )
    return table(header, lines)


def records_table(records: list[Mapping[str, Any]]) -> str:
    """Any other list of measurements (e.g. ``bench_grading.py``'s runs): one row each."""
    header = list(dict.fromkeys(key for record in records for key in record))
    return table(header, ([fmt(record.get(key)) for key in header] for record in records))


def benchmark_section(path: Path, plots_dir: Path) -> str:
    """One benchmark record: what it ran on, then its measurements as tables.

    ``bench_fast.py``'s ``rows`` get a table of their own (naive and fast side by
    side), and its verbose ``settings`` are left to the JSON file.
    """
    record = json.loads(path.read_text(encoding="utf-8"))
    measured = {
        key: value
        for key, value in record.items()
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value)
    }
    facts = [
        (key.replace("_", " "), f"`{value}`" if key == "command" else fmt(value))
        for key, value in record.items()
        if key not in measured and key != "settings"
    ]
    facts = [(key, without_paths(value)) for key, value in facts]
    parts = [f"### `{path.stem}`\n", table(("what", "value"), facts)]
    for key, rows in measured.items():
        rendered = fast_path_rows(rows) if key == "rows" else records_table(rows)
        parts.append(f"\n**{key}**\n\n{without_paths(rendered)}")
    for plot in sorted(plots_dir.glob(f"{path.stem}*.png")):
        parts.append(f"\n![{plot.stem}](results/benchmarks/{plot.name})\n")
    return "\n".join(parts)


def benchmarks_section(benchmarks_dir: Path) -> str:
    """One section per benchmark record in ``benchmarks_dir``, or a note that none exist."""
    records = sorted(benchmarks_dir.glob("*.json"))
    if not records:
        return (
            '!!! note "No benchmarks recorded yet"\n'
            "    No benchmark result is recorded in the repository yet "
            "(`benchmarks/results/*.json`).\n"
        )
    return "\n".join(benchmark_section(path, benchmarks_dir) for path in records)
