"""Peak memory of the fast path's feature-cache build, by batch size.

The feature-cache build of ``python -m solutions run --fast`` (VGG16's frozen prefix at
224 px, random weights) runs in a fresh process per batch size, over 2 batches of real
images; this prints and records the peak resident memory, which follows ``--batch-size``::

    python benchmarks/bench_fast_memory.py 8 32 64
    python benchmarks/bench_fast.py --memory 8 32 64     # the same, from the speed benchmark
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import datetime as dt
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from course.models import IMAGENET_PREPROCESSING


def measure_cache_memory(batch_size: int, size: int, images: torch.Tensor) -> dict[str, Any]:
    """Peak RSS of one cache build at ``batch_size`` (run in a fresh process)."""
    from course.features import cached_features, split_model
    from solutions.protocols import get_protocol
    from solutions.run_setup import prepare_model

    torch.manual_seed(123)
    model = prepare_model(get_protocol("linear-probe"), "random")
    parts = split_model(model)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        cached_features(
            parts.prefix,
            images,
            torch.zeros(len(images), dtype=torch.long),
            split="train",
            size=size,
            normalization="imagenet",
            mean=IMAGENET_PREPROCESSING.mean,
            std=IMAGENET_PREPROCESSING.std,
            data_fingerprint="memory-benchmark",
            root=Path(root),
            batch_size=batch_size,
        )
        seconds = time.perf_counter() - start
    return {
        "batch_size": batch_size,
        "size": size,
        "images": len(images),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_build_mb": before,
        "build_ips": len(images) / seconds,
    }


def memory_report(batch_sizes: list[int], data: str | None, size: int = 224) -> dict[str, Any]:
    """The cache build's peak RSS for each batch size, each in a fresh process."""
    from bench_fast import machine

    from course.data import load_cifar10
    from course.machine import load_average_values

    splits = load_cifar10(data, subset=max(batch_sizes) * 2 // 10 + 1)
    context = multiprocessing.get_context("spawn")
    rows = []
    for batch in batch_sizes:
        images = splits.train.images[: 2 * batch].clone()
        with futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            rows.append(pool.submit(measure_cache_memory, batch, size, images).result())
        row = rows[-1]
        print(
            f"  cache build, VGG16 prefix at {size} px, batch {batch:>4}: peak RSS "
            f"{row['peak_rss_mb']:7.0f} MB ({row['rss_before_build_mb']:.0f} MB before the "
            f"build), {row['build_ips']:.1f} img/s",
            flush=True,
        )
    return {
        "benchmark": "benchmarks/bench_fast.py --memory",
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(torch.device("cpu")) | {"load_average_at_end": load_average_values()},
        "weights": "random (memory does not depend on the weights' values)",
        "data": splits.source,
        "what": "feature-cache build of the fast path, VGG16 frozen up to "
        "fc6's ReLU, 2 batches of images, fresh process per batch size",
        "measurements": rows,  # not "rows": the site hook reads those as naive/fast pairs
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure the given batch sizes, print them, write the JSON; return the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch_sizes", nargs="+", type=int, help="e.g. 8 32 64")
    parser.add_argument("--data", help="a CIFAR-10 source (default: search)")
    parser.add_argument("--out", type=Path, help="the JSON to write")
    args = parser.parse_args(argv)
    report = memory_report(args.batch_sizes, args.data)
    out = args.out or Path(__file__).parent / "results" / (
        f"memory-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written: {out}")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
