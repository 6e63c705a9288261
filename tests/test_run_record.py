"""``RunRecord``: the versioned results.json, written and read by one class, protocol as run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from run_records import record_dict

from course.errors import CourseError
from solutions.protocols import get_protocol
from solutions.run import RunOptions, run_protocol
from solutions.run_record import SCHEMA_VERSION, RunRecord, migrate_v1

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh feature cache for each test (the environment set here, not at import)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(folder))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    return folder


def test_a_record_reads_back_equal_to_what_was_written(tmp_path: Path) -> None:
    record = RunRecord.from_dict(record_dict())
    path = record.write(tmp_path / "run")
    assert path == tmp_path / "run" / "results.json" and record.output_dir == tmp_path / "run"
    again = RunRecord.read(tmp_path / "run")
    assert again == record and again.to_dict() == json.loads(path.read_text())
    assert again.output_dir == tmp_path / "run"


@pytest.mark.parametrize("version", [None, 1, 3])
def test_read_refuses_other_schema_versions_and_names_the_fix(tmp_path: Path, version) -> None:
    data = record_dict()
    if version is None:
        del data["schema_version"]
    else:
        data["schema_version"] = version
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(CourseError, match=f"version {version or 1}") as err:
        RunRecord.read(tmp_path / "results.json")
    assert "migrate-results" in err.value.remedy


def test_read_refuses_fields_the_schema_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({**record_dict(), "feature_cache": {}}))
    with pytest.raises(CourseError, match="unknown fields feature_cache") as err:
        RunRecord.read(tmp_path)
    assert "notes" in err.value.remedy


def test_migrating_a_version_1_file_rebuilds_the_protocol_block_as_run() -> None:
    old = record_dict()
    for key in ("schema_version", "weights_info", "notes"):
        del old[key]
    old.update(
        network="mobilenet_v2",
        size=96,
        weights="imagenet (MobileNetV2 from Google's uint8 TFLite file); BatchNorm re-calibrated",
        normalization={"name": "(pixel - 128) / 128", "mean": [0.5] * 3, "std": [0.5] * 3},
        command="x/solutions/__main__.py run --protocol linear-probe --weights imagenet",
        protocol={
            "name": "linear-probe",
            "description": "A linear probe on frozen fc7 features at 224 px",
            "size": 224,
            "augment": False,
            "normalization": "imagenet",
            "trainable": "head",
            "pretrained": True,
        },
        feature_cache={"dtype": "bfloat16"},
    )
    record = migrate_v1(old, note="a test")
    block = record.protocol
    assert (block.network, block.size, block.protocol_size) == ("mobilenet_v2", 96, 224)
    assert block.normalization == "(pixel - 128) / 128"
    assert "fc7" not in block.description and "224" not in block.description
    assert "mobilenet_v2" in block.description and "96 px" in block.description
    assert record.weights_info["kind"] == "imagenet"
    assert record.weights_info["notes"] == ["BatchNorm re-calibrated"]
    assert record.lecture_reported is None  # the lecture measured VGG16, not this network
    assert record.notes == {"feature_cache": {"dtype": "bfloat16"}, "migration": "a test"}
    assert record.valid_acc == old["valid_acc"] and record.test_acc == old["test_acc"]
    with pytest.raises(CourseError, match="--weights"):
        migrate_v1({**old, "command": "python -m solutions run"}, note="x")


def test_the_recorded_runs_are_current_records_of_what_ran() -> None:
    folders = sorted(p.parent for p in (ROOT / "results").glob("*/results.json"))
    for folder in folders:
        record = RunRecord.read(folder)
        assert record.schema_version == SCHEMA_VERSION
        assert record.protocol.network == record.network == "mobilenet_v2"
        assert record.protocol.size == record.size == 96
        assert record.protocol.normalization == record.normalization["name"]
        assert "fc7" not in record.protocol.description and "224 px" not in record.label
        assert record.lecture_reported is None
        assert record.weights_info["kind"] == "imagenet"


# One tiny run per network a protocol can run on: VGG16 (random weights, 32 px), the
# offline-capable MobileNetV2 (random here: tests never need the data folder), and the
# lecture's own VGG16 (scratch, plain path). Each record's protocol block must say what ran.
# VGG16's and the lecture's VGG16's runs are slow (~30 s: 138M / 50M parameters to build).
TINY_RUNS = [
    pytest.param("linear-probe", "vgg16", True, "ImageNet", id="vgg16", marks=pytest.mark.slow),
    pytest.param("linear-probe", "mobilenet_v2", True, "ImageNet", id="mobilenet_v2"),
    pytest.param("scratch", "vgg16", False, "half", id="scratch", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "arch", "fast", "norm"), TINY_RUNS)
def test_a_tiny_run_records_the_protocol_it_actually_ran(
    name: str, arch: str, fast: bool, norm: str, tmp_path: Path, cache_dir: Path, capsys
) -> None:
    protocol = get_protocol(name)
    options = RunOptions(
        epochs=1,
        arch=arch,
        subset=2,
        size=32,
        weights="random",
        data="synthetic",
        batch_size=10,
        out=tmp_path,
        fast=fast,
        progress=False,
        quiet_table=True,
    )
    record = run_protocol(protocol, options)
    network = "lecture's VGG16" if name == "scratch" else arch
    block = record.protocol
    assert (block.name, block.network, block.size) == (name, network, 32)
    assert block.protocol_size == protocol.size and block.trainable == protocol.trainable
    assert block.normalization == record.normalization["name"]
    assert block.normalization.startswith(norm)
    assert network in block.description and "32 px" in block.description
    assert f"{protocol.size} px" not in block.description
    assert record.weights_info["kind"] == "random"
    assert (
        record.random_weights
        and record.weights == record.label.split("weights: ")[1].split(", data:")[0]
    )
    # The lecture's figures only beside runs on the lecture's networks.
    assert (record.lecture_reported is not None) == (arch == "vgg16" or name == "scratch")
    assert record.output_dir is not None and record.output_dir.parent == tmp_path
    assert RunRecord.read(record.output_dir) == record
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"run {name} ({network}, 32 px)")
