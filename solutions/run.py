"""Run one of the lecture's protocols end to end and record what happened.

Three modules, one job each: ``solutions.run_setup`` resolves the run once (a ``RunPlan``
and its network), this module trains it and builds the :class:`RunRecord`, and
``solutions.run_report`` prints and plots. Each run writes a folder holding ``results.json``
(``RunRecord.write``: accuracies per epoch, test accuracy, time per epoch, device, versions,
the protocol as run, weights and data) and the plots, and prints a table beside the
lecture's reported figures, labelled as the lecture's.

The names other code imports from here (``RunOptions``, ``prepare_model``, ``print_table``,
...) stay importable from ``solutions.run``.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
import time
from dataclasses import asdict

import torch
import torchvision
from torch import nn

from course.data import CIFAR10Splits, make_loaders
from course.machine import device_label, load_average, machine_record
from course.models import trainable_parameters
from course.training import History, TrainConfig, train
from solutions.protocols import Protocol
from solutions.run_record import DataBlock, ProtocolBlock, RunRecord, lecture_network
from solutions.run_report import (
    RANDOM_WEIGHTS_NOTE,
    data_summary,
    identity_line,
    pct,
    plot_title,
    print_table,
    write_plots,
)
from solutions.run_setup import (
    ARCHES,
    BATCHNORM_IMAGES,
    LAST_BLOCK,
    NUM_CLASSES,
    RunOptions,
    RunPlan,
    plan_run,
    prepare_batchnorm,
    prepare_model,
    resolve_weights,
)
from solutions.transfer import build_transforms, make_optimizer

__all__ = [
    "ARCHES",
    "BATCHNORM_IMAGES",
    "LAST_BLOCK",
    "NUM_CLASSES",
    "RunOptions",
    "RunPlan",
    "RunRecord",
    "build_record",
    "data_summary",
    "describe_device",
    "load_average",
    "plan_run",
    "plot_title",
    "prepare_batchnorm",
    "prepare_model",
    "print_table",
    "resolve_weights",
    "run_protocol",
]

#: A device's human name (``course.machine.device_label``), under its old name here.
describe_device = device_label

PLAIN_PATH = "plain: every epoch runs the full model on transformed images"
FAST_CACHED_PATH = "fast: frozen features cached once, trainable tail trained from the cache"
FAST_IMAGES_PATH = "fast: images held on the device, resized/cropped/normalized there per batch"


def run_protocol(
    protocol: Protocol, options: RunOptions | None = None, splits: CIFAR10Splits | None = None
) -> RunRecord:
    """Train ``protocol`` as ``options`` say; write results and plots; return the record.

    The first and the last line printed name the data, the weights and the machine. The
    record's ``output_dir`` is the run's folder. ``splits``: data loaded already (the demo
    loads it once for two runs); ``None`` loads it as ``options`` say.
    """
    options = options or RunOptions()
    started = time.perf_counter()
    plan, model = plan_run(protocol, options, splits)
    data = data_summary(plan.splits)
    print(identity_line(plan.headline, data, plan.weights.full_label))
    plan.run_dir.mkdir(parents=True, exist_ok=True)

    config = TrainConfig(
        epochs=options.epochs,
        batch_size=options.batch_size,
        seed=options.seed,
        device=str(plan.device),
        progress=options.progress,
        checkpoint_dir=plan.run_dir / "checkpoints" if options.checkpoint else None,
    )
    if options.fast:
        from solutions.fast import train_protocol_fast

        history, _ = train_protocol_fast(
            protocol,
            plan.splits,
            model,
            config,
            size=plan.size,
            compile=options.compile,
            cut=options.cut,
            normalization=(plan.normalization.mean, plan.normalization.std),
            normalization_name=plan.normalization.name,
        )
        path_used = FAST_CACHED_PATH if protocol.cacheable else FAST_IMAGES_PATH
    else:
        history = train_plain(plan, model, config)
        path_used = PLAIN_PATH
    seconds = time.perf_counter() - started

    record = build_record(plan, model, history, config, seconds=seconds, path=path_used)
    record.write(plan.run_dir)
    write_plots(plan.run_dir, plan.splits, history, plot_title(record))
    if not options.quiet_table:
        print_table([record], protocol)
    if protocol.pretrained and plan.weights.random:
        print(RANDOM_WEIGHTS_NOTE)
    print(f"results: {plan.run_dir / 'results.json'} (+ plots *.png); {seconds:.0f} s")
    print(identity_line(f"done: test {pct(history.test_acc)}", data, plan.weights.full_label))
    return record


def train_plain(plan: RunPlan, model: nn.Module, config: TrainConfig) -> History:
    """The plain path: the full model on per-image transformed images, every epoch."""
    norm = plan.normalization
    train_tf, eval_tf = build_transforms(plan.size, (norm.mean, norm.std), augment=plan.augment)
    loaders = make_loaders(
        plan.splits,
        train_tf,
        eval_tf,
        batch_size=config.batch_size,
        num_workers=plan.options.num_workers,
        seed=config.seed,
    )
    # The config's optimizer settings, all of them: the plain and the fast path train alike.
    optimizer = make_optimizer(
        model, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    return train(model, optimizer, loaders, config)


def build_record(
    plan: RunPlan,
    model: nn.Module,
    history: History,
    config: TrainConfig,
    *,
    seconds: float,
    path: str,
) -> RunRecord:
    """The record of a finished run, from its plan, its trained model and its history."""
    protocol, options, splits = plan.protocol, plan.options, plan.splits
    weights = plan.weights
    label = (
        f"{protocol.name}, {plan.network}, {plan.size} px, weights: {weights.full_label}, "
        f"data: {'synthetic' if splits.synthetic else 'CIFAR-10'}"
    )
    norm = plan.normalization
    return RunRecord(
        label=label,
        protocol=ProtocolBlock(
            name=protocol.name,
            description=plan.description,
            network=plan.network,
            size=plan.size,
            protocol_size=protocol.size,
            augment=plan.augment,
            input=plan.input,
            normalization=norm.name,
            trainable=protocol.trainable,
            pretrained=protocol.pretrained,
        ),
        network=plan.network,
        trained=plan.trained,
        normalization={"name": norm.name, "mean": list(norm.mean), "std": list(norm.std)},
        optimizer={
            "name": "SGD",
            "lr": config.lr,
            "momentum": config.momentum,
            "weight_decay": config.weight_decay,
        },
        size=plan.size,
        size_is_protocol_default=plan.size == protocol.size,
        trainable_parameters=trainable_parameters(model),
        weights=weights.full_label,
        weights_info=weights.to_dict(),
        data=DataBlock(
            source=splits.source,
            synthetic=splits.synthetic,
            fingerprint=splits.fingerprint,
            train=len(splits.train.labels),
            valid=len(splits.valid.labels),
            test=len(splits.test.labels),
            subset_per_class=options.subset,
        ),
        epochs=history.epochs_done,
        valid_acc=history.valid_acc,
        train_acc=history.train_acc,
        test_acc=history.test_acc,
        lr=history.lr,
        epoch_seconds=history.epoch_seconds,
        total_seconds=seconds,
        interrupted=history.interrupted,
        minibatch_loss=history.minibatch_loss,
        batches_per_epoch=history.batches_per_epoch,
        device=device_label(plan.device),
        machine={**machine_record(), "load_average_at_end": load_average()},
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        python=platform.python_version(),
        seed=options.seed,
        batch_size=options.batch_size,
        finished=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        command=" ".join(sys.argv),
        lecture_reported=(
            json.loads(json.dumps(asdict(protocol.lecture)))  # tuples as JSON reads them back
            if protocol.lecture and lecture_network(plan.network)
            else None
        ),
        path=path,
        output_dir=plan.run_dir,
    )
