"""The "Benchmarks" section of the Results page, from ``benchmarks/results/*.json``.

Benchmarks differ in what they measure, so every field a record has is shown: scalars
and small mappings (machine, limits) as facts, lists of measurements as tables.

GPU figures come only from ``benchmarks/gpu_check.py`` records that name a GPU
(``"dry_run": false``, a ``cuda`` device, a ``gpu`` name): :func:`gpu_section` shows the
newest one against the targets and the lecture's times, and says "not measured on a GPU"
until one exists. Dry-run records (the CPU) are never shown as GPU figures.
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


#: The script whose records carry GPU figures.
GPU_CHECK = "benchmarks/gpu_check.py"
#: Issue 21's targets for 50 epochs at full scale (cache build included), and the lecture's.
GPU_TARGETS = {
    "lecture-large": ("<= 60 s", "213.1 min"),
    "lecture-small": ("<= 90 s", "38.3 min"),
    "scratch": ("<= 3 min", "90.7 min"),
}


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_gpu_record(record: Any) -> bool:
    """True for a ``gpu_check.py`` record measured on a GPU (not a dry run, a CUDA device)."""
    return (
        isinstance(record, Mapping)
        and record.get("benchmark") == GPU_CHECK
        and record.get("dry_run") is False
        and str(record.get("device", "")).startswith("cuda")
        and bool(record.get("gpu"))
    )


def gpu_records(benchmarks_dir: Path) -> list[tuple[Path, Mapping[str, Any]]]:
    """``(path, record)`` of every GPU record in ``benchmarks_dir``, oldest first."""
    found = []
    for path in sorted(benchmarks_dir.glob("gpu-*.json")):
        record = _read(path)
        if is_gpu_record(record):
            found.append((path, record))
    return found


def not_measured_note() -> str:
    """What the page says until a GPU record exists: targets only, no GPU figure."""
    targets = "; ".join(
        f"`{name}` {target} (the lecture: {lecture})"
        for name, (target, lecture) in GPU_TARGETS.items()
    )
    return (
        '!!! warning "Not measured on a GPU"\n'
        "    The fast path has not been measured on a GPU yet: no record of "
        "`benchmarks/gpu_check.py` naming a GPU is in `benchmarks/results/`. "
        "The script is prepared to measure it in one call (see `benchmarks/README.md`). "
        f"Targets for 50 epochs at full scale, cache build included: {targets}. "
        "These are targets, not measurements.\n"
    )


def _stage(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    stage = record.get("stages", {}).get(name, {})
    return stage if isinstance(stage, Mapping) else {}


def gpu_section(benchmarks_dir: Path) -> str:
    """The newest GPU record's figures, labelled measured or projected; else the note."""
    records = gpu_records(benchmarks_dir)
    if not records:
        return not_measured_note()
    path, record = records[-1]
    env = _stage(record, "environment").get("info", {})
    lines = [
        f"### On a GPU: `{path.name}`\n",
        f"Measured by `benchmarks/gpu_check.py` on **{record.get('gpu')}** "
        f"({record.get('started', '?')}): torch {env.get('torch', '?')}, CUDA "
        f"{env.get('cuda', '?')}, cuDNN {env.get('cudnn', '?')}. Random weights for the "
        "timings (speed does not depend on them). *Measured* figures were timed in that run; "
        "*projected* ones are computed from them for 50 epochs at full scale.\n",
    ]
    naive = {
        item.get("protocol"): item
        for item in _stage(record, "naive_path").get("items", [])
        if item.get("status") == "ok"
    }
    rows = []
    for stage_name in ("fast_path", "fast_path_compile"):
        for item in _stage(record, stage_name).get("items", []):
            name = item.get("protocol", "?")
            target, lecture = GPU_TARGETS.get(name, ("-", "-"))
            if item.get("status") != "ok":
                why = item.get("reason") or item.get("error") or ""
                rows.append(
                    (
                        f"`{name}`",
                        fmt(item.get("compile")),
                        item.get("status"),
                        why,
                        "",
                        "",
                        "",
                        target,
                        lecture,
                        "",
                    )
                )
                continue
            m, p = item.get("measured", {}), item.get("projected", {})
            ratio = naive.get(name, {}).get("projected", {}).get("epoch_ratio_naive_over_fast")
            peak = m.get("peak_gpu_mb")
            rows.append(
                (
                    f"`{name}`",
                    "yes" if item.get("compile") else "no",
                    duration(m.get("epoch_seconds_after_warmup")),
                    rate(m.get("images_per_second")),
                    duration(m.get("cache_build_seconds")),
                    "-" if peak is None else f"{peak:,.0f}",
                    duration(p.get("total_50_epochs_seconds")),
                    target,
                    lecture,
                    "" if ratio is None or item.get("compile") else f"{ratio:,.0f}x",
                )
            )
    header = (
        "protocol",
        "compile",
        "epoch (measured)",
        "img/s (measured)",
        "cache build (measured)",
        "peak GPU MB (measured)",
        "50 epochs, full scale (projected)",
        "target",
        "lecture",
        "naive / fast epoch",
    )
    lines.append(table(header, rows))
    full = _stage(record, "full_run")
    if full.get("status") == "ok":
        m = full.get("measured", {})
        lines.append(
            f"\n`lecture-large` end to end, {m.get('epochs')} epochs (measured): "
            f"{duration(m.get('run_seconds'))} (target <= 60 s; the lecture: 213.1 min); "
            f"test accuracy {fmt(m.get('test_acc'))}% with weights "
            f"{full.get('info', {}).get('weights')}: "
            f"{full.get('info', {}).get('accuracy_means')}.\n"
        )
    for stage_name in ("mobilenet", "mobilenet_last_block"):
        stage = _stage(record, stage_name)
        if stage.get("status") == "ok":
            m = stage.get("measured", {})
            lines.append(
                f"\nOffline MobileNetV2, `{stage.get('protocol')}`, {m.get('epochs')} epochs "
                f"(measured): test accuracy {fmt(m.get('test_acc'))}%, "
                f"{duration(m.get('run_seconds'))}.\n"
            )
    tests = _stage(record, "cuda_tests").get("measured", {})
    if tests:
        lines.append(
            f"\nCUDA tests: {tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, "
            f"{tests.get('errors', 0)} errors, {tests.get('skipped', 0)} skipped.\n"
        )
    skipped = [
        f"{name} ({stage.get('status')}: {stage.get('reason') or stage.get('error')})"
        for name, stage in record.get("stages", {}).items()
        if isinstance(stage, Mapping) and stage.get("status") not in ("ok", None)
    ]
    if skipped:
        lines.append("\nNot measured in that run: " + "; ".join(skipped) + ".\n")
    return without_paths("\n".join(lines))


def benchmarks_section(benchmarks_dir: Path) -> str:
    """The GPU section, then one section per other benchmark record, or a note that none exist.

    ``gpu_check.py`` records appear only in the GPU section (dry runs not at all).
    """
    gpu = gpu_section(benchmarks_dir)
    records = [
        path
        for path in sorted(benchmarks_dir.glob("*.json"))
        if not (isinstance(_read(path), Mapping) and _read(path).get("benchmark") == GPU_CHECK)
    ]
    if not records:
        return gpu + (
            '\n!!! note "No benchmarks recorded yet"\n'
            "    No benchmark result is recorded in the repository yet "
            "(`benchmarks/results/*.json`).\n"
        )
    return gpu + "\n" + "\n".join(benchmark_section(path, benchmarks_dir) for path in records)
