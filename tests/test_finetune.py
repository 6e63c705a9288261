"""course.finetune: the lesson-7 tools learn, schedule, stop, save and predict as they say."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course.errors import CourseError
from course.finetune import (
    EarlyStopping,
    RandomViews,
    fit,
    flip_tta,
    load_finetuned,
    lr_range_test,
    param_group,
    predict_image,
    read_image,
    save_finetuned,
    warmup_cosine,
)
from course.models import install_tf_same_padding
from course.models.imagenet import Preprocessing


def _blobs(n: int, seed: int) -> TensorDataset:
    centers = torch.randn(4, 8, generator=torch.Generator().manual_seed(99)) * 3
    labels = torch.arange(n) % 4
    inputs = centers[labels] + torch.randn(n, 8, generator=torch.Generator().manual_seed(seed))
    return TensorDataset(inputs, labels)


def _loaders() -> dict[str, DataLoader]:
    return {
        "train": DataLoader(
            _blobs(256, 0),
            batch_size=32,
            shuffle=True,
            generator=torch.Generator().manual_seed(1),
        ),
        "valid": DataLoader(_blobs(128, 1), batch_size=64),
    }


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))


def test_param_group_unfreezes_the_module_but_not_its_batchnorm_by_default() -> None:
    net = _net().requires_grad_(False)
    group = param_group("all", net, 0.1, weight_decay=1e-4)
    assert group["lr"] == 0.1 and group["weight_decay"] == 1e-4 and group["name"] == "all"
    assert len(group["params"]) == 4  # two Linear layers' weights and biases
    assert not any(p.requires_grad for p in net[1].parameters())
    with_bn = param_group("all", _net().requires_grad_(False), 0.1, batchnorm=True)
    assert len(with_bn["params"]) == 6
    with pytest.raises(CourseError, match="no parameters"):
        param_group("none", nn.ReLU(), 0.1)


def test_fit_lowers_the_loss_and_reaches_high_accuracy() -> None:
    net = _net()
    optimizer = torch.optim.SGD([param_group("all", net, 0.05, batchnorm=True)], momentum=0.9)
    history = fit(net, optimizer, _loaders(), epochs=5, seed=0)
    assert len(history.train_loss) == len(history.valid_acc) == 5
    assert history.train_loss[-1] < 0.3 * history.train_loss[0]
    assert history.valid_acc[-1] > 95


def test_warmup_cosine_rises_linearly_then_decays_to_zero() -> None:
    optimizer = torch.optim.SGD(
        [
            {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1},
            {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.01},
        ]
    )
    scheduler = warmup_cosine(optimizer, warmup_steps=4, total_steps=20, start_factor=0.0)
    seen = []
    for _ in range(20):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    first = [lrs[0] for lrs in seen]
    assert first[:5] == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1])
    assert all(a >= b for a, b in zip(first[4:], first[5:], strict=False))  # never rises again
    assert first[-1] < 0.002
    # every group keeps its ratio to the first
    assert all(lrs[1] == pytest.approx(lrs[0] / 10) for lrs in seen)
    with pytest.raises(ValueError):
        warmup_cosine(optimizer, warmup_steps=5, total_steps=5)


def test_lr_range_test_restores_the_model_and_suggests_a_rate_below_divergence() -> None:
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD([param_group("all", net, 0.01, batchnorm=True)], momentum=0.9)
    result = lr_range_test(net, optimizer, _loaders()["train"], start_lr=1e-4, end_lr=10, steps=60)
    assert all(b > a for a, b in zip(result.lrs, result.lrs[1:], strict=False))
    assert result.lrs[0] == pytest.approx(1e-4)
    assert result.suggestion == pytest.approx(result.lowest / 10)
    third = lr_range_test(net, optimizer, _loaders()["train"], start_lr=1e-4, end_lr=10, divide=3)
    assert third.suggestion == pytest.approx(third.lowest / 3)
    # the loss falls at first, so the lowest loss is not at the first rate
    assert result.lowest > result.lrs[0]
    assert 1e-4 < result.suggestion < 1.0
    assert optimizer.param_groups[0]["lr"] == 0.01  # the optimizer's own rate is back
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_early_stopping_keeps_the_best_state_and_stops_after_patience() -> None:
    net = nn.Linear(2, 2)
    stopper = EarlyStopping(patience=2)
    scores = [50.0, 60.0, 55.0, 58.0, 70.0]
    decisions = []
    for epoch, score in enumerate(scores):
        with torch.no_grad():
            net.weight.fill_(float(epoch))
        decisions.append(stopper.step(score, net))
        if decisions[-1]:
            break
    assert decisions == [False, False, False, True]  # 70.0 is never seen
    assert stopper.best == 60.0 and stopper.best_epoch == 2 and stopper.stopped_epoch == 4
    stopper.restore(net)
    assert torch.all(net.weight == 1.0)  # the weights of epoch 2 (index 1)
    with pytest.raises(CourseError, match="before any epoch"):
        EarlyStopping().restore(net)


def test_fit_with_early_stopping_stops_and_reports_the_best_epoch() -> None:
    net = _net()
    optimizer = torch.optim.SGD([param_group("all", net, 0.05, batchnorm=True)], momentum=0.9)
    stopper = EarlyStopping(patience=1, min_delta=100.0)  # nothing can improve by 100 points
    history = fit(net, optimizer, _loaders(), epochs=10, stopper=stopper)
    assert len(history.valid_acc) == 2 and history.stopped_epoch == 2 and history.best_epoch == 1


def test_a_watching_stopper_keeps_what_an_early_stopped_run_keeps() -> None:
    # Same seed, same data: the run that goes on holds, in its stopper, exactly the state
    # that the run stopped early restored.
    def run(stop_training: bool) -> tuple[nn.Module, EarlyStopping, object]:
        net = _net()
        opt = torch.optim.SGD([param_group("all", net, 0.05, batchnorm=True)], momentum=0.9)
        stopper = EarlyStopping(patience=1, min_delta=1.0, stop_training=stop_training)
        return net, stopper, fit(net, opt, _loaders(), epochs=6, stopper=stopper, seed=3)

    stopped_net, stopped, stopped_history = run(True)
    full_net, watched, full_history = run(False)
    assert len(full_history.valid_acc) == 6 > len(stopped_history.valid_acc)
    assert watched.stopped_epoch == stopped.stopped_epoch == full_history.stopped_epoch
    assert watched.best_epoch == stopped.best_epoch
    stopped.restore(stopped_net)
    watched.restore(full_net)
    for a, b in zip(stopped_net.state_dict().values(), full_net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_random_views_cover_every_image_once_per_epoch_and_vary_the_view() -> None:
    n, v = 10, 3
    views = torch.arange(v).view(v, 1, 1).expand(v, n, 1).float() * 100 + torch.arange(n).view(
        1, n, 1
    )
    labels = torch.arange(n)
    batches = RandomViews(views, labels, batch_size=4, seed=0)
    assert len(batches) == 3
    epochs = []
    for _ in range(3):
        items = [(int(x.item()), int(y)) for xs, ys in batches for x, y in zip(xs, ys, strict=True)]
        assert sorted(y for _, y in items) == list(range(n))
        assert all(x % 100 == y for x, y in items)  # each feature belongs to its label
        epochs.append(sorted(items, key=lambda pair: pair[1]))
    assert len({tuple(e) for e in epochs}) > 1  # the views change between epochs
    again = RandomViews(views, labels, batch_size=4, seed=0)
    assert [y.tolist() for _, y in again] == [
        y.tolist() for _, y in RandomViews(views, labels, batch_size=4, seed=0)
    ]
    with pytest.raises(ValueError):
        RandomViews(views, torch.arange(n + 1), batch_size=4)


def _small_mobilenet() -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=3, width_mult=0.25)
    install_tf_same_padding(model)
    return model.eval()


def test_save_and_load_give_identical_predictions_and_keep_the_preprocessing(tmp_path) -> None:
    model = _small_mobilenet()
    prep = Preprocessing((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "(pixel - 128) / 128")
    with pytest.raises(CourseError, match="preprocessing"):
        predict_image(model, torch.zeros(3, 32, 32, dtype=torch.uint8))
    # width_mult is not in torchvision's builder by name: save what get_model rebuilds.
    full = torchvision.models.mobilenet_v2(num_classes=3)
    install_tf_same_padding(full)
    full.eval()
    path = save_finetuned(
        full,
        tmp_path / "m.pt",
        architecture="mobilenet_v2",
        size=40,
        preprocessing=prep,
        classes=["a", "b", "c"],
    )
    loaded = load_finetuned(path)
    assert loaded.classes == ("a", "b", "c") and loaded.input_size == 40
    assert loaded.preprocessing == prep
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    full.preprocessing, full.input_size = prep, 40
    for image in images:
        assert torch.equal(predict_image(full, image), predict_image(loaded, image))
    # without the TensorFlow padding hooks the same weights compute something else
    assert any(getattr(m, "tf_same_padding", False) for m in loaded.modules())
    with pytest.raises(CourseError, match="not a model saved"):
        torch.save({"something": 1}, tmp_path / "other.pt")
        load_finetuned(tmp_path / "other.pt")


def test_predict_image_reads_a_jpeg_and_tta_averages_the_mirror_image(tmp_path) -> None:
    from PIL import Image

    model = _small_mobilenet()
    model.preprocessing = Preprocessing((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "test")
    model.input_size = 48
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    path = tmp_path / "x.jpg"
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path, quality=95)
    assert read_image(path).shape == (3, 32, 32)
    probs = predict_image(model, path)
    assert probs.shape == (3,) and math.isclose(probs.sum().item(), 1.0, rel_tol=1e-5)
    tta = predict_image(model, path, tta=True)
    mirrored = predict_image(model, read_image(path).flip(-1))
    assert torch.allclose(tta, (probs + mirrored) / 2, atol=1e-6)
    inputs = torch.randn(2, 3, 48, 48)
    assert torch.allclose(flip_tta(model, inputs), flip_tta(model, inputs.flip(-1)), atol=1e-6)
    wide = predict_image(model, torch.randint(0, 256, (3, 30, 90), dtype=torch.uint8))
    assert wide.shape == (3,)  # a non-square photo is resized and centre-cropped, not squashed
    from course.finetune import preprocess

    assert preprocess(torch.zeros(3, 30, 90, dtype=torch.uint8), 48, model.preprocessing).shape == (
        1,
        3,
        48,
        48,
    )
    with pytest.raises(CourseError, match="No image"):
        read_image(tmp_path / "missing.jpg")
