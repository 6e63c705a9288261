"""The GPU check's timing stages: the fast path, its projection, the naive path."""

from __future__ import annotations

import gc
import json
import shutil
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
from gpu_check_core import (
    EPOCHS,
    FAST_PROTOCOLS,
    FULL,
    TARGET_SECONDS,
    BudgetExhausted,
    Check,
    Skip,
    _compile_backend,
    _env,
    _peak,
    _peak_reset,
    _sync,
)


def _train_config(check: Check, epochs: int) -> Any:
    from course.training import TrainConfig

    return TrainConfig(
        epochs=epochs,
        batch_size=check.scale.batch_size,
        seed=123,
        device=str(check.device),
        progress=False,
        verbose=False,
    )


def measure_fast(check: Check, name: str, compile: bool) -> dict[str, Any]:
    """Train ``name`` the fast way for a few epochs at the timing scale; time every part."""
    from solutions.fast import train_protocol_fast
    from solutions.protocols import get_protocol

    protocol = get_protocol(name)
    check.fits(f"fast:{name}", check.scale.estimates["compile_extra"] if compile else 0.0)
    splits = check.full_splits
    model = check.model_for(name)
    cache_root = check.work / f"cache-{name}-{'compiled' if compile else 'eager'}"
    epochs = check.scale.fast_epochs
    _peak_reset(check.device)
    with _env(COURSE_CACHE_DIR=str(cache_root)), _compile_backend(check.scale.compile_backend):
        _sync(check.device)
        start = time.perf_counter()
        history, _ = train_protocol_fast(
            protocol,
            splits,
            model,
            _train_config(check, epochs),
            size=check.size_for(protocol),
            eval_batch_size=check.scale.eval_batch_size,
            compile=compile,
        )
        _sync(check.device)
        total = time.perf_counter() - start
    peak = _peak(check.device)
    headers = [json.loads(p.read_text()) for p in cache_root.glob("features/*/header.json")]
    build = sum(h["seconds"] for h in headers) if headers else None
    shutil.rmtree(cache_root, ignore_errors=True)
    del model
    epoch_seconds = list(history.epoch_seconds)
    warm, steady = epoch_seconds[0], epoch_seconds[1:] or epoch_seconds
    steady_mean = sum(steady) / len(steady)
    n = {s: len(getattr(splits, s).labels) for s in ("train", "valid", "test")}
    measured = {
        "epochs": len(epoch_seconds),
        "epoch_seconds": epoch_seconds,
        "first_epoch_seconds": warm,
        "epoch_seconds_after_warmup": steady_mean,
        "images_per_second": (n["train"] + n["valid"]) / steady_mean,
        "cache_build_seconds": build,
        "one_time_seconds": total - sum(epoch_seconds),
        "total_seconds": total,
        "test_acc": history.test_acc,
        **peak,
    }
    return {
        "protocol": name,
        "compile": compile,
        "size": check.size_for(protocol),
        "cached": protocol.cacheable,
        "images": n,
        "measured": measured,
        "projected": project_fast(measured, n, protocol.cacheable),
        "lecture_minutes": protocol.lecture.minutes_50_epochs if protocol.lecture else None,
        "target_seconds": TARGET_SECONDS.get(name),
    }


def project_fast(measured: dict[str, Any], n: dict[str, int], cached: bool) -> dict[str, float]:
    """50 epochs at full scale, from one run's measured parts (each scaled by its own images).

    = cache build x (60,000 / images cached) + the warm-up epoch's extra time (compilation,
    cuDNN's search: not scaled) + 50 x the steady epoch x (50,000 / images per epoch) + the
    rest of the one-time work (model to device, test pass) x (10,000 / test images).
    """
    per_epoch = n["train"] + n["valid"]
    epoch = measured["epoch_seconds_after_warmup"] * (FULL["train"] + FULL["valid"]) / per_epoch
    build = measured["cache_build_seconds"] or 0.0
    build_full = build * sum(FULL.values()) / sum(n.values()) if cached else 0.0
    other = max(0.0, measured["one_time_seconds"] - build) * FULL["test"] / max(1, n["test"])
    warm_extra = max(0.0, measured["first_epoch_seconds"] - measured["epoch_seconds_after_warmup"])
    return {
        "epoch_seconds": epoch,
        "cache_build_seconds": build_full,
        "total_50_epochs_seconds": build_full + warm_extra + EPOCHS * epoch + other,
    }


def stage_fast_path(check: Check, compile: bool = False) -> dict[str, Any]:
    """``measure_fast`` for each protocol; an item that does not fit is skipped alone."""
    items = check.items
    for name in FAST_PROTOCOLS:
        items.append(_item(name, lambda name=name: measure_fast(check, name, compile)))
    return {"items": items}


def _item(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one item; a skip or an error is recorded in the item, not raised."""
    try:
        result = fn()
        result.setdefault("status", "ok")
        return result
    except Skip as why:
        print(f"  {name}: skipped ({why})", flush=True)
        return {"protocol": name, "status": "skipped", "reason": str(why)}
    except BudgetExhausted:
        raise
    except Exception as err:  # a broken item must not lose the others' figures
        traceback.print_exc()
        return {"protocol": name, "status": "failed", "error": f"{type(err).__name__}: {err}"}
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the next item's peak memory is its own


def measure_naive(check: Check, name: str) -> dict[str, Any]:
    """The lecture's way on a few batches: per-image transforms in a DataLoader, full model."""
    from torch.utils.data import DataLoader

    from course.data import TransformedImages
    from course.training import autocast_for
    from solutions.protocols import get_protocol, normalization_for
    from solutions.transfer import build_transforms, make_optimizer

    check.fits("naive")
    protocol = get_protocol(name)
    device = check.device
    size = check.size_for(protocol)
    model = check.model_for(name).to(device)
    _, mean, std = normalization_for(protocol, model)
    train_tf, eval_tf = build_transforms(size, (mean, std), augment=protocol.augment)
    scale = check.scale
    common = dict(num_workers=scale.naive_workers, pin_memory=device.type == "cuda")
    splits = check.full_splits
    train = DataLoader(
        TransformedImages(splits.train, train_tf),
        batch_size=scale.batch_size,
        shuffle=True,
        **common,
    )
    valid = DataLoader(
        TransformedImages(splits.valid, eval_tf), batch_size=scale.eval_batch_size, **common
    )
    optimizer = make_optimizer(model, lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    _peak_reset(device)

    def steps(loader: Any, count: int, training: bool) -> tuple[int, float]:
        """Time ``count`` batches after one warm-up batch; return (images, seconds)."""
        model.train(training)
        seen, start = 0, 0.0
        for index, (inputs, labels) in enumerate(loader):
            if index == 1:
                _sync(device)
                start = time.perf_counter()
            inputs = inputs.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with torch.set_grad_enabled(training), autocast_for(device, True):
                out = model(inputs)
                if training:
                    loss = loss_fn(out.float(), labels)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if index >= 1:
                seen += len(labels)
            if index == count:
                break
        _sync(device)
        return seen, time.perf_counter() - start

    train_images, train_seconds = steps(train, scale.naive_batches, True)
    valid_images, valid_seconds = steps(valid, max(1, scale.naive_batches // 4), False)
    if train_images == 0 or valid_images == 0:
        raise Skip("too few images for a warm-up batch and a timed one")
    measured = {
        "train_images": train_images,
        "train_images_per_second": train_images / train_seconds,
        "valid_images": valid_images,
        "valid_images_per_second": valid_images / valid_seconds,
        "batch_size": scale.batch_size,
        "workers": scale.naive_workers,
        **_peak(device),
    }
    epoch = (
        FULL["train"] / measured["train_images_per_second"]
        + FULL["valid"] / (measured["valid_images_per_second"])
    )
    return {
        "protocol": name,
        "size": size,
        "measured": measured,
        "projected": {"epoch_seconds": epoch, "total_50_epochs_seconds": EPOCHS * epoch},
    }


def stage_naive_path(check: Check) -> dict[str, Any]:
    """``measure_naive`` for each protocol, with the naive / fast epoch ratio beside it."""
    fast = {
        item["protocol"]: item
        for item in check.report["stages"]["fast_path"].get("items", [])
        if item.get("status") == "ok"
    }
    items = check.items
    for name in FAST_PROTOCOLS:
        item = _item(name, lambda name=name: measure_naive(check, name))
        if item.get("status") == "ok" and name in fast:
            item["projected"]["epoch_ratio_naive_over_fast"] = (
                item["projected"]["epoch_seconds"] / fast[name]["projected"]["epoch_seconds"]
            )
        items.append(item)
    return {"items": items}
