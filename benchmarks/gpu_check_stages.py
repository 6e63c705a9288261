"""The GPU check's other stages, the stage table, and the runner of one stage."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from gpu_check_core import (
    EPOCHS,
    FULL,
    STAGES,
    TARGET_SECONDS,
    BudgetExhausted,
    Check,
    Skip,
    _env,
    _num,
    _peak,
    _peak_reset,
)
from gpu_check_cuda_tests import stage_cuda_tests
from gpu_check_timing import stage_fast_path, stage_naive_path

# --- the one call into solutions.run (contract C5) -----------------------------------------


def run_and_read(protocol: Any, options: Any, splits: Any) -> dict[str, Any]:
    """Run ``protocol`` through ``solutions.run.run_protocol``; return its ``results.json``.

    The only place this script calls ``run_protocol``: it returns the run folder today and a
    ``RunRecord`` (with ``output_dir``) after issue 20, and both are handled here.
    """
    from solutions.run import run_protocol

    returned = run_protocol(protocol, options, splits)
    folder = Path(getattr(returned, "output_dir", returned))
    return json.loads((folder / "results.json").read_text())


# --- stages ------------------------------------------------------------------------------------


def stage_environment(check: Check) -> dict[str, Any]:
    """The device and the versions every figure depends on."""
    import torchvision

    from course.quick import machine_label

    info: dict[str, Any] = {
        "machine": machine_label(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "load_average": list(os.getloadavg()),
    }
    if check.device.type == "cuda":
        props = torch.cuda.get_device_properties(check.device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            compute_capability=f"{props.major}.{props.minor}",
        )
        check.report["gpu"] = props.name
        check.report["device"] = f"cuda: {props.name}"
    return {"measured": {}, "info": info}


def stage_data(check: Check) -> dict[str, Any]:
    """Load CIFAR-10 (real when found, else synthetic, labelled) and scale it for timing."""
    from course.data import load_cifar10, synthetic_cifar10
    from course.errors import DataError

    check.fits("data")
    scale = check.scale
    start = time.perf_counter()
    source = check.args.data
    try:
        splits = load_cifar10(source, subset=scale.per_class)
        note = "real CIFAR-10 (the course's JPEG copy or a subset of it)"
    except DataError as err:
        if source is not None:  # a source named and wrong: say so, never time stand-ins
            raise
        splits = synthetic_cifar10(scale.per_class or 5000)
        note = f"synthetic stand-in images, NOT CIFAR-10 ({err.problem.splitlines()[0]})"
    if splits.synthetic and "synthetic" not in note:
        note = "synthetic stand-in images, NOT CIFAR-10 (asked for with --data synthetic)"
    seconds = time.perf_counter() - start
    check.real_splits = splits
    check.full_splits = repeat_to(splits, {"train": scale.train, "valid": scale.valid})
    sizes = {n: len(getattr(splits, n).labels) for n in ("train", "valid", "test")}
    timed = {n: len(getattr(check.full_splits, n).labels) for n in ("train", "valid", "test")}
    repeated = {n: timed[n] != sizes[n] for n in timed}
    return {
        "measured": {"load_seconds": seconds},
        "info": {
            "data": note,
            "source": splits.source,
            "synthetic": splits.synthetic,
            "distinct_images": sizes,
            "timed_images": timed,
            "repeated_to_scale": repeated,
            "note": "timing stages use timed_images (distinct images repeated where "
            "repeated_to_scale says so: timing does not depend on pixel values); accuracies "
            "come from the distinct images only, except full_run, which runs at timed_images",
        },
    }


def repeat_to(splits: Any, sizes: dict[str, int]) -> Any:
    """``splits`` with the named splits repeated (or cut) to exactly ``sizes`` images."""
    from course.data import ImageSplit

    changed = {}
    for name, n in sizes.items():
        split = getattr(splits, name)
        have = len(split.labels)
        if have == n or have == 0:
            continue
        index = torch.arange(n) % have
        changed[name] = ImageSplit(split.images[index], split.labels[index], name)
    if not changed:
        return splits
    fingerprint = f"{splits.fingerprint}-x" + "-".join(f"{k}{v}" for k, v in sorted(sizes.items()))
    return dataclasses.replace(splits, **changed, fingerprint=fingerprint)


def stage_full_run(check: Check) -> dict[str, Any]:
    """``lecture-large`` end to end through ``run_protocol``: 50 epochs at the timing scale."""
    from solutions.protocols import get_protocol
    from solutions.run import RunOptions

    check.fits("full_run")
    protocol = get_protocol("lecture-large")
    options = RunOptions(
        epochs=check.scale.full_run_epochs,
        weights="auto",  # ImageNet VGG16 if torchvision's cache has it, else random (labelled)
        size=check.scale.size,
        device=str(check.device),
        batch_size=check.scale.batch_size,
        out=check.work / "runs",
        fast=True,
        progress=False,
    )
    _peak_reset(check.device)
    with _env(COURSE_CACHE_DIR=str(check.work / "cache-full-run")), check.stand_in_models():
        start = time.perf_counter()
        results = run_and_read(protocol, options, check.full_splits)
        wall = time.perf_counter() - start
    weights = str(results.get("weights", "unknown"))
    epoch_seconds = results.get("epoch_seconds") or []
    data = results.get("data") or {}
    measured = {
        "epochs": len(epoch_seconds),
        "wall_seconds": wall,
        "run_seconds": _num(results.get("total_seconds")),
        "epoch_seconds_mean": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else None,
        "test_acc": _num(results.get("test_acc")),
        "final_valid_acc": _num((results.get("valid_acc") or [None])[-1]),
        **_peak(check.device),
    }
    scale = sum(FULL.values()) / max(
        1, sum(int(data.get(s, 0)) for s in ("train", "valid", "test"))
    )
    epochs_factor = EPOCHS / max(1, len(epoch_seconds))
    return {
        "protocol": protocol.name,
        "measured": measured,
        "projected": {
            # Only in the dry run does this differ from the measured time (tiny data, 2 epochs).
            "total_50_epochs_seconds": (measured["run_seconds"] or wall) * scale * epochs_factor
        },
        "info": {
            "weights": weights,
            "accuracy_means": "transfer from ImageNet"
            if weights.startswith("imagenet")
            else "nothing about transfer: the frozen network has random weights (no ImageNet "
            "VGG16 here); the run times the whole pipeline end to end",
            "data": data,
            "path": results.get("path"),
            "device": results.get("device"),
        },
        "target_seconds": TARGET_SECONDS["lecture-large"],
        "lecture_minutes": protocol.lecture.minutes_50_epochs if protocol.lecture else None,
    }


def _mobilenet(check: Check, protocol_name: str, epochs: int, key: str) -> dict[str, Any]:
    """Train the offline ImageNet MobileNetV2 on the distinct real images; measure accuracy."""
    from course.models.offline_mobilenet import offline_weights_file
    from solutions.protocols import get_protocol
    from solutions.run import RunOptions

    check.fits(key)
    pretrained = check.args.pretrained
    with _env(COURSE_PRETRAINED_DIR=str(Path(pretrained).resolve()) if pretrained else None):
        if offline_weights_file() is None:
            raise Skip("no TFLite MobileNetV2 here (pass --pretrained DIR)")
        if check.real_splits.synthetic and not check.dry_run:
            raise Skip("no real CIFAR-10: an accuracy on synthetic images means nothing")
        options = RunOptions(
            epochs=epochs,
            arch="mobilenet_v2",
            weights="imagenet",
            size=check.scale.size,
            device=str(check.device),
            batch_size=check.scale.batch_size,
            out=check.work / "runs",
            fast=True,
            progress=False,
        )
        _peak_reset(check.device)
        start = time.perf_counter()
        results = run_and_read(get_protocol(protocol_name), options, check.real_splits)
        wall = time.perf_counter() - start
    epoch_seconds = results.get("epoch_seconds") or []
    return {
        "protocol": protocol_name,
        "measured": {
            "epochs": len(epoch_seconds),
            "wall_seconds": wall,
            "run_seconds": _num(results.get("total_seconds")),
            "test_acc": _num(results.get("test_acc")),
            "final_valid_acc": _num((results.get("valid_acc") or [None])[-1]),
            **_peak(check.device),
        },
        "info": {
            "weights": results.get("weights"),
            "data": results.get("data"),
            "trainable_parameters": results.get("trainable_parameters"),
            "accuracy_means": "CPU dry run at tiny sizes: no meaning"
            if check.dry_run
            else "a real ImageNet network on real CIFAR-10 (the course's JPEG copy, "
            "carried subset): measured",
        },
    }


def stage_mobilenet(check: Check) -> dict[str, Any]:
    """The offline MobileNetV2, linear probe (head only, cached features)."""
    return _mobilenet(check, "linear-probe", check.scale.probe_epochs, "mobilenet")


def stage_mobilenet_last_block(check: Check) -> dict[str, Any]:
    """The offline MobileNetV2, its last block and the head fine-tuned."""
    return _mobilenet(check, "last-block", check.scale.last_block_epochs, "mobilenet_last_block")


STAGE_FUNCTIONS: dict[str, Callable[[Check], dict[str, Any]]] = {
    "environment": stage_environment,
    "data": stage_data,
    "cuda_tests": stage_cuda_tests,
    "fast_path": stage_fast_path,
    "naive_path": stage_naive_path,
    "full_run": stage_full_run,
    "mobilenet": stage_mobilenet,
    "fast_path_compile": functools.partial(stage_fast_path, compile=True),
    "mobilenet_last_block": stage_mobilenet_last_block,
}
#: Stages that need the data stage's splits.
NEEDS_DATA = set(STAGES) - {"environment", "data", "cuda_tests"}


def _alarm(_signum: int, _frame: Any) -> None:
    raise BudgetExhausted("the time budget ran out")


def run_stage(check: Check, name: str) -> None:
    """Run one stage under the global deadline; record ok / skipped / failed and write."""
    record: dict[str, Any]
    start = time.perf_counter()
    print(f"\n== {name} ({check.remaining():.0f} s of budget left)", flush=True)
    if name in NEEDS_DATA and check.full_splits is None:
        record = {"status": "skipped", "reason": "no data: the data stage did not run"}
    elif check.remaining() <= 0 and name != "environment":  # the versions are always recorded
        record = {"status": "skipped", "reason": "the time budget is spent"}
    else:
        use_alarm = hasattr(signal, "SIGALRM") and name != "environment"
        if use_alarm:
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, max(0.5, check.remaining()))
        check.items = []
        try:
            record = STAGE_FUNCTIONS[name](check)
            record.setdefault("status", "ok")
            items = record.get("items")
            if items and all(item.get("status") == "skipped" for item in items):
                record["status"] = "skipped"
                record["reason"] = items[0].get("reason", "every item was skipped")
            failed = [i for i in items or [] if i.get("status") == "failed"]
            if failed:
                record["status"] = "failed"
                record["error"] = "; ".join(f"{i['protocol']}: {i['error']}" for i in failed)
        except Skip as why:
            record = {"status": "skipped", "reason": str(why)}
        except BudgetExhausted as err:
            record = {"status": "stopped", "reason": f"{err} while this stage ran"}
            if check.items:  # what finished before the stop is kept
                record["items"] = list(check.items)
        except Exception as err:
            traceback.print_exc()
            record = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
    record["seconds"] = round(time.perf_counter() - start, 2)
    check.report["stages"][name] = record
    print(f"-- {name}: {record['status']} {record.get('reason', record.get('error', ''))}")
    check.write()
