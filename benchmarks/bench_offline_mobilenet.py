"""The offline MobileNetV2: conversion, load from cache, and frozen-forward speed by input size.

Converts Google's uint8 TFLite MobileNetV2 into a fresh cache folder (timed), loads it again
from that cache (timed), then times a frozen forward (``eval()``, ``torch.no_grad()``,
channels_last, batch 50) at each input size. Speed does not depend on the images, so random
inputs are used. Prints a table; asserts nothing.

    python benchmarks/bench_offline_mobilenet.py                 # 96, 160 and 224 px
    python benchmarks/bench_offline_mobilenet.py --sizes 64 96 --threads 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from course.machine import machine_label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 160, 224])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--batches", type=int, default=3, help="timed batches per size")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as cache:
        os.environ["COURSE_CACHE_DIR"] = cache
        os.environ["TORCH_HOME"] = os.path.join(cache, "torch")  # never torchvision's file
        from course.models import load_model

        start = time.perf_counter()
        load_model("mobilenet_v2", "imagenet", offline=True)
        convert_s = time.perf_counter() - start
        start = time.perf_counter()
        model = load_model("mobilenet_v2", "imagenet", offline=True).eval()
        cached_s = time.perf_counter() - start

    print(
        f"machine: {machine_label()}, torch threads {args.threads}, "
        f"load average {os.getloadavg()[0]:.2f} (1 min)"
    )
    print(f"weights: {model.weights_label}")
    print(f"first load (parse + convert + cache): {convert_s:.2f} s; from cache: {cached_s:.2f} s")
    print(f"{'size':>6}  {'images/s':>9}  (frozen forward, batch {args.batch}, channels_last)")
    for size in args.sizes:
        x = torch.randn(args.batch, 3, size, size).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            model(x)  # warm-up
            start = time.perf_counter()
            for _ in range(args.batches):
                model(x)
            rate = args.batch * args.batches / (time.perf_counter() - start)
        print(f"{size:>4}px  {rate:>9.1f}")
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
