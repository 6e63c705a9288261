"""course.data and course.sources: sources, splits, cache, errors, synthetic data, loaders."""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fakes import (
    label_from_colour,
    make_image_folder,
    make_image_zip,
    make_jpeg_zips,
    make_torchvision_root,
    truncate,
)
from torch import nn

import course.sources.decoding
from course import data
from course.data import (
    CLASSES,
    LECTURE_TYPO_STD,
    NORMALIZATIONS,
    CIFAR10Splits,
    TransformedImages,
    load_cifar10,
    make_loaders,
    split_indices,
    synthetic_cifar10,
)
from course.errors import DataError

PER_CLASS = 10  # train: 9 a class + 1 valid; test: 10 a class


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty cache folder for this test only."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> Path:
    """A machine with no CIFAR-10 anywhere the automatic search looks."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    monkeypatch.setattr(data.paths, "shared_data_dir", lambda: None)
    return work


def check_splits(splits: CIFAR10Splits, train: int, valid: int, test: int) -> None:
    """Sizes per class, dtypes, shapes, and labels that match the fake images' colours."""
    for split, per_class in ((splits.train, train), (splits.valid, valid), (splits.test, test)):
        assert split.images.dtype == torch.uint8
        assert split.images.shape == (10 * per_class, 3, 32, 32)
        assert split.labels.dtype == torch.int64
        assert torch.bincount(split.labels, minlength=10).tolist() == [per_class] * 10
        recovered = [label_from_colour(image) for image in split.images]
        assert recovered == split.labels.tolist(), f"{split.name}: labels do not match images"
    assert not splits.synthetic
    assert len(splits.fingerprint) == 16


# --- constants ---------------------------------------------------------------------------


def test_constants() -> None:
    assert CLASSES == tuple(sorted(CLASSES)) and len(CLASSES) == 10
    assert CLASSES[0] == "airplane" and CLASSES[9] == "truck"
    assert NORMALIZATIONS["imagenet"] == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert NORMALIZATIONS["half"] == ((0.5,) * 3, (0.5,) * 3)
    assert LECTURE_TYPO_STD[2] == 0.2255 and LECTURE_TYPO_STD[:2] == (0.229, 0.224)
    mean, std = NORMALIZATIONS["cifar10"]
    assert all(0.4 < m < 0.5 for m in mean) and all(0.2 < s < 0.3 for s in std)


# --- sources -----------------------------------------------------------------------------


def test_image_folder(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", PER_CLASS)
    splits = load_cifar10(root)
    check_splits(splits, train=9, valid=1, test=10)
    assert str(root) in splits.source


def test_image_folder_png_and_junk_files(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", 3, suffix=".png")
    (root / "README.txt").write_text("notes beside the splits are fine")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1")
    check_splits(load_cifar10(root), train=2, valid=1, test=3)  # valid: at least one a class


@pytest.mark.parametrize("top_folder", [None, "cifar10"])
def test_single_zip(tmp_path: Path, cache: Path, top_folder: str | None) -> None:
    archive = make_image_zip(tmp_path / "cifar.zip", PER_CLASS, top_folder=top_folder)
    splits = load_cifar10(archive)
    check_splits(splits, train=9, valid=1, test=10)
    assert "cifar.zip" in splits.source


def test_folder_with_the_two_zips(tmp_path: Path, cache: Path) -> None:
    folder = make_jpeg_zips(tmp_path / "shared", PER_CLASS, test_per_class=5)
    check_splits(load_cifar10(folder), train=9, valid=1, test=5)


@pytest.mark.parametrize("inside", [False, True])
def test_torchvision_root(tmp_path: Path, cache: Path, inside: bool) -> None:
    root = make_torchvision_root(tmp_path / "tv", per_class=2)  # 5 batches: 10 a class
    source = root / "cifar-10-batches-py" if inside else root
    splits = load_cifar10(source)
    check_splits(splits, train=9, valid=1, test=2)
    assert "torchvision" in splits.source


def test_search_order_prefers_course_data(
    tmp_path: Path, nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_torchvision_root(nowhere / "data", per_class=2)  # ./data, found by the search
    archive = make_image_zip(tmp_path / "mine.zip", PER_CLASS)
    assert "torchvision" in load_cifar10().source
    monkeypatch.setenv("COURSE_DATA", str(archive))
    assert "mine.zip" in load_cifar10().source


# --- splits ------------------------------------------------------------------------------


def test_same_seed_same_split_other_seed_other_split(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", 20)
    a, b, c = load_cifar10(root), load_cifar10(root), load_cifar10(root, seed=7)
    assert a.fingerprint == b.fingerprint
    assert torch.equal(a.train.images, b.train.images) and torch.equal(
        a.valid.labels, b.valid.labels
    )
    assert c.fingerprint != a.fingerprint
    assert not torch.equal(a.valid.images, c.valid.images)


def test_split_indices_stratified_disjoint_and_complete() -> None:
    labels = torch.arange(10).repeat_interleave(5000)
    test_labels = torch.arange(10).repeat_interleave(1000)
    idx = split_indices(labels, test_labels, seed=123)
    assert [len(idx[s]) for s in ("train", "valid", "test")] == [45_000, 5_000, 10_000]
    assert np.bincount(labels.numpy()[idx["valid"]]).tolist() == [500] * 10
    assert not set(idx["train"]) & set(idx["valid"])
    assert sorted(np.concatenate([idx["train"], idx["valid"]])) == list(range(50_000))
    assert sorted(idx["test"]) == list(range(10_000))
    # Each split comes shuffled, so a first batch holds every class.
    assert len(set(labels.numpy()[idx["valid"][:100]])) == 10
    again = split_indices(labels, test_labels, seed=123)
    other = split_indices(labels, test_labels, seed=124)
    assert all(np.array_equal(idx[s], again[s]) for s in idx)
    assert not np.array_equal(np.sort(idx["valid"]), np.sort(other["valid"]))


def test_subset_sizes_nested_and_capped() -> None:
    labels = torch.arange(10).repeat_interleave(5000)
    test_labels = torch.arange(10).repeat_interleave(1000)
    small = split_indices(labels, test_labels, seed=5, subset=20)
    large = split_indices(labels, test_labels, seed=5, subset=600)
    assert [len(small[s]) for s in ("train", "valid", "test")] == [200, 200, 200]
    # valid holds only 500 a class: the cap is what exists
    assert [len(large[s]) for s in ("train", "valid", "test")] == [6000, 5000, 6000]
    for split in small:
        assert set(small[split]) <= set(large[split]), "a subset grows by adding images"


def test_subset_on_a_folder(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", PER_CLASS)
    check_splits(load_cifar10(root, subset=4), train=4, valid=1, test=4)
    with pytest.raises(DataError, match="subset"):
        load_cifar10(root, subset=0)


# --- cache -------------------------------------------------------------------------------


def _fail_if_decoding(data: bytes, name: str) -> torch.Tensor:
    raise AssertionError(f"decoded {name} again: the cache was not used")


def test_second_load_uses_the_cache(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_image_zip(tmp_path / "cifar.zip", PER_CLASS)
    first = load_cifar10(archive)
    monkeypatch.setattr(course.sources.decoding, "decode_image", _fail_if_decoding)
    second = load_cifar10(archive, subset=3)
    assert torch.equal(first.test.images, load_cifar10(archive).test.images)
    assert second.fingerprint != first.fingerprint  # a subset is other data
    assert len(list((cache / "cifar10").glob("*.pt"))) == 1


def test_changed_source_is_decoded_again(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", 2)
    before = load_cifar10(root)
    make_image_folder(root, 3)  # one more image per class
    after = load_cifar10(root)
    assert len(after.train) + len(after.valid) == 30 != len(before.train) + len(before.valid)
    assert len(list((cache / "cifar10").glob("*.pt"))) == 1, "the stale cache is removed"


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_damaged_cache_is_rebuilt(tmp_path: Path, cache: Path, damage: str) -> None:
    archive = make_image_zip(tmp_path / "cifar.zip", PER_CLASS)
    good = load_cifar10(archive)
    (cached,) = (cache / "cifar10").glob("*.pt")
    raw = bytearray(cached.read_bytes())
    if damage == "flip":  # one pixel byte in the middle: only the checksum notices
        position = raw.index(good.test.images[5].numpy().tobytes())
        raw[position + 100] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw = bytearray(b"not a cache file")
    cached.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="damaged"):
        rebuilt = load_cifar10(archive)
    assert rebuilt.fingerprint == good.fingerprint
    assert torch.equal(rebuilt.test.images, good.test.images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt cache is trusted again, silently
        load_cifar10(archive)


# --- errors ------------------------------------------------------------------------------


def test_error_empty_folder(tmp_path: Path, cache: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty") as info:
        load_cifar10(empty)
    assert str(empty) in str(info.value) and "How to fix it" in str(info.value)


def test_error_missing_path(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(tmp_path / "nope")


def test_error_images_directly_in_root(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "flat"
    make_image_folder(tmp_path / "src", 1)
    root.mkdir()
    for image in (tmp_path / "src" / "train" / "cat").iterdir():
        image.rename(root / image.name)
    with pytest.raises(DataError, match="images directly in it") as info:
        load_cifar10(root)
    assert "train/<class>/<image>" in info.value.remedy


def test_error_class_folders_without_splits(tmp_path: Path, cache: Path) -> None:
    make_image_folder(tmp_path / "src", 1, splits=("train",))
    with pytest.raises(DataError, match="class folders") as info:
        load_cifar10(tmp_path / "src" / "train")
    assert "train/" in info.value.remedy


def test_error_missing_test_split(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", 1, splits=("train",))
    with pytest.raises(DataError, match="no test/ images") as info:
        load_cifar10(root)
    assert str(root) in str(info.value)


def test_error_missing_test_zip(tmp_path: Path, cache: Path) -> None:
    folder = make_jpeg_zips(tmp_path / "shared", 1)
    (folder / "cifar10-jpeg-test.zip").unlink()
    with pytest.raises(DataError, match="cifar10-jpeg-test.zip is missing"):
        load_cifar10(folder)


def test_error_single_zip_without_test(tmp_path: Path, cache: Path) -> None:
    archive = make_image_zip(tmp_path / "train-only.zip", 1, splits=("train",))
    with pytest.raises(DataError, match="no test/ images"):
        load_cifar10(archive)


def test_error_not_cifar10_classes(tmp_path: Path, cache: Path) -> None:
    nine = make_image_folder(tmp_path / "nine", 1, classes=CLASSES[:9])
    with pytest.raises(DataError, match="no images of truck"):
        load_cifar10(nine)
    extra = make_image_folder(tmp_path / "extra", 1, classes=(*CLASSES, "unicorn"))
    with pytest.raises(DataError, match="not CIFAR-10 classes: unicorn") as info:
        load_cifar10(extra)
    assert "airplane" in info.value.remedy


def test_error_stray_folder(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", 1, splits=("train", "test", "valid"))
    with pytest.raises(DataError, match="valid/ that is not train/ or test/"):
        load_cifar10(root)


def test_error_non_image_file(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", 1)
    (root / "train" / "dog" / "labels.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="labels.csv is not an image file") as info:
        load_cifar10(root)
    assert "Move this file" in info.value.remedy


def test_error_corrupt_image(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", 1)
    bad = root / "test" / "frog" / "0000.jpg"
    truncate(bad, keep=0.3)
    with pytest.raises(DataError, match="0000.jpg is not a readable image"):
        load_cifar10(root)


def test_error_wrong_image_size(tmp_path: Path, cache: Path) -> None:
    root = make_image_folder(tmp_path / "cifar", 1, size=40)
    with pytest.raises(DataError, match="40x40 pixels; CIFAR-10 images are 32x32"):
        load_cifar10(root)


def test_error_truncated_zip(tmp_path: Path, cache: Path) -> None:
    archive = truncate(make_image_zip(tmp_path / "cifar.zip", 2))
    with pytest.raises(DataError, match="not a readable zip") as info:
        load_cifar10(archive)
    assert str(archive) in str(info.value) and "again" in info.value.remedy


def test_error_damaged_zip_member(tmp_path: Path, cache: Path) -> None:
    archive = make_image_zip(tmp_path / "cifar.zip", 1)
    with zipfile.ZipFile(archive) as handle:
        member = handle.getinfo("train/cat/0000.jpg")
    raw = bytearray(archive.read_bytes())
    raw[member.header_offset + 30 + len(member.filename) + 50] ^= 0xFF  # CRC now fails
    archive.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="damaged: cannot read train/cat/0000.jpg"):
        load_cifar10(archive)


def test_error_incomplete_torchvision_root(tmp_path: Path, cache: Path) -> None:
    root = make_torchvision_root(tmp_path / "tv", 1)
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="without data_batch_3"):
        load_cifar10(root)
    truncate(make_torchvision_root(tmp_path / "tv2", 1) / "cifar-10-batches-py" / "test_batch")
    with pytest.raises(DataError, match="test_batch is not a readable CIFAR-10 batch"):
        load_cifar10(tmp_path / "tv2")


def test_error_nothing_found_lists_every_place(nowhere: Path) -> None:
    with pytest.raises(DataError, match="No CIFAR-10 found") as info:
        load_cifar10()
    message = str(info.value)
    for label, place in data.search_locations():
        assert data.paths.display_path(place) in message, f"{label} missing from the message"
    assert "COURSE_DATA (not set)" in message
    assert "download=True" in info.value.remedy and "COURSE_DATA" in info.value.remedy


def test_error_course_data_points_nowhere(
    tmp_path: Path, nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "missing.zip"))
    with pytest.raises(DataError, match="missing.zip does not exist"):
        load_cifar10()


def test_download_is_never_tried_offline(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download while offline")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_network)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(DataError, match="download=True was ignored"):
        load_cifar10(download=True)
    with pytest.raises(DataError, match="cannot download: the course is offline"):
        load_cifar10(nowhere / "target", download=True)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Pretend to have network: torchvision's CIFAR10 writes a tiny root instead."""
    import torchvision.datasets

    calls: list[tuple[str, bool]] = []

    def fake_cifar10(root: str, train: bool, download: bool) -> None:
        assert download
        calls.append((root, train))
        make_torchvision_root(Path(root), per_class=2)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_cifar10)
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.delenv("CI", raising=False)
    return calls


def test_download_only_when_asked_and_only_once(
    nowhere: Path, online: list[tuple[str, bool]]
) -> None:
    with pytest.raises(DataError, match="No CIFAR-10 found"):
        load_cifar10()
    assert not online, "downloaded without download=True"
    splits = load_cifar10(download=True)
    assert [train for _, train in online] == [True, False]
    assert "torchvision" in splits.source and len(splits.test) == 20
    online.clear()
    assert load_cifar10(download=True).fingerprint == splits.fingerprint
    assert not online, "downloaded again although the data was there"


def test_download_into_a_given_folder(
    tmp_path: Path, nowhere: Path, online: list[tuple[str, bool]]
) -> None:
    splits = load_cifar10(tmp_path / "mine", download=True)
    assert online[0][0] == str(tmp_path / "mine")
    assert str(tmp_path / "mine") in splits.source


def test_download_failure_names_the_remedy(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_network)
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(DataError, match="Downloading CIFAR-10 into .* failed") as info:
        load_cifar10(download=True)
    assert "COURSE_DATA" in info.value.remedy


def test_allow_synthetic_says_so(nowhere: Path) -> None:
    splits = load_cifar10(allow_synthetic=True, subset=3)
    assert splits.synthetic and splits.source.startswith("synthetic")
    assert "no CIFAR-10 found" in splits.source
    assert len(splits.train) == 30


# --- synthetic ---------------------------------------------------------------------------


def test_synthetic_is_labelled_deterministic_and_shaped() -> None:
    a = synthetic_cifar10(per_class=5, seed=1)
    assert a.synthetic and a.source.startswith("synthetic")
    assert "synthetic" in a.describe()
    for split in (a.train, a.valid, a.test):
        assert split.images.shape == (50, 3, 32, 32) and split.images.dtype == torch.uint8
        assert torch.bincount(split.labels).tolist() == [5] * 10
    b = synthetic_cifar10(per_class=5, seed=1)
    c = synthetic_cifar10(per_class=5, seed=2)
    assert a.fingerprint == b.fingerprint and torch.equal(a.train.images, b.train.images)
    assert a.fingerprint != c.fingerprint
    assert not torch.equal(a.train.images, a.test.images)
    assert load_cifar10("synthetic", subset=5, seed=1).fingerprint == a.fingerprint


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a busy 2-core machine two threads run a tiny CNN 20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_synthetic_is_learnable(one_thread: None) -> None:
    """A tiny CNN separates the classes in 25 full-batch steps (chance is 10%)."""
    torch.manual_seed(0)
    splits = synthetic_cifar10(per_class=10, seed=0)
    model = nn.Sequential(
        nn.AvgPool2d(2),
        nn.Conv2d(3, 8, 3),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    images = splits.train.images.float() / 255
    losses = []
    for _ in range(25):
        loss = nn.functional.cross_entropy(model(images), splits.train.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"loss went {losses[0]:.2f} -> {losses[-1]:.2f}"
    with torch.no_grad():
        predicted = model(splits.test.images.float() / 255).argmax(1)
    accuracy = (predicted == splits.test.labels).float().mean().item()
    assert accuracy > 0.5, f"held-out accuracy {accuracy:.0%}: the classes are not learnable"


# --- datasets and loaders ----------------------------------------------------------------


def _to_float(image: torch.Tensor) -> torch.Tensor:
    return image.float() / 255


def test_transformed_images() -> None:
    splits = synthetic_cifar10(per_class=2)
    plain = TransformedImages(splits.test)
    image, label = plain[3]
    assert len(plain) == 20 and image.dtype == torch.uint8 and isinstance(label, int)
    assert label == splits.test.labels[3].item()
    scaled, _ = TransformedImages(splits.test, _to_float)[3]
    assert torch.allclose(scaled, image.float() / 255)


def _epoch_labels(loader: torch.utils.data.DataLoader) -> list[int]:
    return [label for _, labels in loader for label in labels.tolist()]


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_loaders(tmp_path: Path, cache: Path, kind: str) -> None:
    maker = make_image_folder if kind == "folder" else make_image_zip
    splits = load_cifar10(maker(tmp_path / f"cifar.{kind}", PER_CLASS))
    loaders = make_loaders(splits, _to_float, _to_float, batch_size=16)
    assert set(loaders) == {"train", "valid", "test"}
    images, labels = next(iter(loaders["test"]))
    assert images.shape == (16, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    assert sum(len(b[1]) for b in loaders["test"]) == 100
    # validation and test keep their order; training reshuffles every epoch, seeded
    assert _epoch_labels(loaders["valid"]) == splits.valid.labels.tolist()
    first, second = _epoch_labels(loaders["train"]), _epoch_labels(loaders["train"])
    assert first != second
    again = make_loaders(splits, _to_float, _to_float, batch_size=16)["train"]
    assert [_epoch_labels(again), _epoch_labels(again)] == [first, second]
    other = make_loaders(splits, _to_float, _to_float, batch_size=16, seed=9)["train"]
    assert _epoch_labels(other) != first


# --- the real CIFAR-10 in ../shared/data -------------------------------------------------


@pytest.fixture(scope="module")
def real(shared_data: Path) -> CIFAR10Splits:
    """The shared JPEG CIFAR-10, decoded once for the module (about 7 s without a cache)."""
    return load_cifar10(shared_data)


def test_real_split_sizes(real: CIFAR10Splits) -> None:
    assert (len(real.train), len(real.valid), len(real.test)) == (45_000, 5_000, 10_000)
    assert torch.bincount(real.valid.labels).tolist() == [500] * 10
    assert torch.bincount(real.train.labels).tolist() == [4500] * 10
    assert torch.bincount(real.test.labels).tolist() == [1000] * 10
    assert not real.synthetic and "cifar10-jpeg-train.zip" in real.source


def test_real_normalization_constants(real: CIFAR10Splits) -> None:
    """Re-derive NORMALIZATIONS['cifar10'] exactly, from a histogram of each channel."""
    mean, std = [], []
    for channel in range(3):
        counts = torch.bincount(real.train.images[:, channel].flatten(), minlength=256)
        values = torch.arange(256, dtype=torch.float64) / 255
        n = counts.sum().item()
        m = (counts * values).sum().item() / n
        mean.append(m)
        std.append(((counts * (values - m) ** 2).sum().item() / n) ** 0.5)  # population std
    expected_mean, expected_std = NORMALIZATIONS["cifar10"]
    assert mean == pytest.approx(expected_mean, abs=6e-6)
    assert std == pytest.approx(expected_std, abs=6e-6)


def test_real_subset_and_loader(shared_data: Path, real: CIFAR10Splits) -> None:
    small = load_cifar10(shared_data, subset=50)
    assert (len(small.train), len(small.valid), len(small.test)) == (500, 500, 500)
    assert set(small.train.labels.tolist()) == set(range(10))
    loader = make_loaders(small, _to_float, _to_float, batch_size=100)["valid"]
    images, labels = next(iter(loader))
    assert images.shape == (100, 3, 32, 32) and 0.0 <= images.min() < images.max() <= 1.0
    # The subset's validation images are images of the full validation split.
    full = {bytes(img.numpy()) for img in real.valid.images}
    assert all(bytes(img.numpy()) in full for img in small.valid.images[:50])


def test_fingerprint_is_stable_across_calls(shared_data: Path, real: CIFAR10Splits) -> None:
    again = load_cifar10(shared_data)  # from the decoded cache
    assert again.fingerprint == real.fingerprint
    assert torch.equal(again.valid.images, real.valid.images)
