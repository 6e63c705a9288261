"""``course.sources.member.stand_in_image``: lesson 7's image, copied from CIFAR-10 on first use."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from data_fakes import (
    TRAIN_ZIP,
    make_image_folder,
    make_image_zip,
    make_jpeg_zips,
    make_torchvision_root,
)

from course.errors import CourseError, DataError
from course.sources import member
from course.sources.member import STAND_IN, stand_in_image


def _only(monkeypatch: pytest.MonkeyPatch, *places: tuple[str, Path]) -> None:
    """Make the search see ``places`` only (not the project data or a home cache)."""
    monkeypatch.setattr(member, "search_locations", lambda: list(places))


def test_an_existing_file_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _only(monkeypatch)  # nothing to copy from: the file must not need it
    mine = tmp_path / "assets" / "my_image.jpg"
    mine.parent.mkdir()
    mine.write_bytes(b"my own photo")
    assert stand_in_image(mine) == mine
    assert mine.read_bytes() == b"my own photo"


def test_copied_unchanged_from_the_two_zips_found_through_course_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zips = make_jpeg_zips(tmp_path / "data")
    monkeypatch.setenv("COURSE_DATA", str(zips))
    with zipfile.ZipFile(zips / TRAIN_ZIP) as archive:
        expected = archive.read(STAND_IN)
    target = tmp_path / "lesson" / "assets" / "my_image.jpg"
    assert stand_in_image(target) == target
    assert target.read_bytes() == expected
    assert not list(target.parent.glob("*.part"))


def test_copied_from_an_image_folder_and_a_zip_with_a_top_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_image_folder(tmp_path / "folder")
    wrapped = make_image_zip(tmp_path / "wrapped.zip", top_folder="cifar10")
    _only(monkeypatch, ("a folder", folder))
    first = stand_in_image(tmp_path / "a.jpg", "train/cat/0001.jpg")
    assert first.read_bytes() == (folder / "train" / "cat" / "0001.jpg").read_bytes()
    _only(monkeypatch, ("a zip", wrapped))
    second = stand_in_image(tmp_path / "b.jpg", "test/ship/0002.jpg")
    with zipfile.ZipFile(wrapped) as archive:
        assert second.read_bytes() == archive.read("cifar10/test/ship/0002.jpg")


def test_places_without_the_image_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_horses = make_image_folder(tmp_path / "cats", classes=("cat",))
    half = tmp_path / "half"
    make_image_zip(half / TRAIN_ZIP, splits=("train",))  # the test zip is missing
    zips = make_jpeg_zips(tmp_path / "zips")
    _only(
        monkeypatch,
        ("torchvision", make_torchvision_root(tmp_path / "tv")),
        ("cats only", no_horses),
        ("one zip", half),
        ("both zips", zips),
    )
    target = stand_in_image(tmp_path / "my_image.jpg")
    with zipfile.ZipFile(zips / TRAIN_ZIP) as archive:
        assert target.read_bytes() == archive.read(STAND_IN)


def test_no_jpeg_source_says_to_use_your_own_photo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only(
        monkeypatch,
        ("torchvision", make_torchvision_root(tmp_path / "tv")),
        ("nothing", tmp_path / "missing"),
    )
    target = tmp_path / "assets" / "my_image.jpg"
    with pytest.raises(DataError) as caught:
        stand_in_image(target)
    message = str(caught.value)
    assert STAND_IN in message and "torchvision" in message and "nothing" in message
    assert f"put any JPEG at {target}" in message
    assert not target.exists() and not target.parent.exists()


def test_the_kit_builder_writes_the_image_from_the_training_zip(tmp_path: Path) -> None:
    from autograder.student_package import lesson_assets

    train = make_image_zip(tmp_path / TRAIN_ZIP, splits=("train",))
    files = lesson_assets(train)
    with zipfile.ZipFile(train) as archive:
        assert files["lessons/assets/my_image.jpg"] == archive.read(STAND_IN)
    assert "lessons/assets/README.md" in files
    no_horse = make_image_zip(tmp_path / "cats.zip", splits=("train",), classes=("cat",))
    with pytest.raises(CourseError, match="train/horse/0000.jpg"):
        lesson_assets(no_horse)
