"""The reference solutions: freezing, the lecture's bug, heads, transforms, optimizer, stats.

Every model here has random weights (nothing is downloaded). Structure-only checks on large
models use PyTorch's ``meta`` device: the real architecture, no memory, no init cost.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.transforms.v2 import functional as TF

from course.data import LECTURE_TYPO_STD, NORMALIZATIONS, ImageSplit
from course.models import available_models, load_model, trainable_parameters
from solutions.transfer import (
    FC_LAYERS,
    build_transforms,
    channel_stats,
    freeze_backbone,
    head_name,
    lecture_channel_stats,
    lecture_unfreeze,
    load_vgg16,
    make_optimizer,
    replace_head,
    unfreeze,
)

#: fc6 (25088*4096 + 4096) + fc7 (4096*4096 + 4096) + new head (4096*10 + 10).
FC_TRAINABLE = 119_586_826
#: Only the new head: 4096*10 + 10.
HEAD_ONLY = 40_970
FC_NAMES = {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}


@pytest.fixture(scope="module")
def vgg16_random() -> nn.Module:
    """One real VGG16 with random weights (~1-2 s to build); tests work on copies."""
    return load_vgg16("random")


def meta_model(name: str) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GoogLeNet/Inception init FutureWarning
        with torch.device("meta"):
            return torchvision.models.get_model(name)


# --- freezing and the lecture's bug ----------------------------------------------------------


def test_load_vgg16_is_torchvision_vgg16_with_its_label(vgg16_random: nn.Module) -> None:
    assert isinstance(vgg16_random, torchvision.models.VGG)
    assert vgg16_random.classifier[6].out_features == 1000
    assert vgg16_random.weights_label == "random (no pretrained weights)"
    assert sum(p.numel() for p in vgg16_random.parameters()) == 138_357_544


def test_correct_unfreeze_trains_fc6_fc7_and_head() -> None:
    vgg = meta_model("vgg16")
    unfreeze(replace_head(freeze_backbone(vgg), 10))
    assert trainable_parameters(vgg) == FC_TRAINABLE
    assert {n for n, p in vgg.named_parameters() if p.requires_grad} == FC_NAMES
    assert not any(p.requires_grad for p in vgg.features.parameters())
    assert FC_LAYERS == ("fc6", "fc7", "head")


def test_head_replaced_after_unfreezing_gives_the_same_set() -> None:
    model = meta_model("vgg16")
    replace_head(unfreeze(freeze_backbone(model)), 10)  # the lecture's order: head last
    assert trainable_parameters(model) == FC_TRAINABLE


def test_lecture_unfreeze_leaves_only_the_head_trainable() -> None:
    vgg = meta_model("vgg16")
    lecture_unfreeze(vgg)
    assert trainable_parameters(vgg) == HEAD_ONLY
    assert {n for n, p in vgg.named_parameters() if p.requires_grad} == {
        "classifier.6.weight",
        "classifier.6.bias",
    }
    assert vgg.classifier[6].out_features == 10


def test_the_bug_sets_a_module_attribute_and_changes_no_parameter() -> None:
    model = meta_model("vgg16")
    for param in model.parameters():
        param.requires_grad = False
    flags_before = {n: p.requires_grad for n, p in model.named_parameters()}

    model.classifier[1].requires_grad = True  # the lecture's lines, verbatim
    model.classifier[3].requires_grad = True

    assert isinstance(model.classifier[1], nn.ReLU)  # no parameters at all
    assert isinstance(model.classifier[3], nn.Linear)  # fc7: has parameters, stays frozen
    # A plain Python attribute on the module object...
    assert vars(model.classifier[1])["requires_grad"] is True
    assert vars(model.classifier[3])["requires_grad"] is True
    # ...while every parameter keeps its flag.
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags_before
    assert not model.classifier[3].weight.requires_grad
    assert trainable_parameters(model) == 0


def test_one_sgd_step_changes_fc6_and_fc7_only_with_the_correct_code(
    vgg16_random: nn.Module,
) -> None:
    """On a real VGG16: the lecture's code trains the head alone; the fix trains fc6-fc7 too."""
    torch.manual_seed(0)
    model = copy.deepcopy(vgg16_random).eval()  # eval: no dropout noise
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([3, 7])
    conv1 = model.features[0].weight.detach().clone()

    def changed_by_one_step() -> set[str]:
        before = {n: p.detach().clone() for n, p in model.classifier.named_parameters()}
        model.zero_grad(set_to_none=True)
        optimizer = make_optimizer(model)
        scores = model(images)
        assert scores.shape == (2, 10)
        nn.functional.cross_entropy(scores, labels).backward()
        optimizer.step()
        after = dict(model.classifier.named_parameters())
        return {n for n in before if not torch.equal(before[n], after[n])}

    lecture_unfreeze(model)
    assert trainable_parameters(model) == HEAD_ONLY
    assert changed_by_one_step() == {"6.weight", "6.bias"}

    unfreeze(replace_head(freeze_backbone(model), 10))
    assert trainable_parameters(model) == FC_TRAINABLE
    assert changed_by_one_step() == {f"{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
    assert torch.equal(model.features[0].weight, conv1)  # the backbone never moved


def test_lecture_unfreeze_refuses_other_architectures() -> None:
    with pytest.raises(ValueError, match="VGG"):
        lecture_unfreeze(meta_model("resnet18"))


def test_unfreeze_accepts_names_and_modules() -> None:
    model = meta_model("resnet18")
    freeze_backbone(model)
    unfreeze(model, ["layer4", model.fc])
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith(("layer4.", "fc.")) for n in names)
    assert names == {n for n, _ in model.named_parameters() if n.startswith(("layer4.", "fc."))}

    single = freeze_backbone(meta_model("resnet18"))
    unfreeze(single, "layer4")  # one name alone, not its letters
    assert {n.split(".")[0] for n, p in single.named_parameters() if p.requires_grad} == {"layer4"}

    vgg = freeze_backbone(meta_model("vgg16"))
    unfreeze(vgg, ["classifier.3", "head"])
    assert {n for n, p in vgg.named_parameters() if p.requires_grad} == {
        "classifier.3.weight",
        "classifier.3.bias",
        "classifier.6.weight",
        "classifier.6.bias",
    }


def test_alexnet_fc6_fc7_are_its_first_two_linear_layers() -> None:
    model = replace_head(freeze_backbone(meta_model("alexnet")), 10)
    unfreeze(model)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        f"classifier.{i}.{p}" for i in (1, 4, 6) for p in ("weight", "bias")
    }


@pytest.mark.parametrize(
    ("model_name", "layer", "message"),
    [
        ("vgg16", "classifier.1", "ReLU.*no parameters"),
        ("vgg16", "clasifier.0", "did you mean 'classifier.0'"),
        ("resnet18", "fc6", "no fc6/fc7"),
    ],
)
def test_unfreeze_explains_bad_layers(model_name: str, layer: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"(?i){message}"):
        unfreeze(meta_model(model_name), [layer])


def test_unfreeze_rejects_a_module_that_is_no_longer_in_the_model() -> None:
    model = meta_model("vgg16")
    old_head = model.classifier[6]
    replace_head(model, 10)
    with pytest.raises(ValueError, match="not part of this model"):
        unfreeze(model, [old_head])


# --- heads -----------------------------------------------------------------------------------

#: (model, input side, batch): the smallest variant of each family the lecture discusses.
#: VGG16 itself runs forward and backward in the SGD-step test above.
#: Wide ResNet is torchvision's ResNet class with wider bottlenecks (same head code as
#: ResNet-18 and ResNeXt-50): it is covered by the structure test on every model below.
FORWARD_CASES = [
    ("alexnet", 64, 2),  # its 11x11 stride-4 stem needs more than 32 px
    ("resnet18", 32, 2),
    ("resnext50_32x4d", 32, 2),
    ("densenet121", 32, 2),
    ("mobilenet_v2", 32, 2),
    ("mobilenet_v3_small", 32, 2),
    ("efficientnet_b0", 32, 2),
    ("googlenet", 32, 2),
    ("inception_v3", 75, 2),  # its minimum input size
    ("convnext_tiny", 32, 2),
    ("vit_b_32", 224, 1),  # fixed 224-px positional embedding
    ("squeezenet1_1", 32, 2),  # its head is a 1x1 conv, not a Linear
    ("regnet_x_400mf", 32, 2),  # cannot be built on the meta device, so tested here
]


@pytest.mark.parametrize(
    ("name", "side", "batch"), FORWARD_CASES, ids=[c[0] for c in FORWARD_CASES]
)
def test_replace_head_gives_ten_scores_and_trains_only_the_head(
    name: str, side: int, batch: int
) -> None:
    torch.manual_seed(0)
    model = freeze_backbone(load_model(name, "random"))
    head = head_name(model)
    old = model.get_submodule(head)
    kept = {n: p for n, p in model.named_parameters() if not n.startswith(head + ".")}

    replace_head(model, 10)

    new = model.get_submodule(head)
    assert new is not old
    in_size = new.in_features if isinstance(new, nn.Linear) else new.in_channels
    assert in_size == (old.in_features if isinstance(old, nn.Linear) else old.in_channels)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n.rsplit(".", 1)[0] for n in trainable} == {head} | _aux_heads(model)
    # Everything else is the very same parameter object, untouched.
    for n, p in model.named_parameters():
        if n not in trainable:
            assert p is kept[n]

    aux_training = name == "googlenet"  # GoogLeNet's aux heads run at any input size
    model.train(aux_training)
    outputs = model(torch.randn(batch, 3, side, side))
    outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    assert len(outputs) == (3 if aux_training else 1)
    assert all(o.shape == (batch, 10) for o in outputs)
    sum(o.sum() for o in outputs).backward()
    # Gradients reach the heads that ran (Inception's aux head only runs at >= 299 px)...
    ran = {head} | (_aux_heads(model) if aux_training else set())
    assert all(
        p.grad is not None for n, p in model.named_parameters() if n.rsplit(".", 1)[0] in ran
    )
    # ...and nothing frozen gets one.
    assert all(p.grad is None for n, p in model.named_parameters() if n not in trainable)

    if name == "inception_v3":
        # The aux head reads Mixed_6e's 768x17x17 output, which needs a 299-px input; feed
        # it that shape directly instead of a whole 299-px forward pass.
        assert model.AuxLogits(torch.randn(2, 768, 17, 17)).shape == (2, 10)


def _aux_heads(model: nn.Module) -> set[str]:
    return {
        fc
        for container, fc in (
            ("aux1", "aux1.fc2"),
            ("aux2", "aux2.fc2"),
            ("AuxLogits", "AuxLogits.fc"),
        )
        if getattr(model, container, None) is not None
    }


def _meta_buildable() -> list[str]:
    # RegNet builders compute layer widths with tensors and fail on the meta device; the
    # forward test above covers regnet_x_400mf for real.
    return [n for n in available_models() if not n.startswith("regnet")]


@pytest.mark.parametrize("name", _meta_buildable())
def test_replace_head_structure_on_every_torchvision_classifier(name: str) -> None:
    model = freeze_backbone(meta_model(name))
    head = head_name(model)
    old = model.get_submodule(head)
    replace_head(model, 7)
    new = model.get_submodule(head)
    assert type(new) is type(old) and new is not old
    if isinstance(new, nn.Linear):
        assert (new.in_features, new.out_features) == (old.in_features, 7)
        assert (new.bias is None) == (old.bias is None)
    else:  # SqueezeNet's 1x1 conv
        assert (new.in_channels, new.out_channels) == (old.in_channels, 7)
    trainable = {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {head} | _aux_heads(model)


def test_known_head_names() -> None:
    expected = {
        "vgg16": "classifier.6",
        "alexnet": "classifier.6",
        "resnet18": "fc",
        "wide_resnet50_2": "fc",
        "densenet121": "classifier",
        "mobilenet_v2": "classifier.1",
        "mobilenet_v3_large": "classifier.3",
        "efficientnet_b0": "classifier.1",
        "convnext_tiny": "classifier.2",
        "googlenet": "fc",
        "inception_v3": "fc",
        "swin_t": "head",
        "vit_b_16": "heads.head",
        "squeezenet1_0": "classifier.1",
    }
    assert {n: head_name(meta_model(n)) for n in expected} == expected


# --- transforms ------------------------------------------------------------------------------


def _texture(side: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, side, side), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("size", [32, 64, 224])
@pytest.mark.parametrize("augment", [False, True])
def test_transforms_give_normalized_float_images_of_the_right_size(
    size: int, augment: bool
) -> None:
    for tf in build_transforms(size, "imagenet", augment=augment):
        out = tf(_texture())
        assert out.shape == (3, size, size) and out.dtype == torch.float32


@pytest.mark.parametrize("normalization", ["imagenet", "half", "cifar10"])
def test_normalization_maps_a_known_colour_to_known_values(normalization: str) -> None:
    colour = torch.tensor([200, 100, 30], dtype=torch.uint8)
    image = colour.view(3, 1, 1).expand(3, 32, 32).clone()
    mean, std = (torch.tensor(v) for v in NORMALIZATIONS[normalization])
    want = (colour.float() / 255 - mean) / std
    for augment in (False, True):
        for tf in build_transforms(64, normalization, augment=augment):
            out = tf(image)
            # A constant image resizes and crops to itself, so only normalization shows.
            assert torch.allclose(out, want.view(3, 1, 1).expand_as(out), atol=1e-5)


def test_an_explicit_mean_std_pair_is_accepted_and_the_typo_shows() -> None:
    image = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    mean = NORMALIZATIONS["imagenet"][0]
    _, good = build_transforms(32, "imagenet")
    _, typo = build_transforms(32, (mean, LECTURE_TYPO_STD))
    assert torch.equal(good(image)[:2], typo(image)[:2])
    blue_good, blue_typo = good(image)[2, 0, 0].item(), typo(image)[2, 0, 0].item()
    assert blue_good == pytest.approx((1 - 0.406) / 0.225, abs=1e-5)
    assert blue_typo == pytest.approx((1 - 0.406) / 0.2255, abs=1e-5)


def test_unknown_normalization_names_the_choices() -> None:
    with pytest.raises(ValueError, match="imagenet"):
        build_transforms(32, "imagnet")


def test_without_augment_train_and_eval_are_the_same_resize() -> None:
    train, evaluate = build_transforms(64, "imagenet", augment=False)
    image = _texture()
    expected = TF.normalize(
        TF.to_dtype(TF.resize(image, [64], antialias=True), torch.float32, scale=True),
        *NORMALIZATIONS["imagenet"],
    )
    assert torch.allclose(train(image), expected, atol=1e-6)
    assert torch.allclose(evaluate(image), expected, atol=1e-6)


def test_with_augment_eval_is_a_center_crop_and_train_a_random_crop() -> None:
    train, evaluate = build_transforms(64, "half", augment=True)
    image = _texture()
    big = TF.normalize(
        TF.to_dtype(TF.resize(image, [70], antialias=True), torch.float32, scale=True),
        *NORMALIZATIONS["half"],
    )
    assert torch.allclose(evaluate(image), big[:, 3:67, 3:67], atol=1e-6)
    assert torch.equal(evaluate(image), evaluate(image))  # deterministic

    torch.manual_seed(0)
    crops = [train(image) for _ in range(8)]
    windows = {
        (top, left)
        for crop in crops
        for top in range(7)
        for left in range(7)
        if torch.allclose(crop, big[:, top : top + 64, left : left + 64], atol=1e-6)
    }
    assert len(windows) >= 2  # a window of the 70-px image, not always the same one


@pytest.mark.parametrize("size", [32, 64, 224])
def test_pil_and_tensor_inputs_agree(size: int) -> None:
    image = _texture()
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    _, evaluate = build_transforms(size, "imagenet")
    from_tensor, from_pil = evaluate(image), evaluate(pil)
    assert from_pil.shape == from_tensor.shape == (3, size, size)
    assert from_pil.dtype == torch.float32
    # PIL and torch resize differ by about one grey level at most; no resize, no difference.
    tolerance = 1e-6 if size == 32 else 0.05
    assert (from_pil - from_tensor).abs().mean() <= tolerance


# --- optimizer -------------------------------------------------------------------------------


def test_optimizer_holds_exactly_the_trainable_parameters() -> None:
    model = unfreeze(replace_head(freeze_backbone(meta_model("vgg16")), 10))
    optimizer = make_optimizer(model)
    held = [p for group in optimizer.param_groups for p in group["params"]]
    assert isinstance(optimizer, torch.optim.SGD)
    assert {id(p) for p in held} == {id(p) for p in model.parameters() if p.requires_grad}
    assert len(held) == 6
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.9, 0.0)

    other = make_optimizer(model, lr=0.005, momentum=0.8, weight_decay=1e-4)
    group = other.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.005, 0.8, 1e-4)


def test_optimizer_refuses_a_fully_frozen_model() -> None:
    with pytest.raises(ValueError, match="nothing to optimize"):
        make_optimizer(freeze_backbone(meta_model("resnet18")))


# --- channel statistics ----------------------------------------------------------------------


def _varied_images(n: int = 60, side: int = 12, seed: int = 0) -> torch.Tensor:
    """uint8 images whose brightness grows with the index, like class-sorted data."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 120, (n, 3, side, side), generator=g)
    offset = torch.linspace(0, 135, n).round().long().view(n, 1, 1, 1)
    return (base + offset).to(torch.uint8)


def _direct(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = images.to(torch.float64) / 255 if images.dtype == torch.uint8 else images.double()
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), unbiased=False)


def _close(stats: tuple, want: tuple[torch.Tensor, torch.Tensor], tol: float = 1e-12) -> bool:
    got = [torch.tensor(v, dtype=torch.float64) for v in stats]
    return all(torch.allclose(g, w, atol=tol, rtol=0) for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize("batch_size", [1, 7, 60, 1000])
def test_channel_stats_equal_a_direct_float64_computation(batch_size: int) -> None:
    images = _varied_images()
    mean, std = channel_stats(images, batch_size=batch_size)
    assert len(mean) == len(std) == 3
    assert _close((mean, std), _direct(images))


@pytest.mark.parametrize("batch_size", [5, 60])
def test_channel_stats_after_resizing(batch_size: int) -> None:
    images = _varied_images()
    resized = TF.resize(images, [20, 20], antialias=True)  # the transforms' resize
    stats = channel_stats(images, size=20, batch_size=batch_size)
    assert _close(stats, _direct(resized))
    assert not _close(stats, _direct(images), tol=1e-4)  # resizing does change them


def test_channel_stats_accept_splits_datasets_pil_and_loaders() -> None:
    images = _varied_images(n=24)
    labels = torch.zeros(24, dtype=torch.long)
    want = _direct(images)

    class PILDataset(Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int) -> tuple[Image.Image, int]:
            return Image.fromarray(images[i].permute(1, 2, 0).numpy()), 0

    floats = TensorDataset(images.float() / 255, labels)
    sources = {
        "split": ImageSplit(images, labels, "train"),
        "tensor dataset": TensorDataset(images, labels),
        "PIL dataset": PILDataset(),
        "float loader": DataLoader(floats, batch_size=5),
    }
    for name, source in sources.items():
        tol = 1e-7 if name == "float loader" else 1e-12  # float32 pixels: rounding of /255
        assert _close(channel_stats(source, batch_size=7), want, tol), name


def test_lecture_mean_of_batch_stds_differs_from_the_real_std() -> None:
    images = _varied_images()  # batches differ in brightness, as in class-sorted data
    real_mean, real_std = channel_stats(images)
    lecture_mean, lecture_std = lecture_channel_stats(images, batch_size=10)
    # Equal batches: the mean of batch means is still right...
    assert lecture_mean == pytest.approx(real_mean, abs=1e-12)
    # ...but each batch's std ignores how far its mean sits from the overall mean.
    assert all(lec < real - 0.02 for lec, real in zip(lecture_std, real_std, strict=True))
    # The lecture's recipe done by hand, to pin down what lecture_channel_stats computes.
    x = images.double() / 255
    by_hand = torch.stack([b.std(dim=(0, 2, 3), unbiased=False) for b in x.split(10)]).mean(0)
    assert torch.allclose(torch.tensor(lecture_std, dtype=torch.float64), by_hand, atol=1e-12)


def test_channel_stats_reject_empty_or_misshapen_input() -> None:
    with pytest.raises(ValueError, match="no images"):
        channel_stats(torch.zeros(0, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        channel_stats(torch.zeros(8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="dtype"):
        channel_stats(torch.zeros(2, 3, 8, 8, dtype=torch.int64))
