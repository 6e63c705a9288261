"""Several GPUs (or CPU processes) with torchrun and DistributedDataParallel.

On a machine with N GPUs::

    torchrun --standalone --nproc-per-node N -m solutions.fast.ddp --protocol corrected

Every rank holds the whole data set (the uint8 images, or the feature cache rank 0 builds
while the others wait), draws the same seeded permutation and crop offsets, and trains on its
contiguous share of each global batch of ``--batch-size`` images. DDP averages the ranks'
gradients, so when every global batch splits evenly (256 over 2, 4 or 8 ranks, and the last
batch of 45,000 images, 200, too) a step is the single-process step on the same global batch,
up to floating-point summation order. When a batch does not split evenly, that one step
weighs the ranks' mean losses equally instead of by their sizes (ranks differ by one image).
Dropout masks are drawn per rank, so with dropout two runs agree in distribution, not bit
for bit. Every rank evaluates the whole validation split, so the learning-rate schedule
stays in step everywhere. Rank 0 prints and writes the results; its History holds the
minibatch losses and running train accuracy of its own shares, and the validation and test
accuracies of the whole splits.

The backend is NCCL on CUDA and gloo on the CPU (the tests use gloo with 2 processes).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def init_from_env() -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).

    Returns ``(rank, world_size, device)``: this rank's own GPU under CUDA, else the CPU.
    """
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world)
    return rank, world, device


def free_port() -> int:
    """A TCP port nobody listens on now, for a local rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_local(job: Callable[[], Any], world_size: int, result_path: str | Path) -> Any:
    """Run ``job()`` in ``world_size`` local processes joined by gloo; return rank 0's result.

    A stand-in for ``torchrun --nproc-per-node`` on one machine without GPUs (tests, CPU
    demos). ``job`` must be picklable (a module-level function or a ``functools.partial`` of
    one) and return something JSON can store.
    """
    port = free_port()
    mp.spawn(_spawned, args=(world_size, port, job, str(result_path)), nprocs=world_size)
    return json.loads(Path(result_path).read_text())


def _spawned(rank: int, world_size: int, port: int, job: Callable[[], Any], result: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)  # the ranks share the machine's cores
    init_from_env()
    try:
        value = job()
        if rank == 0:
            Path(result).write_text(json.dumps(value))
    finally:
        dist.destroy_process_group()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of ``python -m solutions.fast.ddp`` (run it under torchrun).

    Defaults come from ``solutions.run_setup.RunOptions``, as ``python -m solutions run``'s.
    """
    from solutions.run_setup import ARCHES, RunOptions

    defaults = RunOptions()
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc-per-node N -m solutions.fast.ddp",
        description="Train one of the lecture's protocols on several GPUs (fast path, DDP).",
    )
    parser.add_argument("--protocol", default="corrected")
    parser.add_argument("--arch", default=defaults.arch, choices=ARCHES)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--subset", type=int, default=defaults.subset, help="per class and split")
    parser.add_argument("--size", type=int, default=defaults.size)
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="global, over all ranks"
    )
    parser.add_argument(
        "--weights", default=defaults.weights, help="imagenet | random | auto | a file"
    )
    parser.add_argument("--data", default=defaults.data, help="a CIFAR-10 source or 'synthetic'")
    parser.add_argument("--no-cache", action="store_true", help="never cache features")
    parser.add_argument("--compile", action="store_true", help="torch.compile the trained net")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, default=Path("runs/ddp-history.json"))
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="folder for the run's folder (results.json and plots); default: --out's folder",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point for torchrun: the run ``python -m solutions run --fast`` makes, on N ranks.

    Built on the same :class:`solutions.run_setup.RunPlan` as ``run_protocol``: the same
    network (``--arch``), BatchNorm preparation and normalization. Rank 0 saves the history
    (``--out``) and writes ``results.json`` with the plots (``RunRecord``, under
    ``--results``).
    """
    import time

    from course.errors import CourseError
    from course.training import TrainConfig
    from solutions.fast.pipeline import train_protocol_fast
    from solutions.protocols import get_protocol
    from solutions.run import build_record
    from solutions.run_report import plot_title, write_plots
    from solutions.run_setup import RunOptions, plan_run

    args = parse_args(argv)
    rank, world, device = init_from_env()
    started = time.perf_counter()
    try:
        protocol = get_protocol(args.protocol)
        options = RunOptions(
            epochs=args.epochs,
            arch=args.arch,
            subset=args.subset,
            size=args.size,
            weights=args.weights,
            data=args.data,
            batch_size=args.batch_size,
            seed=args.seed,
            out=args.results or args.out.parent,
            fast=True,
            compile=args.compile,
            progress=False,
        )
        # Every rank builds the same seeded network and data (plan_run seeds the init).
        plan, model = plan_run(protocol, options, device=device)
    except (CourseError, ValueError) as err:
        # Every rank hits the same problem: say it once, without N tracebacks.
        if rank == 0:
            print(err, file=sys.stderr)
        dist.destroy_process_group()
        sys.exit(1)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        device=str(device),
        progress=False,
        verbose=rank == 0,
    )
    try:
        history, _ = train_protocol_fast(
            protocol,
            plan.splits,
            model,
            config,
            size=plan.size,
            cache=not args.no_cache,
            compile=args.compile,
            normalization=(plan.normalization.mean, plan.normalization.std),
            normalization_name=plan.normalization.name,
        )
        if rank == 0:
            history.save(args.out)
            cached = not args.no_cache and protocol.cacheable
            record = build_record(
                plan,
                model,
                history,
                config,
                seconds=time.perf_counter() - started,
                path=f"fast, DDP over {world} ranks: "
                + ("frozen features cached once" if cached else "images held on the device"),
            )
            record.write(plan.run_dir)
            write_plots(plan.run_dir, plan.splits, history, plot_title(record))
            print(f"{world} ranks, weights: {plan.weights.full_label}, data: {plan.splits.source}")
            print(f"history: {args.out}; results: {plan.run_dir / 'results.json'}")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
