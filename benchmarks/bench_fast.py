"""Naive path vs fast path for each of the lecture's protocols: images per second, side by side.

Naive is the lecture's way: per-image torchvision transforms in a DataLoader, the full VGG16
forward every step. Fast is ``solutions.fast``: for cacheable protocols the frozen prefix
runs once (cache build, timed separately) and only the tail trains; otherwise the uint8 images
sit on the device and are transformed there per batch. Both paths train with the same step
(SGD, cross-entropy, bf16 autocast on CUDA only) on the same images.

Each (protocol, path) runs in a fresh process so its peak memory is its own. Weights are
random (throughput does not depend on them). Figures for 50 epochs at full scale (45,000 /
5,000 / 10,000 images) are projected from the measured rates unless the run covered them.

    python benchmarks/bench_fast.py            # CPU: small subsets, a few minutes on 2 cores
    python benchmarks/bench_fast.py --gpu      # one GPU: full splits (see benchmarks/README.md)
    python benchmarks/bench_fast.py --memory 8 32 64   # peak RSS of the cache build by batch

``--memory``: the feature-cache build's peak memory by batch size, measured by
``benchmarks/bench_fast_memory.py`` (see there).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import datetime as dt
import json
import multiprocessing
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from bench_fast_steps import eval_steps, timed, train_steps
from bench_fast_table import print_table

PROTOCOL_ORDER = ("lecture-large", "lecture-small", "corrected", "scratch", "linear-probe")
FULL = {"train": 45_000, "valid": 5_000, "test": 10_000}  # the lecture's split sizes
EPOCHS = 50  # the lecture's


@dataclass(frozen=True)
class Job:
    """One measurement, sent to a fresh process."""

    protocol: str
    path: str  # "naive" | "fast"
    device: str
    batch_size: int
    eval_batch_size: int
    num_workers: int
    min_seconds: float  # repeat the fast tail's epochs until at least this long
    tail_batch_size: int  # the cached tail trains at the lecture's batch size (it is cheap)
    tail_rows: int  # cached rows the tail is timed on (the subset's rows, repeated)
    train_images: torch.Tensor  # uint8 (N, 3, 32, 32)
    train_labels: torch.Tensor
    compile: bool = False


def measure(job: Job) -> dict[str, Any]:
    """Run one job in this process and return its rates (images per second) and peak memory."""
    from course.data import ImageSplit
    from solutions.protocols import get_protocol
    from solutions.run_setup import prepare_model
    from solutions.transfer import make_optimizer

    device = torch.device(job.device)
    protocol = get_protocol(job.protocol)
    torch.manual_seed(123)
    model = prepare_model(protocol, "random").to(device)
    optimizer = make_optimizer(model)
    split = ImageSplit(job.train_images, job.train_labels, "train")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result = (_naive if job.path == "naive" else _fast)(job, protocol, model, optimizer, split)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def _naive(job: Job, protocol, model, optimizer, split) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    from course.data import TransformedImages
    from solutions.transfer import build_transforms

    device = torch.device(job.device)
    train_tf, eval_tf = build_transforms(
        protocol.size, protocol.normalization, augment=protocol.augment
    )
    common = dict(num_workers=job.num_workers, pin_memory=device.type == "cuda")
    train = DataLoader(
        TransformedImages(split, train_tf), batch_size=job.batch_size, shuffle=True, **common
    )
    valid = DataLoader(TransformedImages(split, eval_tf), batch_size=job.eval_batch_size, **common)
    # Warm-up: one batch, so one-time costs (allocator, kernels, workers) are not counted.
    train_steps(model, optimizer, [next(iter(train))], device)
    seen, seconds = timed(lambda: train_steps(model, optimizer, train, device), device)
    seen_eval, seconds_eval = timed(lambda: eval_steps(model, valid, device), device)
    return {
        "train_ips": seen / seconds,
        "eval_ips": seen_eval / seconds_eval,
        "measured_images": seen,
        "what": "per-image transforms in a DataLoader, full model every step",
    }


def _fast(job: Job, protocol, model, optimizer, split) -> dict[str, Any]:
    from course.data import NORMALIZATIONS
    from course.features import cached_features, split_model
    from solutions.fast.gpu_data import BatchTransform, TensorLoader

    device = torch.device(job.device)
    mean, std = NORMALIZATIONS[protocol.normalization]
    parts = split_model(model) if protocol.cacheable else None
    if parts is None:
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        net = torch.compile(model) if job.compile else model
        channels_last = device.type == "cuda"
        images = split.images.to(device)

        def loader(train: bool) -> TensorLoader:
            tf = BatchTransform(
                protocol.size,
                mean,
                std,
                augment=protocol.augment,
                train=train,
                channels_last=channels_last,
            )
            size = job.batch_size if train else job.eval_batch_size
            return TensorLoader(images, split.labels, batch_size=size, shuffle=train, transform=tf)

        train_steps(net, optimizer, [next(iter(loader(True)))], device)
        seen, seconds = timed(lambda: train_steps(net, optimizer, loader(True), device), device)
        seen_eval, seconds_eval = timed(lambda: eval_steps(net, loader(False), device), device)
        return {
            "train_ips": seen / seconds,
            "eval_ips": seen_eval / seconds_eval,
            "measured_images": seen,
            "what": "uint8 images on the device, batched resize/crop/normalize, full model",
        }

    with tempfile.TemporaryDirectory() as root:
        cache, build_seconds = timed(
            lambda: cached_features(
                parts.prefix,
                split.images,
                split.labels,
                split="train",
                size=protocol.size,
                normalization=protocol.normalization,
                mean=mean,
                std=std,
                data_fingerprint="benchmark",
                device=device,
                root=Path(root),
                batch_size=job.eval_batch_size,
            ),
            device,
        )
        features, labels = cache.features, cache.labels
        if len(labels) < job.tail_rows:
            # A CPU subset is too small for full tail batches: repeat its rows. The tail's
            # cost per image does not depend on the values, only on the shapes.
            reps = -(-job.tail_rows // len(labels))
            features, labels = features.repeat(reps, 1), labels.repeat(reps)
        features = features.to(device)
        tail = torch.compile(parts.tail) if job.compile else parts.tail
        train = TensorLoader(
            features, labels, batch_size=job.tail_batch_size, shuffle=True, device=device
        )
        valid = TensorLoader(features, labels, batch_size=4 * job.tail_batch_size, device=device)
        train_steps(tail, optimizer, [next(iter(train))], device)
        seen, seconds, epochs = 0, 0.0, 0
        while epochs < 2 or seconds < job.min_seconds:  # tiny epochs: repeat for a stable rate
            n, s = timed(lambda: train_steps(tail, optimizer, train, device), device)
            seen, seconds, epochs = seen + n, seconds + s, epochs + 1
        seen_eval, seconds_eval = 0, 0.0
        while seen_eval < seen // 4 or seconds_eval < job.min_seconds / 4:
            n, s = timed(lambda: eval_steps(tail, valid, device), device)
            seen_eval, seconds_eval = seen_eval + n, seconds_eval + s
        return {
            "train_ips": seen / seconds,
            "eval_ips": seen_eval / seconds_eval,
            "build_ips": len(split.labels) / build_seconds,
            "measured_images": seen,
            "tail_rows": len(labels),
            "tail_batch_size": job.tail_batch_size,
            "cache": {"cut": parts.cut, "dim": int(cache.features.shape[1]), "dtype": "bfloat16"},
            "what": f"frozen prefix cached once (up to {parts.cut}), tail trained on the cache",
        }


def project(rates: dict[str, Any]) -> dict[str, float]:
    """Seconds for one epoch (train + valid) and for 50 epochs + test, at full scale."""
    epoch = FULL["train"] / rates["train_ips"] + FULL["valid"] / rates["eval_ips"]
    once = FULL["test"] / rates["eval_ips"]
    if "build_ips" in rates:
        once += sum(FULL.values()) / rates["build_ips"]
    return {
        "epoch_seconds": epoch,
        "one_time_seconds": once,
        "total_seconds": EPOCHS * epoch + once,
    }


def machine(device: torch.device) -> dict[str, Any]:
    """Name the machine the figures come from (``course.machine``, plus torch's settings)."""
    from course.machine import cpu_cores, load_average_values, machine_record

    info = {
        **machine_record(),
        "cpu_cores": cpu_cores(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_at_start": load_average_values(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_data(args: argparse.Namespace) -> tuple[dict[int, tuple[torch.Tensor, torch.Tensor]], str]:
    """Training images for each input size's subset: real CIFAR-10 when found, else synthetic."""
    from course.data import load_cifar10, synthetic_cifar10
    from course.errors import DataError

    largest = max(args.images, args.images_224)
    per_class = None if args.gpu else -(-largest // 10)
    try:
        splits = load_cifar10(args.data, subset=per_class)
        label = f"real CIFAR-10 ({splits.source})"
    except DataError:
        splits = synthetic_cifar10(per_class or 5000)
        label = "synthetic (no CIFAR-10 found): images are stand-ins"
    images, labels = splits.train.images, splits.train.labels
    subsets = {}
    for size, n in ((64, args.images), (224, args.images_224)):
        subsets[size] = (images[:n].clone(), labels[:n].clone())
    return subsets, label


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults suit a 2-core CPU (``--gpu`` switches to full scale)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="CUDA, full splits, lecture batches")
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOL_ORDER))
    parser.add_argument("--images", type=int, default=None, help="train images at 64 px")
    parser.add_argument("--images-224", type=int, default=None, help="train images at 224 px")
    parser.add_argument("--batch-size", type=int, default=None, help="at 224 px")
    parser.add_argument("--batch-size-64", type=int, default=None, help="at 64 px")
    parser.add_argument("--tail-rows", type=int, default=None, help="rows the cached tail times")
    parser.add_argument("--workers", type=int, default=None, help="naive DataLoader workers")
    parser.add_argument("--min-seconds", type=float, default=None, help="fast tail timing")
    parser.add_argument("--compile", action="store_true", help="torch.compile on the fast path")
    parser.add_argument("--data", default=None, help="a CIFAR-10 source (default: search)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument(
        "--memory",
        type=int,
        nargs="+",
        default=None,
        metavar="BATCH",
        help="only measure the cache build's peak RSS at these batch sizes",
    )
    args = parser.parse_args(argv)
    # CPU: small subsets so that all five protocols finish in a few minutes on 2 cores.
    # GPU: the naive path on 20 lecture batches (it is the slow one), the fast path on all
    # 45,000 training images.
    defaults = {
        "images": (128, 45_000),
        "images_224": (16, 45_000),
        "batch_size": (8, 256),
        "batch_size_64": (32, 256),
        "tail_rows": (4096, 45_000),
        "workers": (0, 8),
        "min_seconds": (2.0, 5.0),
    }
    for name, (cpu, gpu) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, gpu if args.gpu else cpu)
    return args


def run_job(job: Job) -> dict[str, Any]:
    """Measure ``job`` in a fresh spawned process, so peak memory is this job's alone."""
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure, job).result()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure every protocol on both paths, print the table, write the JSON; return it."""
    from course.machine import cpu_cores, load_average_values
    from solutions.protocols import get_protocol

    args = parse_args(argv)
    if args.memory:
        from bench_fast_memory import memory_report

        report = memory_report(args.memory, args.data)
        out = args.out or Path(__file__).parent / "results" / (
            f"memory-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}.json"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        print(f"written: {out}")
        return report
    device = torch.device("cuda" if args.gpu else "cpu")
    if args.gpu and not torch.cuda.is_available():
        sys.exit("--gpu asked for, but PyTorch sees no CUDA GPU here.")
    started = time.perf_counter()
    info = machine(device)
    subsets, data_label = load_data(args)
    rows = []
    for name in args.protocols:
        protocol = get_protocol(name)
        images, labels = subsets[224 if protocol.size >= 128 else 64]
        row: dict[str, Any] = {"protocol": name, "size": protocol.size, "images": len(labels)}
        for path in ("naive", "fast"):
            batch = args.batch_size if protocol.size >= 128 else args.batch_size_64
            n_naive = min(len(labels), 20 * batch) if args.gpu else len(labels)
            job = Job(
                protocol=name,
                path=path,
                device=str(device),
                batch_size=batch,
                eval_batch_size=batch * (4 if args.gpu else 1),
                tail_batch_size=256,  # the lecture's
                tail_rows=args.tail_rows,
                num_workers=args.workers if path == "naive" else 0,
                min_seconds=args.min_seconds,
                train_images=images[:n_naive] if path == "naive" else images,
                train_labels=labels[:n_naive] if path == "naive" else labels,
                compile=args.compile and path == "fast",
            )
            rates = run_job(job)
            rates.update(project(rates))
            row[path] = rates
            print(f"  {name:<14} {path:<5} {rates['train_ips']:10.1f} img/s train", flush=True)
        row["speedup_epoch"] = row["naive"]["epoch_seconds"] / row["fast"]["epoch_seconds"]
        row["speedup_50_epochs"] = row["naive"]["total_seconds"] / row["fast"]["total_seconds"]
        rows.append(row)
    info["load_average_at_end"] = load_average_values()
    busiest = max(*(info["load_average_at_start"] or ()), *(info["load_average_at_end"] or ()), 0)
    if busiest > cpu_cores():
        info["note"] = (
            f"other processes were sharing the CPU (load average up to {busiest:.1f} on "
            f"{cpu_cores()} cores): rates are lower and noisier than on an idle machine"
        )
    report = {
        "benchmark": "benchmarks/bench_fast.py",
        "command": " ".join(["python", "benchmarks/bench_fast.py", *(argv or sys.argv[1:])]),
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "machine": info,
        "weights": "random (throughput does not depend on the weights' values)",
        "data": data_label,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "projection": (
            f"seconds for {EPOCHS} epochs at full scale ({FULL['train']:,} train, "
            f"{FULL['valid']:,} valid each epoch, {FULL['test']:,} test once; fast cached: "
            "plus one cache build over all three splits) = PROJECTED from the measured rates"
        ),
        "rows": rows,
        "seconds": time.perf_counter() - started,
    }
    print_table(report)
    out = args.out or Path(__file__).parent / "results" / (
        f"{'gpu' if args.gpu else 'cpu'}-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written: {out}")
    return report


if __name__ == "__main__":
    main()
