"""Laptop mode: one parser for on/off environment flags, and which weights quick mode uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from course import paths, quick
from course.errors import CourseError
from course.paths import env_flag, offline
from course.quick import quick_mode, quick_weights

ON = ["1", "true", "yes", "on", "TRUE", " On "]
OFF = ["0", "false", "no", "off", "", "OFF", " No "]


@pytest.mark.parametrize("value", ON)
def test_on_words_turn_every_flag_on(value, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", value)
    monkeypatch.setenv("COURSE_QUICK", value)
    assert env_flag("COURSE_OFFLINE") and offline() and quick_mode()


@pytest.mark.parametrize("value", OFF)
def test_off_words_turn_every_flag_off(value, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", value)
    monkeypatch.setenv("COURSE_QUICK", value)
    monkeypatch.setenv("CI", "true")  # an explicit COURSE_OFFLINE wins over CI
    assert not env_flag("COURSE_OFFLINE", default=True)
    assert not offline() and not quick_mode()


def test_unset_flags_take_their_default_and_ci_means_offline(monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert env_flag("COURSE_QUICK", default=True) and not quick_mode() and not offline()
    monkeypatch.setenv("CI", "true")
    assert offline()
    assert quick_mode(override=True) and not quick_mode(override=False)


def test_a_word_that_is_neither_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "ture")
    with pytest.raises(CourseError, match="COURSE_QUICK") as err:
        quick_mode()
    assert "yes" in err.value.remedy and "off" in err.value.remedy


def _no_vgg(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torchvision cache
    monkeypatch.delenv("COURSE_PRETRAINED_DIR", raising=False)


def test_quick_weights_prefer_vgg16_then_offline_mobilenet_then_random(monkeypatch, tmp_path):
    _no_vgg(monkeypatch, tmp_path)
    shared = tmp_path / "shared"
    monkeypatch.setattr(paths, "shared_data_dir", lambda: shared)
    # Nothing at all: random, said loudly.
    choice = quick_weights()
    assert (choice.name, choice.weights, choice.pretrained) == ("vgg16", "random", False)
    assert "NOT transfer" in choice.label and "random" in quick.banner(True, choice).lower()
    # The offline MobileNetV2 file beside the checkout.
    tflite = shared / "mobilenet-v2-imagenet" / "mobilenet_v2_1.0_224_quant.tflite"
    tflite.parent.mkdir(parents=True)
    tflite.write_bytes(b"tflite")
    choice = quick_weights()
    assert (choice.name, choice.weights) == ("mobilenet_v2", "imagenet")
    assert "project data folder" in choice.reason and "vgg16" in choice.reason.lower()
    assert str(shared) not in choice.reason  # no build-machine paths in what students read
    # VGG16's own ImageNet weights in torchvision's cache win.
    from course.models import imagenet_weights_file

    vgg = imagenet_weights_file("vgg16")
    vgg.parent.mkdir(parents=True)
    vgg.write_bytes(b"weights")
    choice = quick_weights()
    assert (choice.name, choice.weights) == ("vgg16", "imagenet")
    banner = quick.banner(True, choice)
    assert banner.splitlines()[0].startswith("QUICK MODE") and "VGG16" in banner


def test_this_checkout_uses_the_offline_network_when_shared_data_is_there(monkeypatch, tmp_path):
    _no_vgg(monkeypatch, tmp_path)
    from course.models import offline_weights_file

    if offline_weights_file() is None:
        pytest.skip("../shared/data/mobilenet-v2-imagenet not found beside the checkout")
    assert quick_weights().name == "mobilenet_v2"


def test_machine_label_names_cpu_cores_and_torch():
    import os

    import torch

    label = quick.machine_label()
    assert f"{os.cpu_count()} cores" in label and f"torch {torch.__version__}" in label
