"""The training loop: it learns, resumes exactly, stops cleanly and records what it did."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course.errors import CourseError
from course.training import (
    History,
    TrainConfig,
    autocast_for,
    evaluate,
    pick_device,
    predict,
    train,
    train_mode,
)


def _blobs(n: int = 240, seed: int = 0) -> TensorDataset:
    """Four Gaussian blobs in 8-d: easy to learn, so the loss must fall."""
    centers = torch.randn(4, 8, generator=torch.Generator().manual_seed(99)) * 3
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    inputs = centers[labels] + torch.randn(n, 8, generator=g)
    return TensorDataset(inputs, labels)


def _loaders(seed: int = 123) -> dict[str, DataLoader]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "train": DataLoader(_blobs(240, 0), batch_size=32, shuffle=True, generator=gen),
        "valid": DataLoader(_blobs(80, 1), batch_size=64),
        "test": DataLoader(_blobs(80, 2), batch_size=64),
    }


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 4))


def _config(**overrides) -> TrainConfig:
    base = dict(epochs=4, lr=0.05, device="cpu", progress=False, verbose=False, batch_size=32)
    base.update(overrides)
    return TrainConfig(**base)


def test_loss_falls_and_history_is_complete():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = train(model, opt, _loaders(), _config())
    per_epoch = history.batches_per_epoch
    assert per_epoch == 8
    assert len(history.minibatch_loss) == 4 * per_epoch
    first = sum(history.minibatch_loss[:per_epoch]) / per_epoch
    last = sum(history.minibatch_loss[-per_epoch:]) / per_epoch
    assert last < 0.5 * first
    assert len(history.valid_acc) == len(history.train_acc) == len(history.lr) == 4
    assert history.valid_acc[-1] > 90
    assert history.test_acc is not None and history.test_acc > 90
    assert not history.interrupted
    # The test predictions are kept, in the split's order, and are what test_acc counts.
    assert history.test_true == _blobs(80, 2).tensors[1].tolist()
    hits = sum(p == t for p, t in zip(history.test_predicted, history.test_true, strict=True))
    assert history.test_acc == pytest.approx(100 * hits / 80)


def test_only_optimizer_parameters_change():
    model = _model()
    frozen = model[0].weight.detach().clone()
    model[0].requires_grad_(False)
    train(model, None, _loaders(), _config(epochs=1))  # train() builds SGD: trainable only
    assert torch.equal(model[0].weight, frozen)


def test_same_seed_same_run():
    runs = []
    for _ in range(2):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        runs.append(train(model, opt, _loaders(), _config(epochs=2)).minibatch_loss)
    assert runs[0] == runs[1]


def test_checkpoint_then_resume_matches_uninterrupted_run(tmp_path):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    full = train(model, opt, _loaders(), _config(epochs=4))
    full_weights = {k: v.clone() for k, v in model.state_dict().items()}

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train(model, opt, _loaders(), _config(epochs=2, checkpoint_dir=tmp_path))
    assert (tmp_path / "checkpoint.pt").is_file()

    model = _model()  # a fresh process would start from scratch like this
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    resumed = train(model, opt, _loaders(), _config(epochs=4), resume_from=tmp_path)

    assert resumed.minibatch_loss == pytest.approx(full.minibatch_loss, rel=1e-6, abs=1e-7)
    assert resumed.valid_acc == full.valid_acc
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, full_weights[key])


def test_resume_from_missing_checkpoint_names_the_file(tmp_path):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with pytest.raises(CourseError, match="No checkpoint at"):
        train(model, opt, _loaders(), _config(), resume_from=tmp_path / "nowhere")


class _InterruptingLoader:
    """Yields the real batches, then raises Ctrl-C halfway through epoch ``stop_epoch``."""

    def __init__(self, loader: DataLoader, stop_epoch: int) -> None:
        self.loader, self.stop_epoch, self.epoch = loader, stop_epoch, 0
        self.generator = loader.generator

    def __iter__(self):
        self.epoch += 1
        for i, batch in enumerate(self.loader):
            if self.epoch == self.stop_epoch and i == 3:
                raise KeyboardInterrupt
            yield batch


def test_ctrl_c_keeps_the_last_finished_epoch():
    loaders = _loaders()
    loaders["train"] = _InterruptingLoader(loaders["train"], stop_epoch=3)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = train(model, opt, loaders, _config(epochs=5))
    assert history.interrupted
    assert history.epochs_done == 2
    assert len(history.minibatch_loss) == 2 * history.batches_per_epoch
    assert history.test_acc is None

    # The weights are those after epoch 2 of an identical, uninterrupted run.
    reference = _model()
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    train(reference, ref_opt, _loaders(), _config(epochs=2))
    for (name, value), expected in zip(
        model.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(value, expected, msg=name)


def test_history_round_trips_through_json(tmp_path):
    history = History(minibatch_loss=[2.3, 1.1], train_acc=[50.0], valid_acc=[48.5], lr=[0.01])
    history.test_acc = 47.0
    path = history.save(tmp_path / "metrics.json")
    assert json.loads(path.read_text())["valid_acc"] == [48.5]
    assert History.load(path) == history


def test_evaluate_and_predict_agree():
    model = _model()
    loader = _loaders()["valid"]
    predicted, true = predict(model, loader, "cpu")
    assert predicted.shape == true.shape == (80,)
    assert evaluate(model, loader, "cpu") == pytest.approx(100 * (predicted == true).float().mean())
    assert model.training  # predict puts the model back the way it found it


def test_missing_loader_and_bad_device_are_explained():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with pytest.raises(CourseError, match="'valid' loader"):
        train(model, opt, {"train": _loaders()["train"]}, _config())
    if not torch.cuda.is_available():
        with pytest.raises(CourseError, match="no CUDA GPU"):
            pick_device("cuda")
    assert pick_device("cpu").type == "cpu"


# --- every TrainConfig field does something ----------------------------------------------------


def _run(capsys, tmp_path, **changes) -> tuple[History, str, str, nn.Module]:
    """Train with train() building the optimizer from the config; return what is observable."""
    model = _model()
    base = dict(epochs=2, scheduler_patience=0, checkpoint_dir=None)
    base.update(changes)
    history = train(model, None, _loaders(), _config(**base))
    out, err = capsys.readouterr()
    return history, out, err, model


# lr=1e-6 keeps validation accuracy flat, so ReduceLROnPlateau fires (patience 0) and the
# scheduler's settings show in history.lr; training still moves the weights a little.
_SLOW = dict(lr=1e-6, epochs=3)

# field -> (base changes, alternative changes, what differs between the two runs)
FIELD_EFFECTS = {
    "epochs": ({}, {"epochs": 1}, lambda h, o, e, m: len(h.valid_acc)),
    "lr": ({}, {"lr": 0.01}, lambda h, o, e, m: h.minibatch_loss),
    "momentum": ({}, {"momentum": 0.0}, lambda h, o, e, m: h.minibatch_loss),
    "weight_decay": ({}, {"weight_decay": 0.5}, lambda h, o, e, m: h.minibatch_loss),
    "scheduler_factor": (_SLOW, {**_SLOW, "scheduler_factor": 0.5}, lambda h, o, e, m: h.lr),
    "scheduler_patience": (_SLOW, {**_SLOW, "scheduler_patience": 5}, lambda h, o, e, m: h.lr),
    "seed": ({}, {"seed": 7}, lambda h, o, e, m: h.minibatch_loss),  # dropout masks
    "progress": ({}, {"progress": True}, lambda h, o, e, m: bool(e)),  # tqdm writes stderr
    "verbose": ({}, {"verbose": True}, lambda h, o, e, m: o),
    "log_every": (
        {"verbose": True, "log_every": 0},
        {"verbose": True, "log_every": 4},
        lambda h, o, e, m: "Batch 0004/0008" in o,
    ),
    "eval_train": (_SLOW, {**_SLOW, "eval_train": True}, lambda h, o, e, m: h.train_acc),
}


@pytest.mark.parametrize("name", sorted(FIELD_EFFECTS))
def test_each_config_field_changes_the_run(name, capsys, tmp_path):
    base, alternative, observe = FIELD_EFFECTS[name]
    first = observe(*_run(capsys, tmp_path, **base))
    second = observe(*_run(capsys, tmp_path, **alternative))
    assert first != second, f"TrainConfig.{name} changed nothing observable"


def test_every_config_field_has_a_checked_effect(tmp_path, capsys):
    """A new TrainConfig field must come with a test of its effect (no dead settings)."""
    checked_elsewhere = {"batch_size", "device", "bf16", "checkpoint_dir"}
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields == set(FIELD_EFFECTS) | checked_elsewhere
    # batch_size: must match the loader's; device: where the model ends up.
    with pytest.raises(CourseError, match="batch_size=64"):
        train(_model(), None, _loaders(), _config(batch_size=64))
    assert train(_model(), None, _loaders(), _config(epochs=1, batch_size=None)).epochs_done == 1
    history, _, _, model = _run(capsys, tmp_path, device="cpu")
    assert next(model.parameters()).device.type == "cpu"
    # bf16: autocast on CUDA only (on a CPU machine this is all there is to see).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available" where it is not
        assert isinstance(autocast_for(torch.device("cuda"), True), torch.autocast)
        assert not isinstance(autocast_for(torch.device("cuda"), False), torch.autocast)
    assert not isinstance(autocast_for(torch.device("cpu"), True), torch.autocast)
    # checkpoint_dir: a checkpoint appears there.
    _run(capsys, tmp_path, checkpoint_dir=tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "checkpoint.pt").is_file()


def test_an_optimizer_that_contradicts_the_config_is_refused():
    model = _model()
    plain = torch.optim.SGD(model.parameters(), lr=0.05)  # no momentum, config says 0.9
    with pytest.raises(CourseError, match="momentum=0.9"):
        train(model, plain, _loaders(), _config())
    decays = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    with pytest.raises(CourseError, match="weight_decay"):
        train(model, decays, _loaders(), _config())
    # None lets the optimizer decide: e.g. one learning rate per layer group.
    groups = torch.optim.SGD(
        [{"params": model[0].parameters(), "lr": 0.001}, {"params": model[3].parameters()}],
        lr=0.05,
        momentum=0.9,
    )
    history = train(model, groups, _loaders(), _config(epochs=1, lr=None))
    assert history.epochs_done == 1


def test_weight_decay_reaches_the_optimizer_train_builds():
    norms = []
    for decay in (0.0, 0.5):
        model = _model()
        train(model, None, _loaders(), _config(epochs=2, weight_decay=decay))
        norms.append(model[0].weight.norm().item())
    assert norms[1] < 0.8 * norms[0]


# --- frozen BatchNorm stays in eval mode ---------------------------------------------------------


def _bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))


def test_frozen_batchnorm_stays_in_eval_mode_and_keeps_its_statistics():
    model = _bn_model()
    model[:2].requires_grad_(False)  # a frozen, pretrained-like trunk
    stats = model[1].running_mean.clone()
    modes = []
    model[1].register_forward_hook(lambda m, i, o: modes.append(m.training))
    train(model, None, _loaders(), _config(epochs=1))
    assert modes and not any(modes)  # never normalized with batch statistics
    assert torch.equal(model[1].running_mean, stats)


def test_batchnorm_that_trains_follows_the_model():
    model = _bn_model()
    stats = model[1].running_mean.clone()
    train(model, None, _loaders(), _config(epochs=1))
    assert not torch.equal(model[1].running_mean, stats)
    assert train_mode(model)[1].training  # trainable: training mode, batch statistics
    model[1].requires_grad_(False)
    assert not train_mode(model)[1].training and model[3].training


def test_epoch_loss_is_the_mean_over_the_epoch_not_the_last_batch(capsys):
    # 240 examples in batches of 32: seven full batches and a last one of 16, so the
    # example-weighted mean differs from both the last loss and the plain mean of batches.
    model = _model()
    history = train(model, None, _loaders(), _config(verbose=True, epochs=2))
    per_epoch = history.batches_per_epoch
    sizes = [32] * 7 + [16]
    assert per_epoch == len(sizes)
    assert len(history.train_loss) == 2
    for epoch in range(2):
        losses = history.minibatch_loss[epoch * per_epoch : (epoch + 1) * per_epoch]
        weighted = sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes)
        assert history.train_loss[epoch] == pytest.approx(weighted, rel=1e-5)
        assert history.train_loss[epoch] != pytest.approx(losses[-1], rel=1e-3)
    printed = [line for line in capsys.readouterr().out.splitlines() if "mean loss" in line]
    assert len(printed) == 2
    for line, value in zip(printed, history.train_loss, strict=True):
        assert f"mean loss {value:.4f}" in line
