"""What the GPU check's device call carries (``--prepare-inputs``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from gpu_check_core import CARRY_LIMIT_MIB, CARRY_MARGIN_MIB, ROOT


def prepare_inputs(target: Path, source: Path, train_per_class: int) -> dict[str, Any]:
    """Write what the device call carries into ``target`` and return what was written.

    - ``cifar10/cifar10-jpeg-train.zip``: the first ``train_per_class`` images of each class
      (sorted by name) of the course's train zip, stored uncompressed like the original;
    - ``cifar10/cifar10-jpeg-test.zip``: the whole test zip (10,000 images);
    - ``mobilenet-v2-imagenet/``: the TFLite file, its labels, LICENSE and README;
    - ``site/``: the pure-Python ``tflite`` and ``flatbuffers`` packages (the device has no
      ``tflite``); the wrapper puts this folder on ``PYTHONPATH``.
    """
    from course.sources.reading import TEST_ZIP, TRAIN_ZIP

    train_zip, test_zip = source / TRAIN_ZIP, source / TEST_ZIP
    tflite_dir = source / "mobilenet-v2-imagenet"
    for needed in (train_zip, test_zip, tflite_dir):
        if not needed.exists():
            sys.exit(f"--prepare-inputs: {needed} is missing (pass --inputs-from DIR)")
    if target.exists():
        shutil.rmtree(target)
    data = target / "cifar10"
    data.mkdir(parents=True)
    per_class: dict[str, int] = {}
    with (
        zipfile.ZipFile(train_zip) as src,
        zipfile.ZipFile(data / TRAIN_ZIP, "w", zipfile.ZIP_STORED) as dst,
    ):
        for name in sorted(src.namelist()):
            parts = name.split("/")
            if len(parts) != 3 or not parts[2]:
                continue
            label = parts[1]
            if per_class.get(label, 0) >= train_per_class:
                continue
            per_class[label] = per_class.get(label, 0) + 1
            dst.writestr(name, src.read(name))
    shutil.copyfile(test_zip, data / TEST_ZIP)
    shutil.copytree(tflite_dir, target / "mobilenet-v2-imagenet")
    site = target / "site"
    site.mkdir()
    for package in ("tflite", "flatbuffers"):
        module = __import__(package)
        shutil.copytree(
            Path(module.__file__).parent,
            site / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    sizes = {
        str(p.relative_to(target)): p.stat().st_size
        for p in sorted(target.rglob("*"))
        if p.is_file()
    }
    inputs = sum(sizes.values())
    tree = repo_tree_bytes()
    summary = {
        "target": str(target),
        "train_images_per_class": per_class,
        "inputs_mib": inputs / 2**20,
        "repo_tree_mib": tree / 2**20,
        "total_mib": (inputs + tree) / 2**20,
        "limit_mib": CARRY_LIMIT_MIB,
        "largest": sorted(sizes.items(), key=lambda kv: -kv[1])[:4],
    }
    print(
        f"{target}: {summary['inputs_mib']:.1f} MiB of inputs ({sum(per_class.values()):,} train "
        f"images, {len(per_class)} classes; test zip {sizes[f'cifar10/{TEST_ZIP}'] / 2**20:.1f} "
        f"MiB; TFLite + readers), repository tree {summary['repo_tree_mib']:.1f} MiB: "
        f"{summary['total_mib']:.1f} MiB of the call's {CARRY_LIMIT_MIB} MiB"
    )
    if summary["total_mib"] > CARRY_LIMIT_MIB - CARRY_MARGIN_MIB:
        print(
            f"WARNING: less than {CARRY_MARGIN_MIB} MiB to spare: rerun with a smaller "
            "--train-per-class"
        )
    return summary


def repo_tree_bytes() -> int:
    """Bytes of what a device call sends without ``carry``: tracked and untracked, not ignored."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    total = 0
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            total += path.stat().st_size
    return total
