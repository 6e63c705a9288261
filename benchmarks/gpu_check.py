"""The prepared GPU check: everything a lent GPU should measure, in one call of ~8 minutes.

A session lent a GPU has about 15 minutes of device time: too little to write or debug a
script there. This one is written, and run on the CPU by the tests (``--dry-run``), before.
In one call it

1. records the device, torch, CUDA and cuDNN versions;
2. runs the CUDA tests (every test that is marked ``cuda`` or skips without CUDA);
3. measures the fast path (``solutions.fast``) for ``lecture-large`` (224 px, cached
   features), ``lecture-small`` (64 px, random crops) and ``scratch`` (64 px, every layer
   trains), in bf16, at full scale (45,000 / 5,000 / 10,000): per-epoch time after a warm-up
   epoch, images per second, cache build time, peak GPU memory; then the same with
   ``torch.compile``;
4. runs the naive path (the lecture's per-image transforms in a DataLoader) on a few batches
   of each, for the naive / fast epoch ratio on the same device in the same run;
5. runs ``lecture-large`` end to end for 50 epochs at full scale through ``run_protocol``;
6. trains the offline ImageNet MobileNetV2 for real (linear probe, then the last block), for a
   test accuracy measured on the GPU;
7. writes ``benchmarks/results/gpu-<device>-<date>.json`` after every stage and prints a
   table last.

The stages run in the order of :data:`STAGES`, the most wanted first (the compiled fast path
and the MobileNetV2 fine-tuning last), so a short budget loses the least.

Every figure is labelled: ``measured`` holds what this run timed or counted; ``projected``
holds what follows from those by arithmetic (50 epochs, full scale). A global time budget
(``--budget``, default 450 s) is checked before each stage and item: what would not fit is
skipped with its reason, and a stage still running when the budget ends is stopped, so the
JSON is always written.

    bash benchmarks/gpu_check.sh                        # on the device (see benchmarks/README.md)
    python benchmarks/gpu_check.py --prepare-inputs .gpu-inputs   # here, before the call
    python benchmarks/gpu_check.py --dry-run --data synthetic     # the same code on the CPU

The carried inputs (``--prepare-inputs``) are a CIFAR-10 subset (the full zips do not fit
the 64 MiB the device call carries), the TFLite file and the pure-Python ``tflite`` reader.
Where the carried training split is smaller than 45,000 images, the timing stages repeat its
images up to full scale (timing does not depend on pixel values; the JSON says so) and the
MobileNetV2 accuracy is measured on the distinct images only.

This file is the command line; the work is in its sibling modules, whose names it re-exports:
``gpu_check_core`` (scales, the budget, the report being written), ``gpu_check_stages`` (the
stage table and the runner of one stage), ``gpu_check_timing`` (fast and naive paths),
``gpu_check_cuda_tests`` (the CUDA tests and this script's pytest plugin, ``-p gpu_check``),
``gpu_check_report`` (the table and ``--summarize``) and ``gpu_check_inputs``
(``--prepare-inputs``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _folder in (HERE.parent, HERE):  # the device has no installed copy: import from the checkout
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import torch  # noqa: E402
from gpu_check_core import (  # noqa: E402
    CARRY_LIMIT_MIB,
    CARRY_MARGIN_MIB,
    DRY_SCALE,
    EPOCHS,
    FAST_PROTOCOLS,
    FULL,
    GPU_SCALE,
    INPUTS_DIR,
    RESERVE_SECONDS,
    ROOT,
    SCHEMA_VERSION,
    STAGES,
    TARGET_SECONDS,
    BudgetExhausted,
    Check,
    Scale,
    Skip,
    default_out_dir,
    tiny_model,
)
from gpu_check_cuda_tests import (  # noqa: E402
    CUDA_REASON,
    cuda_test_files,
    junit_counts,
    needs_cuda,
    pytest_collection_modifyitems,
    pytest_configure,
    stage_cuda_tests,
)
from gpu_check_inputs import prepare_inputs, repo_tree_bytes  # noqa: E402
from gpu_check_report import print_table, summary_markdown  # noqa: E402
from gpu_check_stages import (  # noqa: E402
    NEEDS_DATA,
    STAGE_FUNCTIONS,
    repeat_to,
    run_and_read,
    run_stage,
    stage_data,
    stage_environment,
    stage_full_run,
    stage_mobilenet,
    stage_mobilenet_last_block,
)
from gpu_check_timing import (  # noqa: E402
    _item,
    measure_fast,
    measure_naive,
    project_fast,
    stage_fast_path,
    stage_naive_path,
)

#: What ``gpu_check`` re-exports from its sibling modules (the tests and ``-p gpu_check`` use it).
__all__ = [
    "CARRY_LIMIT_MIB",
    "CARRY_MARGIN_MIB",
    "CUDA_REASON",
    "DRY_SCALE",
    "EPOCHS",
    "FAST_PROTOCOLS",
    "FULL",
    "GPU_SCALE",
    "INPUTS_DIR",
    "NEEDS_DATA",
    "RESERVE_SECONDS",
    "ROOT",
    "SCHEMA_VERSION",
    "STAGES",
    "STAGE_FUNCTIONS",
    "TARGET_SECONDS",
    "BudgetExhausted",
    "Check",
    "Scale",
    "Skip",
    "_item",
    "cuda_test_files",
    "default_out_dir",
    "junit_counts",
    "main",
    "measure_fast",
    "measure_naive",
    "needs_cuda",
    "parse_args",
    "prepare_inputs",
    "print_table",
    "project_fast",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "repeat_to",
    "repo_tree_bytes",
    "run_and_read",
    "run_stage",
    "stage_cuda_tests",
    "stage_data",
    "stage_environment",
    "stage_fast_path",
    "stage_full_run",
    "stage_mobilenet",
    "stage_mobilenet_last_block",
    "stage_naive_path",
    "summary_markdown",
    "tiny_model",
    "torch",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; ``--dry-run`` switches to the CPU at tiny sizes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the CPU at tiny sizes")
    parser.add_argument("--budget", type=float, default=None, help="seconds (GPU 450, dry 110)")
    parser.add_argument("--data", default=None, help="a CIFAR-10 source, or 'synthetic'")
    parser.add_argument("--pretrained", default=None, help="folder holding the TFLite file")
    parser.add_argument("--out", default=None, help="folder for the JSON")
    parser.add_argument("--copy-to", default=None, help="also write the JSON here (the $OUT)")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--prepare-inputs", type=Path, default=None, metavar="DIR")
    parser.add_argument("--inputs-from", type=Path, default=None, help="default ../shared/data")
    parser.add_argument("--train-per-class", type=int, default=3000)
    parser.add_argument(
        "--summarize", type=Path, default=None, metavar="JSON", help="print the README paragraph"
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.budget is None:
        args.budget = 110.0 if args.dry_run else 450.0
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the check (or prepare its inputs); return the exit status."""
    args = parse_args(argv)
    if args.summarize is not None:
        print(summary_markdown(args.summarize))
        return 0
    if args.prepare_inputs is not None:
        from course import paths

        source = args.inputs_from or paths.shared_data_dir()
        if source is None:
            sys.exit("--prepare-inputs: no ../shared/data here; pass --inputs-from DIR")
        prepare_inputs(args.prepare_inputs, Path(source), args.train_per_class)
        return 0
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: PyTorch sees no CUDA GPU here; use --dry-run on a CPU.", file=sys.stderr)
        return 2
    check = Check(args)
    try:
        for name in STAGES:
            if name in args.stages or name == "environment":
                run_stage(check, name)
            else:
                check.report["stages"][name] = {"status": "skipped", "reason": "not asked for"}
        path = check.write()
        print_table(check.report)
        print(f"written: {path}")
    finally:
        shutil.rmtree(check.work, ignore_errors=True)
    failed = [n for n, s in check.report["stages"].items() if s["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
