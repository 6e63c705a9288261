"""The table ``bench_fast.py`` prints: naive and fast path per protocol, measured and projected."""

from __future__ import annotations

from typing import Any


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:8.1f} min" if seconds >= 60 else f"{seconds:8.1f} s  "


def print_table(report: dict[str, Any]) -> None:
    """The measured rates and the projected 50-epoch times, one line per protocol and path."""
    mem = "peak GPU MB" if report["device"].startswith("cuda") else "peak RSS MB"
    head = (
        f"{'protocol':<14} {'path':<6} {'px':>4} {'train img/s':>12} {'eval img/s':>11} "
        f"{'cache img/s':>12} {'50 ep (proj.)':>14} {mem:>12} {'epoch x':>8}"
    )
    print()
    print(
        f"device: {report['device']}  machine: {report['machine']['cpu']}"
        + (f", {report['machine']['gpu']}" if "gpu" in report["machine"] else "")
        + f"  torch {report['machine']['torch']}"
    )
    print(f"weights: {report['weights']}\ndata: {report['data']}")
    if "note" in report["machine"]:
        print(f"note: {report['machine']['note']}")
    print(head)
    print("-" * len(head))
    for row in report["rows"]:
        for path in ("naive", "fast"):
            r = row[path]
            build = f"{r['build_ips']:12.1f}" if "build_ips" in r else f"{'-':>12}"
            peak = r.get("peak_gpu_mb", r["peak_rss_mb"])
            speed = f"{row['speedup_epoch']:7.1f}x" if path == "fast" else f"{'':>8}"
            print(
                f"{row['protocol']:<14} {path:<6} {row['size']:>4} {r['train_ips']:12.1f} "
                f"{r['eval_ips']:11.1f} {build} {_minutes(r['total_seconds']):>14} "
                f"{peak:12.0f} {speed}"
            )
    print(
        "50 ep (proj.): projected from the measured rates to full scale; epoch x: naive epoch "
        "time / fast epoch time (train + valid; cache build excluded, it is paid once)."
    )
