"""Building and migrating run records; the record itself is ``course.run_record.RunRecord``.

Re-exports the schema (``RunRecord``, ``ProtocolBlock``, ``DataBlock``, ``SCHEMA_VERSION``)
and adds what only the reference runs need: how a run is described (:func:`describe_run`,
:func:`input_description`, ``TRAINS``), whether the lecture's figures belong beside it
(:func:`lecture_network`), and the migration of version-1 files (:func:`migrate_v1`).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

from course.errors import CourseError
from course.run_record import (
    LEGACY_VERSION,
    SCHEMA_VERSION,
    DataBlock,
    ProtocolBlock,
    RunRecord,
)
from solutions.protocols import CROP_PAD

__all__ = [
    "LEGACY_VERSION",
    "SCHEMA_VERSION",
    "TRAINS",
    "DataBlock",
    "ProtocolBlock",
    "RunRecord",
    "describe_run",
    "input_description",
    "lecture_network",
    "migrate_file",
    "migrate_v1",
]

#: How each protocol's ``trainable`` setting reads in the table beside the lecture's.
TRAINS = {
    "lecture-bug": "head only*",
    "head": "head only",
    "fc": "fc6+fc7+head",
    "last-block": "last block+head",
    "all": "all layers",
}


def input_description(size: int, augment: bool) -> str:
    """How a run feeds CIFAR-10's 32-px images to the network."""
    if augment:
        return f"Resize {size + CROP_PAD}, RandomCrop {size} (test: CenterCrop {size})"
    return f"Resize {size}, no augmentation"


def describe_run(
    protocol: str, network: str, trainable: str, size: int, augment: bool, normalization: str
) -> str:
    """One sentence saying what a run trained, on which network, at which size and input."""
    what = {
        "lecture-bug": "the lecture's unfreezing code (a no-op): only the new head trains",
        "head": f"a linear probe: only a new head trains on frozen {network} features",
        "fc": f"fc6, fc7 and a new head of {network} train",
        "last-block": f"the last block of {network} and a new head train",
        "all": f"every layer of {network} trains from random initialization",
    }.get(trainable, f"{network} with trainable part {trainable!r} trains")
    return (
        f"{protocol}: {what} at {size} px ({input_description(size, augment)}), inputs "
        f"normalized with {normalization}."
    )


def lecture_network(network: str) -> bool:
    """True for the networks the lecture's figures were measured on (VGG16, its own VGG16)."""
    return network in ("vgg16", "lecture's VGG16")


def migrate_v1(data: dict[str, Any], *, note: str) -> RunRecord:
    """A version-1 (unversioned) ``results.json`` as a version-2 record, protocol block as run.

    What version-1 files recorded about the run itself (``size``, ``network``, the
    ``normalization`` block, the protocol's ``name``/``trainable``/``augment``/``pretrained``)
    rebuilds the protocol block. The weights' kind comes from the ``--weights`` option of the
    recorded ``command`` (``"unknown"`` is never guessed: without it, the migration stops).
    Top-level fields version 2 does not know move under ``notes``. ``note`` says who
    migrated the file and how; it is stored as ``notes["migration"]``.

    Raises:
        CourseError: the file is already version 2, or the weights' kind cannot be told.
    """
    if "schema_version" in data:
        raise CourseError(
            f"this results.json is already schema version {data['schema_version']}",
            "nothing to migrate",
        )
    old = data["protocol"]
    network = data["network"]
    size = int(data["size"])
    norm = data["normalization"]["name"]
    block = ProtocolBlock(
        name=old["name"],
        description=describe_run(
            old["name"], network, old["trainable"], size, bool(old["augment"]), norm
        ),
        network=network,
        size=size,
        protocol_size=int(old["size"]),
        augment=bool(old["augment"]),
        input=input_description(size, bool(old["augment"])),
        normalization=norm,
        trainable=old["trainable"],
        pretrained=bool(old["pretrained"]),
    )
    kind = _weights_kind_from_command(data.get("command", ""))
    if kind is None:
        raise CourseError(
            "the recorded command does not say which weights the run used (--weights)",
            "rerun the run with this code instead of migrating it",
        )
    label, *notes = str(data["weights"]).split("; ")
    weights_info = {
        "kind": kind,
        "label": label,
        "preprocessing": {"mean": norm_mean(data), "std": norm_std(data), "label": norm},
        "notes": notes,
    }
    names = {f.name for f in dataclasses.fields(RunRecord)}
    fields = {k: v for k, v in data.items() if k in names}
    extra = {k: v for k, v in data.items() if k not in names}
    fields.update(
        protocol=dataclasses.asdict(block),
        weights_info=weights_info,
        lecture_reported=data.get("lecture_reported") if lecture_network(network) else None,
        notes={**extra, "migration": note},
        schema_version=SCHEMA_VERSION,
    )
    return RunRecord.from_dict(fields)


def norm_mean(data: dict[str, Any]) -> list[float]:
    """The recorded normalization's mean."""
    return list(data["normalization"]["mean"])


def norm_std(data: dict[str, Any]) -> list[float]:
    """The recorded normalization's std."""
    return list(data["normalization"]["std"])


def _weights_kind_from_command(command: str) -> str | None:
    words = shlex.split(command)
    if "--weights" not in words or words.index("--weights") + 1 >= len(words):
        return None
    value = words[words.index("--weights") + 1]
    if value in ("random", "imagenet"):
        return value
    return None if value == "auto" else "file"


def migrate_file(path: str | Path, *, note: str) -> RunRecord:
    """Rewrite a version-1 ``results.json`` in place as version 2; return the record."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    record = migrate_v1(json.loads(path.read_text(encoding="utf-8")), note=note)
    record.write(path.parent)
    return record
