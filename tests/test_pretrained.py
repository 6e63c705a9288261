"""The offline ImageNet network: Google's uint8 TFLite MobileNetV2 converted to torchvision.

Needs ``../shared/data/mobilenet-v2-imagenet`` (the TFLite file) and the CIFAR-10 test zip
beside the checkout; skipped with the reason when they are absent. The converted model is
checked against the TFLite interpreter itself (``ai-edge-litert``) on real CIFAR-10 images
upscaled to 224 px. Nothing here writes to the user's caches: every test runs with a private
``COURSE_CACHE_DIR`` and ``TORCH_HOME``.
"""

from __future__ import annotations

import copy
import io
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from course import paths
from course.errors import WeightsError
from course.models import (
    IMAGENET_PREPROCESSING,
    calibrate_batchnorm,
    imagenet_classes,
    imagenet_weights_file,
    load_model,
    offline_mobilenet,
    offline_weights_file,
)
from course.models.mobilenet_tflite import convert_tflite, install_tf_same_padding

SHARED = paths.shared_data_dir()
FOLDER = SHARED / "mobilenet-v2-imagenet" if SHARED else None
TFLITE = FOLDER / "mobilenet_v2_1.0_224_quant.tflite" if FOLDER else None
TEST_ZIP = SHARED / "cifar10-jpeg-test.zip" if SHARED else None

pytestmark = pytest.mark.skipif(
    TFLITE is None or not TFLITE.is_file() or not TEST_ZIP.is_file(),
    reason="needs ../shared/data/mobilenet-v2-imagenet/mobilenet_v2_1.0_224_quant.tflite and "
    "../shared/data/cifar10-jpeg-test.zip beside the checkout",
)

LABEL = "imagenet (MobileNetV2 from Google's uint8 TFLite file)"
#: Images per CIFAR-10 class compared with the interpreter; more of the two named below.
PER_CLASS = 3
NAMED = {"truck": 5, "dog": 5}
TRUCK_LIKE = {
    "moving van",
    "trailer truck",
    "pickup",
    "fire engine",
    "garbage truck",
    "tow truck",
    "police van",
    "minivan",
}


@pytest.fixture(scope="module")
def private_caches(tmp_path_factory: pytest.TempPathFactory):
    """An empty course cache and torchvision cache for the whole module, and no override."""
    with pytest.MonkeyPatch.context() as mp:
        cache = tmp_path_factory.mktemp("course-cache")
        mp.setenv("COURSE_CACHE_DIR", str(cache))
        mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
        mp.delenv(offline_mobilenet.PRETRAINED_DIR_ENV, raising=False)
        yield cache


@pytest.fixture(scope="module")
def model(private_caches: Path) -> nn.Module:
    """The converted model, in eval mode (converted once for the module)."""
    return load_model("mobilenet_v2", "imagenet", offline=True).eval()


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, list[str]]:
    """Real CIFAR-10 test images upscaled to 224 px: uint8 (N, 224, 224, 3), and their class."""
    with zipfile.ZipFile(TEST_ZIP) as archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".jpg"))
        by_class: dict[str, list[str]] = {}
        for name in names:
            by_class.setdefault(name.split("/")[-2], []).append(name)
        chosen = [
            name for cls in sorted(by_class) for name in by_class[cls][: NAMED.get(cls, PER_CLASS)]
        ]
        pixels = [
            np.asarray(
                Image.open(io.BytesIO(archive.read(name)))
                .convert("RGB")
                .resize((224, 224), Image.BILINEAR)
            )
            for name in chosen
        ]
    return np.stack(pixels), [name.split("/")[-2] for name in chosen]


def _to_input(pixels: np.ndarray, model: nn.Module) -> torch.Tensor:
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(model.preprocessing.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.preprocessing.std).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


@pytest.fixture(scope="module")
def torch_logits(model: nn.Module, images: tuple[np.ndarray, list[str]]) -> np.ndarray:
    with torch.no_grad():
        return model(_to_input(images[0], model)).numpy()


@pytest.fixture(scope="module")
def tflite_logits(images: tuple[np.ndarray, list[str]]) -> np.ndarray:
    """The interpreter's own logits (before its softmax), dequantized, background dropped."""
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="pip install ai-edge-litert")
    with warnings.catch_warnings():  # it warns that keeping every tensor is for debugging:
        warnings.simplefilter("ignore")  # it is how the logits before the softmax are read
        interpreter = litert.Interpreter(
            model_path=str(TFLITE), experimental_preserve_all_tensors=True
        )
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    (logits,) = [
        t
        for t in interpreter.get_tensor_details()
        if list(t["shape"]) == [1, 1001] and "Softmax" not in t["name"]
    ]
    scale, zero = logits["quantization"]
    out = []
    for image in images[0]:
        interpreter.set_tensor(source, image[None])
        interpreter.invoke()
        out.append((interpreter.get_tensor(logits["index"])[0].astype(np.float32) - zero) * scale)
    return np.stack(out)[:, 1:]


# --- faithfulness --------------------------------------------------------------------------


def test_the_model_is_labelled_with_its_weights_and_preprocessing(model: nn.Module) -> None:
    assert model.weights_label == LABEL
    assert model.preprocessing.mean == model.preprocessing.std == (128 / 255,) * 3
    assert model.classifier[1].out_features == 1000
    # Pixel 0 -> -1, 128 -> 0, 255 -> 127/128, exactly what the TFLite input expects.
    pixels = torch.tensor([0.0, 128.0, 255.0]).view(3, 1, 1) / 255  # one pixel per channel
    got = model.preprocessing.normalize()(pixels)
    assert torch.allclose(got.view(-1), torch.tensor([-1.0, 0.0, 127 / 128]), atol=1e-6)


def test_agrees_with_the_tflite_interpreter(
    torch_logits: np.ndarray, tflite_logits: np.ndarray
) -> None:
    # Measured on these 34 images: top-1 agreement 0.88, logits correlation 0.988 (the rest is
    # the interpreter's 8-bit activations). Without TF's padding agreement drops to 0.38, so
    # 0.70 leaves room for library versions while still catching a wrong conversion.
    agreement = float((torch_logits.argmax(1) == tflite_logits.argmax(1)).mean())
    correlation = float(np.corrcoef(torch_logits.ravel(), tflite_logits.ravel())[0, 1])
    probs = torch.softmax(torch.from_numpy(torch_logits), 1).numpy()
    tf_probs = torch.softmax(torch.from_numpy(tflite_logits), 1).numpy()
    prob_correlation = float(np.corrcoef(probs.ravel(), tf_probs.ravel())[0, 1])
    print(
        f"agreement {agreement:.3f}, logits r {correlation:.4f}, softmax r {prob_correlation:.4f}"
    )
    assert agreement >= 0.70
    assert correlation >= 0.95
    assert prob_correlation >= 0.90


def test_tf_padding_is_what_makes_it_agree(
    model: nn.Module, images: tuple[np.ndarray, list[str]], tflite_logits: np.ndarray
) -> None:
    # The check above can fail: torchvision's own symmetric padding gives far lower agreement.
    plain = torchvision.models.mobilenet_v2().eval()  # same weights, no hooks
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        logits = plain(_to_input(images[0], model)).numpy()
    agreement = float((logits.argmax(1) == tflite_logits.argmax(1)).mean())
    print(f"agreement with symmetric padding: {agreement:.3f}")
    assert agreement <= 0.6


def test_names_sensible_imagenet_classes_for_cifar_images(
    torch_logits: np.ndarray, images: tuple[np.ndarray, list[str]]
) -> None:
    classes = imagenet_classes()
    labels = np.array(images[1])
    trucks = [classes[i] for i in torch_logits[labels == "truck"].argmax(1)]
    dogs = torch_logits[labels == "dog"].argmax(1)
    print("trucks:", trucks, "dogs:", [classes[i] for i in dogs])
    # Majorities, not every image: a 32-px truck can look like anything.
    assert sum(name in TRUCK_LIKE for name in trucks) > len(trucks) / 2
    assert sum(151 <= i <= 268 for i in dogs) > len(dogs) / 2  # ImageNet's dog breeds


def test_imagenet_classes_match_the_files_labels() -> None:
    lines = (FOLDER / "imagenet_labels.txt").read_text().splitlines()
    assert lines[0] == "background" and len(lines) == 1001
    classes = imagenet_classes()
    assert len(classes) == 1000
    # torchvision's short names are each line's first synonym, two disambiguated.
    same = [c == line.split(",")[0] for c, line in zip(classes, lines[1:], strict=True)]
    assert sum(same) == 998
    assert classes[675] == "moving van" and lines[676] == "moving van"


# --- the padding hook and BatchNorm ----------------------------------------------------------


def test_padding_hook_survives_deepcopy_and_pickle(model: nn.Module) -> None:
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            assert torch.equal(other(x), expected)
    assert install_tf_same_padding(model) == [
        "features.0.0",
        "features.2.conv.1.0",
        "features.4.conv.1.0",
        "features.7.conv.1.0",
        "features.14.conv.1.0",
    ]
    with torch.no_grad():  # installing again adds no second hook (that would pad twice)
        assert torch.equal(model(x), expected)


def test_calibrated_batchnorm_keeps_eval_and_makes_train_mode_usable(
    model: nn.Module, images: tuple[np.ndarray, list[str]]
) -> None:
    small = [np.asarray(Image.fromarray(p).resize((64, 64))) for p in images[0][::2]]
    x = _to_input(np.stack(small), model)  # 17 images, every other one: all ten classes

    def train_mode_logits(net: nn.Module) -> torch.Tensor:
        net = copy.deepcopy(net).train()  # train mode updates running stats: use a copy
        for module in net.modules():
            if isinstance(module, nn.Dropout):
                module.eval()  # only BatchNorm's behaviour is under test
        with torch.no_grad():
            return net(x)

    with torch.no_grad():
        reference = model(x)
    before = train_mode_logits(model)  # batch statistics against folded BN
    calibrated = calibrate_batchnorm(copy.deepcopy(model), [x[:9], (x[9:], None)])
    assert not calibrated.training  # its mode is left as it was
    with torch.no_grad():
        after_eval = calibrated(x)
    after_train = train_mode_logits(calibrated)
    diff = (after_eval - reference).abs().max().item()
    agree_before = (before.argmax(1) == reference.argmax(1)).float().mean().item()
    agree_after = (after_train.argmax(1) == reference.argmax(1)).float().mean().item()
    print(f"eval max diff {diff:.2e}; train-mode agreement {agree_before:.2f} -> {agree_after:.2f}")
    assert diff < 1e-3  # float rounding only (measured 5e-5 to 7e-5)
    # Measured: 0.00 before. After: 1.00, since the batch is the calibration data itself.
    assert agree_before <= 0.3
    assert agree_after >= 0.9


# --- sources, cache and errors ---------------------------------------------------------------


def test_second_load_reads_the_cache_without_parsing(
    model: nn.Module, private_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = offline_mobilenet.cached_state_file(offline_mobilenet.TFLITE_SHA256)
    assert cached.is_file() and cached.is_relative_to(private_caches)

    def no_parsing(path: Path) -> None:
        raise AssertionError(f"parsed {path} again")

    monkeypatch.setattr(offline_mobilenet, "convert_tflite", no_parsing)
    again = load_model("mobilenet_v2", "imagenet", offline=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))  # same weights, and the hooks are installed


@pytest.mark.parametrize("damage", ["half a file", "one weight changed"])
def test_a_damaged_cache_is_converted_again(
    private_caches: Path, model: nn.Module, damage: str
) -> None:
    cached = offline_mobilenet.cached_state_file(offline_mobilenet.TFLITE_SHA256)
    if damage == "half a file":
        cached.write_bytes(b"half a file")
    else:  # still a readable torch file: only the stored checksum can tell
        stored = torch.load(cached, weights_only=True)
        stored["state_dict"]["classifier.1.weight"][0, 0] += 1.0
        torch.save(stored, cached)
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = load_model("mobilenet_v2", "imagenet", offline=True)
    assert torch.equal(again.classifier[1].weight, model.classifier[1].weight)
    assert cached.stat().st_size > 10_000_000


def test_torchvisions_cached_weights_come_first(
    private_caches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    file = imagenet_weights_file("mobilenet_v2")
    file.parent.mkdir(parents=True)
    # Random weights stand in for torchvision's file: only the choice of source is under test.
    torch.save(load_model("mobilenet_v2", "random").state_dict(), file)
    chosen = load_model("mobilenet_v2", "imagenet", offline=True)
    assert chosen.weights_label == "imagenet (MobileNet_V2_Weights.IMAGENET1K_V2)"
    assert chosen.preprocessing.mean == IMAGENET_PREPROCESSING.mean


def test_course_pretrained_dir_is_used_and_a_wrong_one_is_named(
    private_caches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / TFLITE.name).symlink_to(TFLITE)
    monkeypatch.setenv("COURSE_PRETRAINED_DIR", str(kit))
    assert offline_weights_file() == kit / TFLITE.name
    assert load_model("mobilenet_v2", "imagenet", offline=True).weights_label == LABEL

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("COURSE_PRETRAINED_DIR", str(empty))
    with pytest.raises(WeightsError, match="COURSE_PRETRAINED_DIR") as info:
        load_model("mobilenet_v2", "imagenet", offline=True)
    assert str(empty / TFLITE.name) in str(info.value)


def test_no_file_anywhere_names_both_ways_to_get_weights(
    private_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "shared_data_dir", lambda: None)
    with pytest.raises(WeightsError) as info:
        load_model("mobilenet_v2", "imagenet", offline=True)
    text = str(info.value)
    assert "mobilenet_v2-7ebf99e0.pth" in text  # torchvision's file ...
    assert TFLITE.name in text and "COURSE_PRETRAINED_DIR" in text  # ... or the TFLite one
    assert "weights='random'" in text
    # Nothing else is affected.
    assert load_model("resnet18", "random", num_classes=10).fc.out_features == 10


@pytest.mark.parametrize("damage", ["truncated", "one byte changed"])
def test_a_damaged_tflite_file_fails_its_checksum(
    private_caches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    data = TFLITE.read_bytes()
    data = data[: len(data) // 2] if damage == "truncated" else data[:-1] + bytes([data[-1] ^ 1])
    (tmp_path / TFLITE.name).write_bytes(data)
    monkeypatch.setenv("COURSE_PRETRAINED_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="sha256") as info:
        load_model("mobilenet_v2", "imagenet", offline=True)
    assert str(tmp_path / TFLITE.name) in str(info.value)
    assert "How to fix it:" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a flatbuffer at all" * 10, "first half"])
def test_an_unparseable_file_gives_a_weights_error(tmp_path: Path, content: object) -> None:
    path = tmp_path / "model.tflite"
    if content == "first half":
        content = TFLITE.read_bytes()[:100_000]
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="could not be converted") as info:
        convert_tflite(path)
    assert str(path) in str(info.value)
