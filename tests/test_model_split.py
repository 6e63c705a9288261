"""``course.model_split``: where a model is cut, so that the cached prefix stays exact."""

from __future__ import annotations

import pytest
import torch
from tiny_model import tiny_vgg as _tiny
from torch import nn

from course.model_split import split_model


@pytest.mark.parametrize(
    ("trainable", "cut", "dim"),
    [("head", "classifier[2]", 32), ("fc", "classifier[0]", 64)],
)
def test_cache_stops_before_the_first_dropout_or_trainable_layer(
    trainable: str, cut: str, dim: int
) -> None:
    model = _tiny(trainable)
    parts = split_model(model)
    assert parts is not None and parts.cut == cut
    x = torch.randn(4, 3, 40, 40)
    assert parts.prefix(x).shape == (4, dim)
    # In train mode, dropout included: the two halves compute the model, bit for bit.
    model.train()
    torch.manual_seed(3)
    whole = model(x)
    torch.manual_seed(3)
    assert torch.equal(parts.tail(parts.prefix(x)), whole)
    assert not any(p.requires_grad for p in parts.prefix.parameters())


def test_nothing_to_cache_when_every_layer_trains() -> None:
    assert split_model(_tiny("all")) is None


def test_a_frozen_batchnorm_stays_in_the_prefix_and_a_trained_one_ends_it() -> None:
    from course.training import train_mode

    model = _tiny("head")
    model.features.insert(1, nn.BatchNorm2d(8).requires_grad_(False))
    model.features[1].running_mean.uniform_(-1, 1)  # pretrained-like statistics
    parts = split_model(model)
    assert parts is not None and parts.cut == "classifier[2]"  # the frozen BN is inside
    # In course.training's train mode (frozen BN in eval mode) the halves are the model.
    x = torch.randn(4, 3, 40, 40)
    train_mode(model)
    torch.manual_seed(3)
    whole = model(x)
    torch.manual_seed(3)
    assert torch.equal(parts.tail(parts.prefix(x)), whole)
    model.features[1].requires_grad_(True)  # a BN that trains: batch statistics, no cache
    parts = split_model(model)
    assert parts is not None and parts.cut == "features[1]"


def test_mobilenet_v2_is_cut_before_its_dropout_or_its_last_blocks() -> None:
    from torchvision.models import mobilenet_v2

    torch.manual_seed(0)
    model = mobilenet_v2(weights=None).requires_grad_(False)  # random init: nothing downloaded
    model.classifier[1] = nn.Linear(1280, 10)
    probe = split_model(model)
    assert probe is not None and probe.cut == "classifier[0]"  # Dropout(0.2) starts the tail
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.inference_mode():
        assert probe.prefix(x).shape == (2, 1280)
        torch.testing.assert_close(probe.tail(probe.prefix(x)), model(x))
    # Cutting earlier on purpose: the probe can share the last-block run's cache.
    early = split_model(model, at="features[17]")
    assert early is not None and early.cut == "features[17]"
    model.features[17:].requires_grad_(True)
    last = split_model(model)
    assert last is not None and last.cut == "features[17]"
    with pytest.raises(ValueError, match="features\\[17\\] comes first"):
        split_model(model, at="features[18]")
    with pytest.raises(ValueError, match="no module called"):
        split_model(model, at="layer4")


def test_real_vgg16_cuts_at_fc6_relu_for_a_probe_and_at_pool5_for_fc() -> None:
    from torchvision.models import vgg16

    model = vgg16(weights=None).requires_grad_(False)  # random init: nothing downloaded
    model.classifier[6] = nn.Linear(4096, 10)
    probe = split_model(model)
    assert probe is not None and probe.cut == "classifier[2]"  # classifier[2] is a Dropout
    model.classifier[0].requires_grad_(True)
    model.classifier[3].requires_grad_(True)
    fc = split_model(model)
    assert fc is not None and fc.cut == "classifier[0]"
    with torch.inference_mode():
        assert fc.prefix(torch.zeros(1, 3, 32, 32)).shape == (1, 25088)
