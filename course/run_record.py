"""``RunRecord``: what one run of a protocol did, and the schema of its ``results.json``.

One class writes the file (:meth:`RunRecord.write`) and reads it back (:meth:`RunRecord.read`).
It lives in ``course`` so that lessons, which import only ``course``, can read the recorded
runs with it; ``solutions.run`` builds records, ``solutions.run_record`` migrates old files.

The ``protocol`` block describes the run *actually made* (:class:`ProtocolBlock`): the network,
the input size and the normalization that ran, not the protocol's defaults. Version history:

- 1: the unversioned files written before 2026-12-07. Their protocol block copied the
  protocol's defaults (e.g. "frozen fc7 features at 224 px" for a MobileNetV2 run at 96 px).
  ``solutions.run_record.migrate_v1`` rebuilds it from the fields those files recorded about
  the run itself.
- 2: ``schema_version``, the protocol block as run, ``weights_info`` (kind, label,
  preprocessing, notes), ``lecture_reported`` only for runs on the lecture's network, and
  ``notes`` for fields added by hand.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course.errors import CourseError

__all__ = ["LEGACY_VERSION", "SCHEMA_VERSION", "DataBlock", "ProtocolBlock", "RunRecord"]

SCHEMA_VERSION = 2
#: The version unversioned files are read as (``solutions.run_record.migrate_v1``).
LEGACY_VERSION = 1


@dataclass(frozen=True)
class ProtocolBlock:
    """The protocol as this run ran it (``results.json["protocol"]``)."""

    name: str
    description: str  # generated from the fields below (describe_run), not the protocol's text
    network: str  # "vgg16", "mobilenet_v2", "lecture's VGG16"
    size: int  # the input side that ran
    protocol_size: int  # the protocol's default size
    augment: bool
    input: str  # e.g. "Resize 96, no augmentation"
    normalization: str  # the name of the normalization that ran
    trainable: str  # "lecture-bug" | "head" | "fc" | "last-block" | "all"
    pretrained: bool  # the protocol starts from pretrained weights (False: random by design)


@dataclass(frozen=True)
class DataBlock:
    """The data the run used (``results.json["data"]``)."""

    source: str
    synthetic: bool
    fingerprint: str | None
    train: int
    valid: int
    test: int
    subset_per_class: int | None


@dataclass
class RunRecord:
    """Everything a run did; ``to_dict()`` is exactly its ``results.json``.

    ``output_dir`` (not stored in the file) is the folder the record and its plots live in.
    """

    label: str
    protocol: ProtocolBlock
    network: str
    trained: str
    normalization: dict[str, Any]  # name, mean, std
    optimizer: dict[str, Any]  # name, lr, momentum, weight_decay
    size: int
    size_is_protocol_default: bool
    trainable_parameters: int
    weights: str  # the weights' full label (weights_info's label and notes)
    weights_info: dict[str, Any] | None  # course.models.WeightsInfo.to_dict()
    data: DataBlock
    epochs: int
    valid_acc: list[float]
    train_acc: list[float]
    test_acc: float | None
    lr: list[float]
    epoch_seconds: list[float]
    total_seconds: float | None
    interrupted: bool
    minibatch_loss: list[float]
    batches_per_epoch: int
    device: str
    machine: dict[str, Any]
    torch: str
    torchvision: str
    python: str
    seed: int
    batch_size: int
    finished: str
    command: str
    lecture_reported: dict[str, Any] | None  # the lecture's figures, on its network only
    path: str  # plain or fast, and how
    notes: dict[str, Any] = field(default_factory=dict)  # added by hand, each explained
    schema_version: int = SCHEMA_VERSION
    output_dir: Path | None = field(default=None, compare=False)

    @property
    def random_weights(self) -> bool:
        """True when the run's weights were random (from ``weights_info``'s kind)."""
        return bool(self.weights_info) and self.weights_info["kind"] == "random"

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of ``results.json`` (``output_dir`` is not part of it)."""
        data = dataclasses.asdict(self)
        data.pop("output_dir")
        return data

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/results.json``; set ``output_dir``; return the file's path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "results.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        self.output_dir = folder
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "results.json") -> RunRecord:
        """Build a record from a ``results.json`` dict of this schema version.

        Raises:
            CourseError: another (or no) schema version, or fields this version lacks or
                does not know.
        """
        version = data.get("schema_version", LEGACY_VERSION)
        if version != SCHEMA_VERSION:
            raise CourseError(
                f"{where} has results schema version {version}; this code reads version "
                f"{SCHEMA_VERSION}",
                "migrate it with `python -m solutions migrate-results "
                f"{where}` (version 1 files), or rerun the run with this code",
            )
        names = {f.name for f in dataclasses.fields(cls) if f.name != "output_dir"}
        unknown, missing = (
            sorted(set(data) - names),
            sorted(
                f.name
                for f in dataclasses.fields(cls)
                if f.name not in data
                and f.name != "output_dir"
                and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING
            ),
        )
        if unknown or missing:
            raise CourseError(
                f"{where} does not match results schema {SCHEMA_VERSION}: "
                + "; ".join(
                    part
                    for part in (
                        f"unknown fields {', '.join(unknown)}" if unknown else "",
                        f"missing fields {', '.join(missing)}" if missing else "",
                    )
                    if part
                ),
                "put hand-added facts under `notes`, or rerun the run with this code",
            )
        fields = dict(data)
        fields["protocol"] = ProtocolBlock(**data["protocol"])
        fields["data"] = DataBlock(**data["data"])
        return cls(**fields)

    @classmethod
    def read(cls, path: str | Path) -> RunRecord:
        """Read ``path`` (a ``results.json``, or the folder holding one).

        Raises:
            CourseError: the file is missing, not JSON, or of another schema version.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise CourseError(
                f"cannot read run record {path}: {err}",
                "point to a results.json written by `python -m solutions run`",
            ) from err
        record = cls.from_dict(data, where=str(path))
        record.output_dir = path.parent
        return record
