"""course.models: loading with random / local-file / cached ImageNet weights, and describe.

Nothing here touches the network or the user's torch cache: ImageNet tests point
``TORCH_HOME`` at a temporary folder and make any download attempt fail loudly.
"""

from __future__ import annotations

import urllib.error
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from course.errors import CourseError, WeightsError
from course.models import (
    RANDOM_LABEL,
    available_models,
    count_parameters,
    describe,
    imagenet_weights_file,
    load_model,
    trainable_parameter_names,
    trainable_parameters,
)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty torchvision cache, and a download function that must not be called."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_download(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path / "torch"


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.resnet18().state_dict()


def _message(info: pytest.ExceptionInfo[BaseException]) -> str:
    return str(info.value)


# --- random ----------------------------------------------------------------------------------


def test_random_vgg16_with_a_ten_way_head() -> None:
    model = load_model("vgg16", "random", num_classes=10)
    assert isinstance(model, torchvision.models.VGG)
    assert model.classifier[6].out_features == 10
    assert model.weights_label == RANDOM_LABEL == "random (no pretrained weights)"
    assert model.training  # as torchvision returns it


def test_random_googlenet_loads_without_warnings() -> None:
    # nbgrader gives 0 points to a cell that writes to stderr; torchvision's init warning would.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model("googlenet", "random")


def test_available_models_lists_torchvision_classifiers() -> None:
    names = available_models()
    assert {"vgg16", "resnet18", "inception_v3", "vit_b_16"} <= set(names)
    assert "fasterrcnn_resnet50_fpn" not in names  # detection models are not classifiers


def test_unknown_model_name_suggests_close_ones() -> None:
    with pytest.raises(CourseError, match="'vgg16'") as info:
        load_model("vgg61")
    assert not isinstance(info.value, WeightsError)


# --- local files -----------------------------------------------------------------------------


@pytest.mark.parametrize("wrapping", ["state_dict", "checkpoint:state_dict", "checkpoint:model"])
def test_local_file_round_trip(
    tmp_path: Path, resnet18_state: dict[str, torch.Tensor], wrapping: str
) -> None:
    path = tmp_path / "resnet18.pth"
    if wrapping == "state_dict":
        torch.save(resnet18_state, path)
    else:
        torch.save({wrapping.split(":")[1]: resnet18_state, "epoch": 3}, path)
    model = load_model("resnet18", path)
    loaded = model.state_dict()
    assert loaded.keys() == resnet18_state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in resnet18_state.items())
    assert model.weights_label == f"file: {path.resolve()}"


def test_a_buffer_the_file_cannot_fill_gets_a_real_initialization(
    tmp_path: Path, resnet18_state: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No torchvision classifier has a non-persistent buffer today; if one ever does, the
    # uninitialized fast path must not be used for it.
    from course.models import checkpoint_files

    real_build = checkpoint_files.try_build_on_meta

    def with_extra_buffer(name: str, kwargs: dict[str, object]) -> nn.Module | None:
        model = real_build(name, kwargs)
        model.register_buffer("scale", torch.ones(1, device="meta"), persistent=False)
        return model

    monkeypatch.setattr(checkpoint_files, "try_build_on_meta", with_extra_buffer)
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, path)
    model = load_model("resnet18", path)
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert torch.equal(model.conv1.weight, resnet18_state["conv1.weight"])


def test_file_saved_from_a_data_parallel_model_loads(
    tmp_path: Path, resnet18_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "ddp.pth"
    torch.save({f"module.{k}": v for k, v in resnet18_state.items()}, path)
    model = load_model("resnet18", str(path))
    assert torch.equal(model.fc.weight, resnet18_state["fc.weight"])


def test_file_for_another_architecture_names_file_keys_and_the_likely_model(
    tmp_path: Path, resnet18_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, path)
    with pytest.raises(WeightsError) as info:
        load_model("vgg16", path)
    text = _message(info)
    assert str(path) in text
    assert "features.0.weight" in text  # missing
    assert "conv1.weight" in text  # unexpected
    assert "seems to be for resnet18" in text


def test_file_with_a_fine_tuned_head_asks_for_num_classes(tmp_path: Path) -> None:
    model = torchvision.models.resnet18(num_classes=10)
    path = tmp_path / "finetuned.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(WeightsError, match="num_classes=10") as info:
        load_model("resnet18", path)
    assert "fc.weight: file [10, 512] vs model [1000, 512]" in _message(info)
    loaded = load_model("resnet18", path, num_classes=10)
    assert torch.equal(loaded.fc.weight, model.fc.weight)


def test_guessing_the_architecture_considers_only_models_of_a_fitting_size() -> None:
    # Building every torchvision model to compare keys took 14 s; the published parameter
    # counts (after allowing for a replaced head) leave a handful of candidates to build.
    from course.models.architecture import candidates, guess_architecture

    with torch.device("meta"):
        state = torchvision.models.resnet18(num_classes=10).state_dict()
    found = candidates(state)
    assert found[0] == "resnet18"
    assert len(found) <= 8 < len(available_models())
    assert guess_architecture(state) == ("resnet18", 10)
    assert guess_architecture({"my_layer.weight": torch.zeros(3, 3)}) is None


def test_googlenet_file_without_aux_heads_loads(tmp_path: Path) -> None:
    # What a state_dict saved from an ImageNet-loaded GoogLeNet looks like: no aux1/aux2.
    source = torchvision.models.googlenet(aux_logits=False, init_weights=True)
    mine = tmp_path / "googlenet.pth"
    torch.save(source.state_dict(), mine)
    model = load_model("googlenet", mine)
    assert model.aux1 is None and model.aux2 is None and not model.aux_logits
    assert torch.equal(model.fc.weight, source.fc.weight)
    assert not model.transform_input

    # Under the name of torchvision's ImageNet file, it gets the input re-normalization
    # torchvision applies to that file (a flag the state_dict cannot carry).
    theirs = tmp_path / imagenet_weights_file("googlenet").name
    mine.rename(theirs)
    assert load_model("googlenet", theirs).transform_input


@pytest.mark.parametrize("kind", ["junk", "truncated", "whole model", "no tensors", "empty"])
def test_unreadable_files_give_a_weights_error_naming_the_file(
    tmp_path: Path, resnet18_state: dict[str, torch.Tensor], kind: str
) -> None:
    path = tmp_path / f"{kind.replace(' ', '_')}.pth"
    if kind == "junk":
        path.write_text("these are not weights\n")
    elif kind == "truncated":
        torch.save(resnet18_state, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "whole model":
        torch.save(nn.Linear(2, 2), path)  # torch.save(model) instead of its state_dict
    elif kind == "no tensors":
        torch.save({"epoch": 3, "note": "no weights here"}, path)
    else:
        torch.save({}, path)
    with pytest.raises(WeightsError) as info:
        load_model("resnet18", path)
    text = _message(info)
    assert str(path) in text
    assert "How to fix it:" in text
    if kind == "whole model":
        assert "state_dict()" in text


def test_missing_file_or_folder_is_named(tmp_path: Path) -> None:
    for weights in (tmp_path / "nope.pth", tmp_path):
        with pytest.raises(WeightsError, match="'random'") as info:
            load_model("resnet18", weights)
        assert str(weights) in _message(info)


# --- ImageNet through torchvision's cache ----------------------------------------------------


def test_imagenet_weights_file_is_in_torchvisions_cache(torch_home: Path) -> None:
    assert imagenet_weights_file("vgg16") == torch_home / "hub" / "checkpoints" / (
        "vgg16-397923af.pth"
    )


@pytest.mark.parametrize("how", ["offline=True", "COURSE_OFFLINE=1"])
def test_imagenet_offline_without_cache_names_the_file_to_place(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "offline=True":
        monkeypatch.setenv("COURSE_OFFLINE", "0")
        kwargs = {"offline": True}
    else:
        monkeypatch.setenv("COURSE_OFFLINE", "1")
        kwargs = {}
    with pytest.raises(WeightsError) as info:
        load_model("vgg16", "imagenet", **kwargs)
    text = _message(info)
    assert "vgg16-397923af.pth" in text
    assert str(torch_home / "hub" / "checkpoints") in text
    assert "weights='random'" in text
    assert not (torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth").exists()


def test_imagenet_offline_reads_a_cached_file(
    torch_home: Path, resnet18_state: dict[str, torch.Tensor]
) -> None:
    # Random weights stand in for the real file: only the cache lookup is under test.
    cached = imagenet_weights_file("resnet18")
    cached.parent.mkdir(parents=True)
    torch.save(resnet18_state, cached)
    model = load_model("resnet18", "imagenet", offline=True)
    assert torch.equal(model.conv1.weight, resnet18_state["conv1.weight"])
    assert model.weights_label == "imagenet (ResNet18_Weights.IMAGENET1K_V1)"


def test_imagenet_corrupt_cached_file_says_to_delete_it(torch_home: Path) -> None:
    cached = imagenet_weights_file("resnet18")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"PK\x03\x04 half a download")
    with pytest.raises(WeightsError, match="delete") as info:
        load_model("resnet18", "imagenet", offline=True)
    assert str(cached) in _message(info)


def test_imagenet_failed_download_names_the_url_and_folder(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    with pytest.raises(WeightsError, match="could not download") as info:
        load_model("resnet18", "imagenet", offline=False)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in _message(info)


def test_imagenet_with_another_number_of_classes_explains(torch_home: Path) -> None:
    with pytest.raises(WeightsError, match="1000-way"):
        load_model("vgg16", "imagenet", num_classes=10, offline=True)


# --- counting and describe -------------------------------------------------------------------


def _meta_vgg16() -> nn.Module:
    with torch.device("meta"):
        return torchvision.models.vgg16()


def test_counts_by_hand_on_a_tiny_model_with_a_shared_layer() -> None:
    shared = nn.Linear(3, 3)  # 12 values, used twice but stored once
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(3, 2))  # + 8 values
    assert count_parameters(model) == 20
    model[3].requires_grad_(False)
    assert trainable_parameters(model) == count_parameters(model, trainable_only=True) == 12
    assert trainable_parameter_names(model) == ["0.weight", "0.bias"]


def _row(table: str, block: str) -> list[str]:
    return next(line.split() for line in table.splitlines() if line.split()[0] == block)


def test_describe_vgg16_blocks_trainable_and_frozen() -> None:
    model = _meta_vgg16()
    model.weights_label = RANDOM_LABEL
    model.requires_grad_(False)
    model.classifier[6] = nn.Linear(4096, 10, device="meta")
    model.classifier[0].requires_grad_(True)
    model.classifier[3].requires_grad_(True)

    table = describe(model)
    assert table.splitlines()[0] == "VGG  (weights: random (no pretrained weights))"
    assert _row(table, "features") == ["features", "Sequential", "14,714,688", "0", "14,714,688"]
    assert _row(table, "avgpool") == ["avgpool", "AdaptiveAvgPool2d", "0", "0", "0"]
    assert _row(table, "classifier") == [
        "classifier",
        "Sequential",
        "119,586,826",
        "119,586,826",
        "0",
    ]
    assert _row(table, "total") == ["total", "134,301,514", "119,586,826", "14,714,688"]
    assert "89.04% of the parameters will train." in table


def test_describe_counts_parameters_held_by_the_model_itself() -> None:
    with torch.device("meta"):
        vit = torchvision.models.vit_b_32()
    table = describe(vit)
    own = _row(table, "(own)")
    assert own[-3:] == ["768", "768", "0"]  # the class token, 1 x 1 x 768
    total = int(_row(table, "total")[1].replace(",", ""))
    assert total == count_parameters(vit)
    assert "weights:" not in table.splitlines()[0]  # no label, none claimed
