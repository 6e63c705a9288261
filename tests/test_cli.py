"""`python -m solutions`: protocols set up the right parameters; runs write valid results."""

from __future__ import annotations

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
    "scratch": 134_301_514,  # everything
}


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_each_protocol_trains_what_it_says(name):
    model = prepare_model(get_protocol(name), "random")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == EXPECTED_TRAINABLE[name]
    assert model.classifier[6].out_features == 10


def test_cacheable_protocols_are_the_frozen_unaugmented_ones():
    cacheable = {name for name, p in PROTOCOLS.items() if p.cacheable}
    assert cacheable == {"lecture-large", "linear-probe", "corrected"}


def test_unknown_protocol_lists_the_names():
    with pytest.raises(ValueError, match="corrected"):
        get_protocol("fine-tune-everything")


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
    assert out.splitlines()[0].startswith("data:")
    assert "results:" in out and "synthetic" in out


def test_missing_data_is_one_clear_error(tmp_path, capsys):
    status = main(
        ["run", "--protocol", "linear-probe", "--data", str(tmp_path / "nowhere"), "--epochs", "1"]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "How to fix it" in err


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
    config = TrainConfig(epochs=4, device="cpu", progress=False, verbose=False)
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
