"""`python -m solutions`: protocols set up the right parameters; runs write valid results."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from course.data import load_cifar10, make_loaders
from course.training import TrainConfig, train
from solutions.__main__ import main
from solutions.protocols import PROTOCOLS, get_protocol
from solutions.run import prepare_model
from solutions.transfer import build_transforms

# Trainable parameters of VGG16 with a 10-way head, per protocol (DESIGN.md):
EXPECTED_TRAINABLE = {
    "lecture-small": 40_970,  # the lecture's code: only the new head
    "lecture-large": 40_970,
    "linear-probe": 40_970,
    "corrected": 119_586_826,  # fc6 + fc7 + head
    "last-block": 126_666_250,  # conv5 block (3 x 2,359,808) + fc6 + fc7 + head
    # The lecture's own VGG16 (1.1-vgg16.ipynb): 3 x 3 pool, fc6 4,608 -> 4,096, all trained.
    "scratch": 50_415_434,
}

# The offline MobileNetV2: a 1280 -> 10 head; the last block (features[17:]) adds 886,080.
EXPECTED_MOBILENET = {"linear-probe": 12_810, "last-block": 898_890}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_each_protocol_trains_what_it_says(name):
    model = prepare_model(get_protocol(name), "random")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == EXPECTED_TRAINABLE[name]
    assert model.classifier[6].out_features == 10


def test_scratch_is_the_lectures_own_vgg16():
    from solutions.lecture_vgg16 import PARAMETERS_10_CLASSES, LectureVGG16

    model = prepare_model(get_protocol("scratch"), "random")
    assert isinstance(model, LectureVGG16)
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS_10_CLASSES == 50_415_434
    assert model.avgpool.output_size == (3, 3) and model.classifier[0].in_features == 4608
    # kaiming-uniform (fan_in, relu): bound sqrt(6 / fan_in); zero biases.
    fc6 = model.classifier[0]
    assert fc6.weight.abs().max() <= (6 / 4608) ** 0.5 and torch.all(fc6.bias == 0)
    with torch.inference_mode():
        assert model.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 10)


@pytest.mark.parametrize("name", sorted(EXPECTED_MOBILENET))
def test_mobilenet_protocols_train_what_they_say(name):
    model = prepare_model(get_protocol(name), "random", "mobilenet_v2")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == EXPECTED_MOBILENET[name]
    assert model.classifier[1].out_features == 10


def test_vgg16_only_protocols_refuse_mobilenet_with_the_fix():
    from course.errors import CourseError

    with pytest.raises(CourseError, match="fc6 and fc7") as err:
        prepare_model(get_protocol("corrected"), "random", "mobilenet_v2")
    assert "--arch vgg16" in err.value.remedy


def test_cacheable_protocols_are_the_frozen_unaugmented_ones():
    cacheable = {name for name, p in PROTOCOLS.items() if p.cacheable}
    assert cacheable == {"lecture-large", "linear-probe", "corrected", "last-block"}


def test_unknown_protocol_lists_the_names():
    with pytest.raises(ValueError, match="corrected"):
        get_protocol("fine-tune-everything")


@pytest.mark.slow
def test_run_end_to_end_writes_valid_results(tmp_path, capsys):
    status = main(
        [
            "run",
            "--protocol",
            "corrected",
            "--epochs",
            "2",
            "--subset",
            "4",
            "--size",
            "32",
            "--weights",
            "random",
            "--data",
            "synthetic",
            "--batch-size",
            "10",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert status == 0
    (run_dir,) = tmp_path.iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["protocol"]["name"] == "corrected"
    assert results["epochs"] == 2
    assert len(results["valid_acc"]) == len(results["epoch_seconds"]) == 2
    assert 0 <= results["test_acc"] <= 100
    assert results["trainable_parameters"] == 119_586_826
    assert results["data"]["synthetic"] is True
    assert "random" in results["weights"]
    assert results["torch"] == torch.__version__
    assert results["lecture_reported"] is None  # the lecture never ran this protocol
    for plot in ("loss.png", "accuracy.png", "confusion.png", "predictions.png"):
        assert (run_dir / plot).stat().st_size > 1000
    out = capsys.readouterr().out
    lines = out.splitlines()
    # First and last lines name the data, the weights and the machine.
    for line in (lines[0], lines[-1]):
        assert "data: synthetic" in line and "weights: random" in line
        assert f"torch {torch.__version__}" in line and "cores" in line
    assert lines[0].startswith("run corrected") and lines[-1].startswith("done: test")
    assert "results:" in out


def test_missing_data_is_one_clear_error(tmp_path, capsys):
    status = main(
        ["run", "--protocol", "linear-probe", "--data", str(tmp_path / "nowhere"), "--epochs", "1"]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "How to fix it" in err


@pytest.mark.slow
def test_a_few_steps_on_real_cifar10_reduce_the_loss(shared_data):
    splits = load_cifar10(shared_data, subset=30, seed=123)
    train_tf, eval_tf = build_transforms(32, "cifar10")
    loaders = make_loaders(splits, train_tf, eval_tf, batch_size=30)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    config = TrainConfig(
        epochs=4, batch_size=30, lr=0.05, device="cpu", progress=False, verbose=False
    )
    history = train(model, optimizer, loaders, config)
    per_epoch = history.batches_per_epoch
    first = sum(history.minibatch_loss[:per_epoch]) / per_epoch
    last = sum(history.minibatch_loss[-per_epoch:]) / per_epoch
    assert last < first - 0.05, (first, last)


def test_final_table_labels_the_lecture_and_what_each_run_trained(capsys):
    from solutions.run import print_table

    run = {
        "protocol": {"name": "corrected", "trainable": "fc"},
        "valid_acc": [50.0, 60.0, 65.0],
        "test_acc": 66.0,
        "epoch_seconds": [10.0, 10.0, 10.0],
        "total_seconds": 40.0,
        "label": "corrected, 64 px, weights: random, data: CIFAR-10",
        "device": "cpu",
    }
    print_table([run], get_protocol("corrected"))
    rows = {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "head only*" in rows["reported by the lecture: lecture-large"]
    assert "84.90%" in rows["reported by the lecture: lecture-large"]
    assert "all layers" in rows["reported by the lecture: scratch"]
    measured = rows["this run: corrected (measured)"]
    assert "fc6+fc7+head" in measured and "66.00%" in measured
    # 40 s measured plus 47 more epochs at 10 s: 510 s.
    assert "8.5 min (projected)" in measured


@pytest.mark.slow
def test_demo_contrasts_pretrained_and_random_features_and_names_everything(
    tmp_path, capsys, monkeypatch
):
    """The demo's shape on a tiny subset (the real figures come from `make demo`)."""
    from course.quick import QuickWeights
    from solutions import demo

    choice = QuickWeights("mobilenet_v2", "random", "a test network", "tests use random weights")
    monkeypatch.setattr(demo, "quick_weights", lambda: dataclasses.replace(choice))
    accuracy = demo.run_demo(
        demo.DemoSettings(subset=2, epochs=1, batch_size=8, out=tmp_path, data="synthetic")
    )
    assert set(accuracy) == {"random"}  # no pretrained weights: no contrast to draw
    lines = capsys.readouterr().out.splitlines()
    for line in (lines[0], lines[-1]):
        assert "data: synthetic" in line and "weights: a test network" in line
        assert "cores" in line and f"torch {torch.__version__}" in line
    assert lines[-1].startswith("demo done in")
    assert any("NOT transfer learning" in line for line in lines)
    (run_dir,) = tmp_path.iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["network"] == "mobilenet_v2" and results["size"] == 96
    assert "BatchNorm statistics from" in results["weights"]
