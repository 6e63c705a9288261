"""The doctor and the kit's discovery: what each lesson will use, found with no setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from course import doctor, paths
from course.data import load_cifar10
from course.errors import CourseError
from tests.data_fakes import make_image_folder

TFLITE = "mobilenet_v2_1.0_224_quant.tflite"


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine with no CIFAR-10, no pretrained weights, no kit, no shared data."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("COURSE_DATA", "COURSE_PRETRAINED_DIR", "COURSE_QUICK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(paths, "shared_data_dir", lambda: None)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def make_kit(root: Path, per_class: int = 3) -> Path:
    """A minimal unzipped kit: the marker, a CIFAR-10-shaped subset, the network's file."""
    root.mkdir(parents=True)
    (root / paths.KIT_MARKER).write_text(json.dumps({"per_class": "3 images a class"}))
    make_image_folder(root / paths.KIT_DATA, per_class=per_class)
    (root / paths.KIT_PRETRAINED).mkdir()
    (root / paths.KIT_PRETRAINED / TFLITE).write_bytes(b"not read by the doctor")
    (root / "lessons").mkdir()
    return root


def test_a_bare_machine_gets_synthetic_and_random_with_both_fixes(bare, monkeypatch):
    found = doctor.diagnose("04")
    assert not found.quick  # outside a kit quick mode is off unless COURSE_QUICK says so
    assert found.data_kind == "none" and found.problems
    monkeypatch.setenv("COURSE_QUICK", "1")
    found = doctor.diagnose("04")
    assert (found.data_kind, found.weights_kind) == ("synthetic", "random")
    assert [fix for _, fix in found.problems] == [doctor.DATA_REMEDY, doctor.WEIGHTS_REMEDY]
    text = found.render()
    assert "MISSING" in text and "NOT CIFAR-10" in text and "NOT pretrained" in text


def test_inside_the_kit_lessons_find_its_data_and_network_with_no_setting(bare, monkeypatch):
    kit = make_kit(bare / "somewhere" / "kit")
    monkeypatch.chdir(kit / "lessons")  # where Jupyter runs a lesson notebook
    assert paths.kit_dir() == kit.resolve()
    found = doctor.diagnose("04")
    assert found.quick, "inside the kit, quick mode is the default"
    assert (found.data_kind, found.weights_kind) == ("kit-subset", "mobilenet-v2-imagenet")
    assert found.ok and "shipped with the kit" in found.data_label
    splits = load_cifar10(subset=2)
    assert splits.kind == "kit-subset" and not splits.synthetic
    assert str(bare) not in splits.source and "the kit's" in splits.source
    from course.quick import data_label

    assert data_label(splits).startswith("CIFAR-10 subset shipped with the kit")
    # Lessons 1-3 show structure: random weights by design, no problem reported.
    assert doctor.diagnose(1).weights_kind == "random" and doctor.diagnose(1).ok


def test_a_venv_inside_the_kit_finds_it_from_any_working_directory(bare, monkeypatch):
    kit = make_kit(bare / "kit")
    monkeypatch.setattr(sys, "prefix", str(kit / ".venv"))
    assert paths.kit_dir() == kit.resolve()
    assert paths.kit_pretrained_dir() == kit.resolve() / "pretrained"


def test_require_real_stops_synthetic_data_and_random_weights_with_the_doctors_fix():
    from torch import nn

    from course.data import synthetic_cifar10

    fake = synthetic_cifar10(1)
    with pytest.raises(CourseError) as err:
        doctor.require_real(fake, None, "the input-size sweep")
    assert "the input-size sweep" in err.value.problem and doctor.DATA_REMEDY in err.value.remedy
    random_net = nn.Linear(2, 2)
    random_net.weights_label = "random (no pretrained weights)"
    with pytest.raises(CourseError) as err:
        doctor.require_real(None, random_net, "the sweep")
    assert doctor.WEIGHTS_REMEDY in err.value.remedy
    with pytest.raises(CourseError):
        doctor.require_real(None, nn.Linear(2, 2), "a model without a label")
    pretrained = nn.Linear(2, 2)
    pretrained.weights_label = "imagenet (MobileNetV2 from Google's uint8 TFLite file)"
    doctor.require_real(None, pretrained, "the sweep")  # real weights pass


def test_lesson_numbers_are_read_kindly_and_wrong_ones_named():
    assert doctor.lesson_key(4) == doctor.lesson_key("04_inputs") == "04"
    with pytest.raises(CourseError, match="no lesson"):
        doctor.lesson_key("9")


def test_expected_time_comes_from_the_executed_notebooks():
    record = doctor.measured_seconds("04")
    if record is None:
        pytest.skip("no executed lesson 4 notebook with a recorded time")
    seconds, _ = record
    assert f"{seconds:.0f} s" in doctor.expected_time("04") and "2-core" in doctor.expected_time(
        "04"
    )


def test_project_data_is_named_in_words_not_by_its_path():
    shared = paths.shared_data_dir()
    if shared is None:
        pytest.skip("no ../shared/data beside the checkout")
    words = paths.display_path(shared / "cifar10-jpeg-train.zip")
    assert words == "the project data folder (cifar10-jpeg-train.zip)"


def test_python_m_course_doctor_prints_every_lesson():
    done = subprocess.run(
        [sys.executable, "-m", "course", "doctor"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode in (0, 1), done.stderr
    assert all(f"Lesson {key}" in done.stdout for key in doctor.LESSONS)
    assert "data:" in done.stdout and "weights:" in done.stdout
