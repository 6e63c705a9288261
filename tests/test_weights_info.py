"""``course.models.WeightsInfo``: where weights came from, as a value code can branch on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torchvision

from course.models import (
    IMAGENET_PREPROCESSING,
    RANDOM_LABEL,
    WeightsInfo,
    add_weights_note,
    imagenet_weights_file,
    load_model,
    weights_info_of,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private torchvision cache (set here, not at import)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def test_load_model_attaches_the_kind_and_derives_the_old_attributes(
    tmp_path: Path, torch_home: Path
) -> None:
    random = load_model("resnet18", "random")
    info = weights_info_of(random)
    assert info == WeightsInfo("random", RANDOM_LABEL, IMAGENET_PREPROCESSING)
    assert info.random and random.weights_label == info.full_label == RANDOM_LABEL
    assert random.preprocessing is info.preprocessing

    path = tmp_path / "r18.pth"
    torch.save(random.state_dict(), path)
    from_file = load_model("resnet18", path)
    assert from_file.weights_info.kind == "file" and not from_file.weights_info.random
    assert from_file.weights_label == f"file: {path.resolve()}"

    cached = imagenet_weights_file("resnet18")
    cached.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), cached)
    imagenet = load_model("resnet18", "imagenet", offline=True)
    assert imagenet.weights_info.kind == "imagenet"
    assert imagenet.weights_label == "imagenet (ResNet18_Weights.IMAGENET1K_V1)"


def test_a_note_extends_the_label_without_changing_the_kind() -> None:
    model = load_model("resnet18", "random")
    add_weights_note(model, "BatchNorm statistics from 512 training images")
    assert model.weights_info.kind == "random"
    assert model.weights_info.notes == ("BatchNorm statistics from 512 training images",)
    assert model.weights_label == f"{RANDOM_LABEL}; BatchNorm statistics from 512 training images"
    with pytest.raises(ValueError, match="no weights_info"):
        add_weights_note(torch.nn.Linear(2, 2), "a note")


def test_the_info_round_trips_through_json_fields_and_refuses_unknown_kinds() -> None:
    info = WeightsInfo("imagenet", "imagenet (x)", IMAGENET_PREPROCESSING, ("a", "b"))
    assert WeightsInfo.from_dict(info.to_dict()) == info
    with pytest.raises(ValueError, match="random, imagenet, file"):
        WeightsInfo("pretrained", "x")


def test_no_code_branches_on_the_label_text() -> None:
    """Whether weights are random is ``info.kind``'s to say, never the label's words."""
    pattern = re.compile(r"(label|weights)\w*\)?\.(lower\(\)\.)?startswith\(\s*['\"]random")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("course", "solutions", "autograder", "docs/hooks", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders
