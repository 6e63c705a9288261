"""``python -m solutions``: reproduce the lecture's runs (see ``--help``).

Every default comes from the dataclass it fills (``DemoSettings``, ``RunOptions``), so the
command line and the Python API cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course.errors import CourseError
from solutions.demo import DemoSettings
from solutions.protocols import PROTOCOLS, get_protocol
from solutions.run import ARCHES, RunOptions, run_protocol

_DEMO = DemoSettings()
_RUN = RunOptions()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m solutions",
        description="Reference runs of the transfer-learning lecture (VGG16 on CIFAR-10).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="offline demo of transfer: a linear probe on pretrained vs random features of "
        "the best network found, on a real CIFAR-10 subset (minutes on a CPU)",
    )
    demo.add_argument(
        "--epochs", type=int, default=_DEMO.epochs, help="epochs of the head (cached)"
    )
    demo.add_argument(
        "--subset", type=int, default=_DEMO.subset, help="images per class in each split"
    )
    demo.add_argument("--batch-size", type=int, default=_DEMO.batch_size)
    demo.add_argument("--out", type=Path, default=_DEMO.out)
    demo.add_argument("--data", help="a CIFAR-10 folder, zip or torchvision root")
    demo.add_argument("--no-contrast", action="store_true", help="skip the random-weights run")

    run = sub.add_parser("run", help="run one protocol")
    run.add_argument("--protocol", required=True, choices=sorted(PROTOCOLS))
    run.add_argument(
        "--arch",
        default=_RUN.arch,
        choices=ARCHES,
        help="network of the pretrained protocols (mobilenet_v2: the offline ImageNet one)",
    )
    run.add_argument(
        "--epochs", type=int, default=_RUN.epochs, help=f"default: the lecture's {_RUN.epochs}"
    )
    run.add_argument("--subset", type=int, help="images per class in each split (quick runs)")
    run.add_argument("--size", type=int, help="override the protocol's input size")
    run.add_argument("--device", default=_RUN.device, help="auto (cuda, mps, cpu), cuda, cpu, ...")
    run.add_argument("--weights", help="imagenet, random, auto (imagenet if cached) or a .pth file")
    run.add_argument("--data", help='a CIFAR-10 folder, zip, torchvision root, or "synthetic"')
    run.add_argument(
        "--batch-size",
        type=int,
        default=_RUN.batch_size,
        help="training, evaluation and feature-cache batch size (memory grows with it)",
    )
    run.add_argument(
        "--workers", type=int, default=_RUN.num_workers, help="DataLoader worker processes"
    )
    run.add_argument("--seed", type=int, default=_RUN.seed)
    run.add_argument("--out", type=Path, default=_RUN.out)
    run.add_argument(
        "--fast", action="store_true", help="cached features when exact, device-held data always"
    )
    run.add_argument("--compile", action="store_true", help="torch.compile (with --fast)")
    run.add_argument("--cut", help="with --fast: cache the input of this module, e.g. features[17]")
    run.add_argument("--checkpoint", action="store_true", help="save a checkpoint every epoch")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    sub.add_parser("protocols", help="list the protocols")
    migrate = sub.add_parser(
        "migrate-results",
        help="rewrite version-1 (unversioned) results.json files in the current schema",
    )
    migrate.add_argument("paths", nargs="+", type=Path, help="results.json files or run folders")
    migrate.add_argument("--note", required=True, help="who migrated the files, when and how")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "protocols":
        for protocol in PROTOCOLS.values():
            print(f"{protocol.name:<14} {protocol.description}")
        return 0
    try:
        if args.command == "migrate-results":
            from solutions.run_record import migrate_file

            for path in args.paths:
                record = migrate_file(path, note=args.note)
                print(f"migrated {path}: {record.protocol.description}")
        elif args.command == "demo":
            from solutions.demo import run_demo

            run_demo(
                DemoSettings(
                    subset=args.subset,
                    epochs=args.epochs,
                    batch_size=args.batch_size,
                    out=args.out,
                    data=args.data,
                    contrast=not args.no_contrast,
                )
            )
        else:
            options = RunOptions(
                epochs=args.epochs,
                arch=args.arch,
                subset=args.subset,
                size=args.size,
                device=args.device,
                weights=args.weights,
                data=args.data,
                batch_size=args.batch_size,
                num_workers=args.workers,
                seed=args.seed,
                out=args.out,
                fast=args.fast,
                compile=args.compile,
                checkpoint=args.checkpoint,
                progress=not args.no_progress,
                cut=args.cut,
            )
            run_protocol(get_protocol(args.protocol), options)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
