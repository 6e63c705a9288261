"""Transfer is real: pretrained features beat random ones by a wide margin on real CIFAR-10.

The first test of the whole pretrained path, end to end, through the course's own API: the
offline ImageNet MobileNetV2 (``load_model("mobilenet_v2", "imagenet")``), the frozen-trunk
split and the feature cache (``course.features``), and the training loop
(``course.training.train``) fitting a linear probe on the cached features. The same network
with random weights (BatchNorm statistics measured on the same training images, so its
features are not a straw man) is the baseline.

Measured on the JPEG copy of CIFAR-10, 64 px, 50 training and 50 test images a class, 30
epochs: pretrained 51.6%, random 17.6% (a 34-point gap; the 96-px, 100-a-class figures in
../shared/data/mobilenet-v2-imagenet/README.md are 64.9% vs 14-20%). 500 test images give a
standard error of about 2.2 points per accuracy, so the thresholds below (pretrained >= 40%,
gap >= 25 points) leave about four standard errors of room; chance is 10%.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from course.data import load_cifar10
from course.features import cached_loaders, estimate_batchnorm_statistics, split_model
from course.models import load_model, offline_weights_file
from course.training import TrainConfig, train
from solutions.transfer import freeze_backbone, replace_head

# Extracts features of 1,500 real images twice (pretrained and random): up to a minute on 2
# cores with a cold cache.
pytestmark = pytest.mark.slow

SIZE = 64
PER_CLASS = 50
EPOCHS = 30


@pytest.fixture(scope="module")
def splits(shared_data: Path):
    if offline_weights_file() is None:
        pytest.skip("the offline MobileNetV2 (../shared/data/mobilenet-v2-imagenet) is absent")
    data = load_cifar10(shared_data, subset=PER_CLASS, seed=123)
    # Validation only steers the learning-rate schedule here: 10 images a class do.
    valid = data.valid
    keep = torch.cat([torch.nonzero(valid.labels == c).flatten()[:10] for c in range(10)])
    small = dataclasses.replace(valid, images=valid.images[keep], labels=valid.labels[keep])
    return dataclasses.replace(data, valid=small)


def _probe_accuracy(weights: str, splits, cache: Path) -> float:
    torch.manual_seed(0)
    model = load_model("mobilenet_v2", weights)
    pre = load_model("mobilenet_v2", "imagenet").preprocessing if weights == "random" else None
    mean, std = (pre or model.preprocessing).mean, (pre or model.preprocessing).std
    if weights == "random":
        estimate_batchnorm_statistics(
            model, splits.train.images, size=SIZE, mean=mean, std=std, batch_size=64
        )
    freeze_backbone(model)
    replace_head(model, 10)
    parts = split_model(model)
    assert parts is not None and parts.cut == "classifier[0]"  # the whole backbone is cached
    loaders = cached_loaders(
        parts.prefix, splits, size=SIZE, mean=mean, std=std, batch_size=64, root=cache
    )
    config = TrainConfig(epochs=EPOCHS, batch_size=64, device="cpu", progress=False, verbose=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add synchronization
    try:
        history = train(parts.tail, None, loaders, config)
    finally:
        torch.set_num_threads(threads)
    assert history.test_acc is not None
    return history.test_acc


def test_pretrained_features_beat_random_features_by_a_wide_margin(splits, tmp_path):
    pretrained = _probe_accuracy("imagenet", splits, tmp_path)
    random = _probe_accuracy("random", splits, tmp_path)
    print(f"linear probe, {SIZE} px: pretrained {pretrained:.1f}%, random {random:.1f}%")
    assert pretrained >= 40.0, f"pretrained features reach only {pretrained:.1f}%"
    assert pretrained - random >= 25.0, (pretrained, random)
