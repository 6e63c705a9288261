"""Complete ``results.json`` contents (schema of ``solutions.run_record.RunRecord``) for tests.

``record_dict(**changes)`` starts from a small, valid record of a random-weights linear probe
and applies ``changes``; a dict given for a block (``protocol``, ``data``, ``machine``,
``weights_info``) updates that block's fields. The protocol's ``description`` and ``input``
are regenerated from its fields unless ``changes`` gives them, as a run would write them.
"""

from __future__ import annotations

from typing import Any

from course.models import RANDOM_LABEL, WeightsInfo
from solutions.protocols import PROTOCOLS
from solutions.run_record import SCHEMA_VERSION, RunRecord, describe_run, input_description

BLOCKS = ("protocol", "data", "machine", "weights_info")


def record_dict(**changes: Any) -> dict[str, Any]:
    """A valid schema-version record as JSON fields, with ``changes`` applied."""
    probe = PROTOCOLS["linear-probe"]
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "label": "linear-probe, vgg16, 32 px, weights: random, data: CIFAR-10",
        "protocol": {
            "name": probe.name,
            "description": "",
            "network": "vgg16",
            "size": 32,
            "protocol_size": probe.size,
            "augment": False,
            "input": "",
            "normalization": "imagenet",
            "trainable": "head",
            "pretrained": True,
        },
        "network": "vgg16",
        "trained": "head only",
        "normalization": {"name": "imagenet", "mean": [0.485] * 3, "std": [0.229] * 3},
        "optimizer": {"name": "SGD", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0},
        "size": 32,
        "size_is_protocol_default": False,
        "trainable_parameters": 40_970,
        "weights": RANDOM_LABEL,
        "weights_info": WeightsInfo("random", RANDOM_LABEL).to_dict(),
        "data": {
            "source": "JPEG zip ../shared/data/cifar10-jpeg-train.zip",
            "synthetic": False,
            "fingerprint": "0123456789abcdef",
            "train": 40,
            "valid": 40,
            "test": 40,
            "subset_per_class": 4,
        },
        "epochs": 2,
        "valid_acc": [10.0, 12.5],
        "train_acc": [9.0, 11.0],
        "test_acc": 7.5,
        "lr": [0.01, 0.01],
        "epoch_seconds": [7.0, 7.0],
        "total_seconds": 14.3,
        "interrupted": False,
        "minibatch_loss": [2.3, 2.2],
        "batches_per_epoch": 1,
        "device": "cpu: x86_64, 2 cores",
        "machine": {"platform": "Linux-x86_64", "cpu_count": 2},
        "torch": "2.0",
        "torchvision": "0.15",
        "python": "3.11",
        "seed": 123,
        "batch_size": 40,
        "finished": "2026-01-01T00:00:00+00:00",
        "command": "python -m solutions run --protocol linear-probe",
        "lecture_reported": {"test_acc": probe.lecture.test_acc, "note": probe.lecture.note},
        "path": "plain: every epoch runs the full model on transformed images",
        "notes": {},
    }
    for key, value in changes.items():
        if key in BLOCKS and isinstance(value, dict):
            record[key] = {**record[key], **value}
        else:
            record[key] = value
    block = record["protocol"]
    given = changes.get("protocol", {}) if isinstance(changes.get("protocol"), dict) else {}
    if "size" in changes and "size" not in given:
        block["size"] = record["size"]
    if "description" not in given:
        block["description"] = describe_run(
            block["name"],
            block["network"],
            block["trainable"],
            block["size"],
            block["augment"],
            block["normalization"],
        )
    if "input" not in given:
        block["input"] = input_description(block["size"], block["augment"])
    RunRecord.from_dict(record)  # a test's record must be one the code can read
    return record
