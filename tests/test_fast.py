"""The fast path computes what the plain path computes: transforms, cache cut, cached training."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from tiny_model import tiny_vgg
from torch import nn
from torchvision.transforms.v2 import functional as F

from course.data import NORMALIZATIONS, synthetic_cifar10
from course.features import cached_features, split_model
from course.training import TrainConfig
from solutions.fast.gpu_data import CROP_PAD, BatchTransform, TensorLoader, crop_each
from solutions.protocols import Protocol

MEAN, STD = NORMALIZATIONS["imagenet"]


def _images(n: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)


_tiny = tiny_vgg


# --- transforms on whole batches -------------------------------------------------------------


@pytest.mark.parametrize("augment", [False, True])
def test_batch_eval_transform_equals_the_per_image_transform(augment: bool) -> None:
    from solutions.transfer import build_transforms

    images = _images()
    _, eval_tf = build_transforms(40, "imagenet", augment=augment)
    expected = torch.stack([eval_tf(img) for img in images])
    got = BatchTransform(40, MEAN, STD, augment=augment)(images)
    assert got.shape == expected.shape == (12, 3, 40, 40)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_random_crop_equals_cropping_each_image_at_its_offsets() -> None:
    images = _images()
    transform = BatchTransform(40, MEAN, STD, augment=True, train=True)
    offsets = transform.draw_offsets(len(images), torch.Generator().manual_seed(1))
    resized = F.resize(images, [40 + CROP_PAD] * 2, antialias=True)
    expected = torch.stack(
        [
            F.normalize(
                F.to_dtype(F.crop(img, int(t), int(left), 40, 40), torch.float32, scale=True),
                MEAN,
                STD,
            )
            for img, (t, left) in zip(resized, offsets, strict=True)
        ]
    )
    torch.testing.assert_close(transform(images, offsets), expected, rtol=0, atol=0)


def test_crop_offsets_are_uniform_over_every_position_like_random_crop() -> None:
    transform = BatchTransform(64, MEAN, STD, augment=True, train=True)
    offsets = transform.draw_offsets(7000, torch.Generator().manual_seed(0))
    counts = torch.bincount(offsets.flatten(), minlength=CROP_PAD + 1)
    assert offsets.min() == 0 and offsets.max() == CROP_PAD  # 70 - 64 = 6: seven positions
    assert counts.min() > 0.85 * counts.float().mean()  # 2,000 expected each; far from skewed


def test_crop_each_picks_the_right_window() -> None:
    grid = torch.arange(10 * 10, dtype=torch.int64).reshape(1, 1, 10, 10).repeat(2, 3, 1, 1)
    crops = crop_each(grid, torch.tensor([[0, 0], [2, 3]]), 4)
    assert torch.equal(crops[0, 1], grid[0, 1, 0:4, 0:4])
    assert torch.equal(crops[1, 2], grid[1, 2, 2:6, 3:7])


def test_random_transform_without_offsets_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="offsets"):
        BatchTransform(40, MEAN, STD, augment=True, train=True)(_images())


# --- the loader ------------------------------------------------------------------------------


def test_loader_shards_add_up_to_the_single_process_batches() -> None:
    inputs = torch.arange(50, dtype=torch.float32)[:, None]
    labels = torch.arange(50)
    whole = TensorLoader(inputs, labels, batch_size=16, shuffle=True, seed=5)
    ranks = [
        TensorLoader(inputs, labels, batch_size=16, shuffle=True, seed=5, rank=r, world_size=3)
        for r in range(3)
    ]
    assert len(whole) == 4
    for _ in range(2):  # two epochs: a fresh permutation each, the same on every rank
        singles = [y for _, y in whole]
        shards = zip(*([y for _, y in r] for r in ranks), strict=True)
        for single, parts in zip(singles, shards, strict=True):
            assert torch.equal(single, torch.cat(parts))
    epoch_a = torch.cat([y for _, y in whole])
    epoch_b = torch.cat([y for _, y in whole])
    assert sorted(epoch_a.tolist()) == list(range(50)) and not torch.equal(epoch_a, epoch_b)


def test_loader_casts_half_precision_features_to_float32() -> None:
    inputs = torch.randn(8, 4).to(torch.bfloat16)
    (batch, _), *_ = TensorLoader(inputs, torch.zeros(8, dtype=torch.long), batch_size=8)
    assert batch.dtype == torch.float32


# --- the cache on disk -----------------------------------------------------------------------


def _cache(prefix: nn.Module, images: torch.Tensor, root: Path, **changes):
    args = dict(
        split="train",
        size=40,
        normalization="imagenet",
        mean=MEAN,
        std=STD,
        data_fingerprint="abc",
        dtype="float32",
        root=root,
    )
    args.update(changes)
    return cached_features(prefix, images, torch.arange(len(images)) % 10, **args)


def test_cache_is_reused_and_keyed_on_size_normalization_weights_and_data(tmp_path: Path) -> None:
    parts = split_model(_tiny("head"))
    images = _images()
    first = _cache(parts.prefix, images, tmp_path)
    again = _cache(parts.prefix, images, tmp_path)
    assert first.built and not again.built and again.path == first.path
    assert torch.equal(first.features, again.features)
    assert torch.equal(again.labels, torch.arange(12) % 10)
    other_weights = split_model(_tiny("head", seed=1)).prefix
    variants = [
        _cache(parts.prefix, images, tmp_path, size=36),
        _cache(
            parts.prefix, images, tmp_path, normalization="half", mean=(0.5,) * 3, std=(0.5,) * 3
        ),
        _cache(other_weights, images, tmp_path),
        _cache(parts.prefix, images, tmp_path, data_fingerprint="abd"),
        _cache(parts.prefix, images, tmp_path, split="valid"),
    ]
    assert all(v.built for v in variants)
    assert len({v.path for v in variants} | {first.path}) == 6
    assert {p.name for p in tmp_path.iterdir()} == {v.path.name for v in variants} | {
        first.path.name
    }  # no temporary folders left behind


def test_cached_features_equal_the_prefix_output(tmp_path: Path) -> None:
    parts = split_model(_tiny("head"))
    images = _images(20)
    with torch.inference_mode():
        exact = parts.prefix.eval()(BatchTransform(40, MEAN, STD)(images))
    f32 = _cache(parts.prefix, images, tmp_path, batch_size=7)  # batches must not matter
    torch.testing.assert_close(f32.features, exact, rtol=1e-6, atol=1e-6)
    # Half precision: within one rounding of the format (8 bits of mantissa for bf16, 11 for fp16).
    for dtype, eps in (("bfloat16", 2**-8), ("float16", 2**-11)):
        half = _cache(parts.prefix, images, tmp_path, dtype=dtype)
        assert half.features.dtype == getattr(torch, dtype)
        err = (half.features.float() - exact).abs()
        assert torch.all(err <= eps * exact.abs() + 1e-6), f"{dtype}: {err.max()}"


def test_unknown_cache_dtype_names_the_choices(tmp_path: Path) -> None:
    parts = split_model(_tiny("head"))
    with pytest.raises(ValueError, match="bfloat16"):
        _cache(parts.prefix, _images(), tmp_path, dtype="int8")


# --- cached training is the same training ----------------------------------------------------


def _protocol(trainable: str, *, augment: bool = False) -> Protocol:
    return Protocol(
        name=f"tiny-{trainable}",
        description="TinyVGG test protocol (random weights, synthetic data)",
        size=40,
        augment=augment,
        normalization="imagenet",
        trainable=trainable,  # type: ignore[arg-type]
        pretrained=False,
    )


def _config(**changes) -> TrainConfig:
    base = dict(
        epochs=3, batch_size=32, lr=0.05, device="cpu", progress=False, verbose=False, seed=7
    )
    base.update(changes)
    return TrainConfig(**base)


@pytest.mark.parametrize("trainable", ["head", "lecture-bug", "fc"])
def test_cached_training_gives_the_same_losses_and_accuracies(trainable: str) -> None:
    from solutions.fast import train_protocol_fast

    splits = synthetic_cifar10(per_class=12, seed=3)
    protocol = _protocol(trainable)
    assert protocol.cacheable
    model = _tiny("head" if trainable == "lecture-bug" else trainable)
    plain_model = copy.deepcopy(model)
    cached, cached_model = train_protocol_fast(
        protocol, splits, model, _config(), cache=True, cache_dtype="float32"
    )
    plain, _ = train_protocol_fast(protocol, splits, plain_model, _config(), cache=False)
    assert len(cached.minibatch_loss) == 3 * 4  # 120 images in batches of 32
    torch.testing.assert_close(cached.minibatch_loss, plain.minibatch_loss, rtol=1e-5, atol=1e-6)
    assert cached.minibatch_loss[-1] != cached.minibatch_loss[0]  # it did train
    assert cached.train_acc == pytest.approx(plain.train_acc, abs=1e-9)
    assert cached.valid_acc == pytest.approx(plain.valid_acc, abs=1e-9)
    assert cached.test_acc == pytest.approx(plain.test_acc, abs=1e-9)
    # The model that comes back is the whole model, trained: the tail shared its layers.
    assert cached_model is model
    for (name, a), b in zip(
        model.state_dict().items(), plain_model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_augmented_protocol_trains_without_a_cache(tmp_path: Path, monkeypatch) -> None:
    from solutions.fast import train_protocol_fast

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    protocol = _protocol("head", augment=True)
    assert not protocol.cacheable
    splits = synthetic_cifar10(per_class=6, seed=3)
    history, _ = train_protocol_fast(protocol, splits, _tiny("head"), _config(epochs=1))
    assert len(history.valid_acc) == 1 and history.test_acc is not None
    assert not (tmp_path / "features").exists()


def test_fast_image_path_matches_the_plain_lecture_loaders_when_nothing_is_random() -> None:
    """Device-held images, transformed per batch, train like DataLoader + per-image transforms.

    Dropout off; shuffling on: one seed gives one shuffle on both paths, so both runs see the
    same batches in the same order and compute the same losses.
    """
    from course.data import make_loaders
    from course.training import train
    from solutions.fast import image_loaders
    from solutions.transfer import build_transforms, make_optimizer

    splits = synthetic_cifar10(per_class=6, seed=3)
    protocol = _protocol("all")
    config = _config(epochs=2)
    fast_model = _tiny("all", dropout=0.0)
    plain_model = copy.deepcopy(fast_model)
    fast = image_loaders(splits, protocol, 40, config, torch.device("cpu"))
    train_tf, eval_tf = build_transforms(40, "imagenet")
    plain = make_loaders(splits, train_tf, eval_tf, batch_size=32, seed=config.seed)
    assert fast["train"].shuffle and plain["train"].sampler.__class__.__name__ == "RandomSampler"
    h_fast = train(fast_model, make_optimizer(fast_model, lr=0.05), fast, config)
    h_plain = train(plain_model, make_optimizer(plain_model, lr=0.05), plain, config)
    torch.testing.assert_close(h_fast.minibatch_loss, h_plain.minibatch_loss, rtol=1e-5, atol=1e-6)
    assert h_fast.valid_acc == pytest.approx(h_plain.valid_acc)


@pytest.mark.parametrize(
    ("name", "dim"), [("linear-probe", 32), ("lecture-large", 32), ("corrected", 64)]
)
def test_the_lecture_protocols_with_a_frozen_backbone_train_from_the_cache(
    name: str, dim: int, tmp_path: Path, monkeypatch
) -> None:
    """The real protocol objects take the cached path: fc6 features for probes, pool5 for fc."""
    import json

    from solutions.fast import train_protocol_fast
    from solutions.protocols import get_protocol

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    protocol = get_protocol(name)
    trainable = {"lecture-bug": "head", "head": "head", "fc": "fc"}[protocol.trainable]
    splits = synthetic_cifar10(per_class=4, seed=3)
    history, _ = train_protocol_fast(protocol, splits, _tiny(trainable), _config(epochs=1), size=40)
    assert len(history.valid_acc) == 1
    headers = [json.loads(p.read_text()) for p in (tmp_path / "features").glob("*/header.json")]
    assert sorted(h["split"] for h in headers) == ["test", "train", "valid"]
    assert {h["shape"][1] for h in headers} == {dim}
    assert {h["dtype"] for h in headers} == {"bfloat16"}


@pytest.mark.parametrize("augment", [False, True])
def test_one_seed_gives_one_shuffle_on_the_plain_and_the_fast_path(augment: bool) -> None:
    """The same --seed: the same images in the same batches, epoch after epoch, on both paths.

    With random crops too: the fast path draws its crops from a separate per-epoch stream,
    so the shuffle stream stays the DataLoader's.
    """
    from course.data import make_loaders
    from solutions.fast import image_loaders
    from solutions.transfer import build_transforms

    splits = synthetic_cifar10(per_class=7, seed=3)  # 70 images: a short last batch
    config = _config(batch_size=16, seed=11)
    protocol = _protocol("head", augment=augment)
    fast = image_loaders(splits, protocol, 40, config, torch.device("cpu"))["train"]
    train_tf, eval_tf = build_transforms(40, "imagenet", augment=augment)
    plain = make_loaders(splits, train_tf, eval_tf, batch_size=16, seed=11)["train"]
    for _ in range(3):
        fast_batches = [labels.tolist() for _, labels in fast]
        plain_batches = [labels.tolist() for _, labels in plain]
        assert fast_batches == plain_batches
    # Another seed, another shuffle.
    cpu = torch.device("cpu")
    other = image_loaders(splits, protocol, 40, _config(batch_size=16, seed=12), cpu)["train"]
    assert [y.tolist() for _, y in other] != fast_batches


def test_the_cache_build_and_evaluation_use_the_configured_batch_size(
    tmp_path: Path, monkeypatch
) -> None:
    """Memory follows --batch-size: no fixed 256 for the build, no 1024 for evaluation."""
    import json

    from course.features import split_model as split
    from solutions.fast import feature_loaders

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    splits = synthetic_cifar10(per_class=4, seed=3)
    config = _config(batch_size=8)
    loaders = feature_loaders(
        split(_tiny("head")), splits, _protocol("head"), 40, config, torch.device("cpu"), "float32"
    )
    assert {loader.batch_size for loader in loaders.values()} == {8}
    headers = [json.loads(p.read_text()) for p in (tmp_path / "features").glob("*/header.json")]
    assert len(headers) == 3 and {h["batch_size"] for h in headers} == {8}


def test_extract_features_and_cached_loaders_for_lessons(tmp_path: Path) -> None:
    """The lessons' calls: features equal the prefix's output; loaders shuffle like make_loaders."""
    from course.data import make_loaders
    from course.features import cached_loaders, extract_features

    splits = synthetic_cifar10(per_class=5, seed=3)
    parts = split_model(_tiny("head"))
    feats = extract_features(
        parts.prefix, splits.train, size=40, mean=MEAN, std=STD, batch_size=7, root=tmp_path
    )
    with torch.inference_mode():
        exact = parts.prefix.eval()(BatchTransform(40, MEAN, STD)(splits.train.images))
    assert feats.dtype == torch.float32
    torch.testing.assert_close(feats, exact, rtol=1e-6, atol=1e-6)
    loaders = cached_loaders(
        parts.prefix, splits, size=40, mean=MEAN, std=STD, batch_size=16, seed=5, root=tmp_path
    )
    plain = make_loaders(splits, None, None, batch_size=16, seed=5)
    for _ in range(2):
        assert [y.tolist() for _, y in loaders["train"]] == [y.tolist() for _, y in plain["train"]]
    valid = torch.cat([x for x, _ in loaders["valid"]])  # in order, float32
    expected = extract_features(
        parts.prefix, splits.valid, size=40, mean=MEAN, std=STD, root=tmp_path
    )
    torch.testing.assert_close(valid, expected, rtol=1e-6, atol=1e-6)


def test_channels_last_batches_hold_the_same_values() -> None:
    images = _images()
    plain = BatchTransform(40, MEAN, STD)(images)
    fast = BatchTransform(40, MEAN, STD, channels_last=True)(images)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fast, plain)


def test_device_loaders_resume_from_a_checkpoint_like_an_uninterrupted_run(tmp_path: Path) -> None:
    """The loader's seeded generator is saved in checkpoints, so the shuffle resumes in step."""
    from course.training import train
    from solutions.fast import image_loaders
    from solutions.transfer import make_optimizer

    splits = synthetic_cifar10(per_class=6, seed=3)
    protocol = _protocol("head", augment=True)  # shuffled batches and random crops

    def run(epochs: int, resume: bool = False):
        model = _tiny("head")  # on resume, train() loads the checkpoint's weights into it
        config = _config(epochs=epochs, checkpoint_dir=tmp_path)
        loaders = image_loaders(splits, protocol, 40, config, torch.device("cpu"))
        optimizer = make_optimizer(model, lr=config.lr)
        return train(model, optimizer, loaders, config, resume_from=tmp_path if resume else None)

    whole = run(2)
    run(1)
    resumed = run(2, resume=True)
    assert resumed.minibatch_loss == pytest.approx(whole.minibatch_loss, rel=1e-6)
    assert resumed.valid_acc == pytest.approx(whole.valid_acc)


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (the CPU runs the rest)"
)
def test_on_a_gpu_the_fast_paths_train_like_on_the_cpu() -> None:
    """Device data, channels_last and the cache on CUDA; bf16 autocast off to compare numbers."""
    from solutions.fast import train_protocol_fast

    images = _images()
    on_gpu = BatchTransform(64, MEAN, STD, augment=True, channels_last=True)(images.cuda())
    on_cpu = BatchTransform(64, MEAN, STD, augment=True)(images)
    # CUDA resizes uint8 through float32: at most one grey level apart from the CPU kernel.
    assert (on_gpu.cpu() - on_cpu).abs().max() <= 1.01 / 255 / min(STD)
    splits = synthetic_cifar10(per_class=12, seed=3)
    for trainable, augment in (("head", False), ("fc", False), ("all", True)):
        protocol = _protocol(trainable, augment=augment)
        model = _tiny(trainable, dropout=0.0)
        twin = copy.deepcopy(model)
        gpu, _ = train_protocol_fast(protocol, splits, model, _config(device="cuda", bf16=False))
        cpu, _ = train_protocol_fast(protocol, splits, twin, _config(device="cpu"))
        torch.testing.assert_close(gpu.minibatch_loss, cpu.minibatch_loss, rtol=2e-2, atol=2e-3)
        fast, _ = train_protocol_fast(protocol, splits, _tiny(trainable), _config(device="cuda"))
        assert all(0 < loss < 10 for loss in fast.minibatch_loss)  # bf16 autocast trains too


def test_a_cut_inside_the_backbone_caches_feature_maps_with_their_shape(tmp_path: Path) -> None:
    """Fine-tuning the last conv block: the cache holds (N, C, H, W) maps the tail can take."""
    from course.features import extract_features

    splits = synthetic_cifar10(per_class=2, seed=3)
    model = _tiny("head")
    model.features[3:].requires_grad_(True)  # the second conv block trains
    parts = split_model(model)
    assert parts is not None and parts.cut == "features[3]"
    feats = extract_features(
        parts.prefix, splits.train, size=40, mean=MEAN, std=STD, batch_size=8, root=tmp_path
    )
    assert feats.shape == (20, 8, 20, 20)
    with torch.inference_mode():
        assert parts.tail.eval()(feats).shape == (20, 10)
