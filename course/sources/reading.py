"""Where CIFAR-10 images come from: recognise a source, check its layout, read it.

A source is one of:

- a folder with ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (the ``ImageFolder``
  layout; PNG, WebP, GIF, BMP and TIFF work too);
- a zip of such a folder, with or without one top-level folder around ``train/`` and ``test/``;
- a folder holding the two zips ``cifar10-jpeg-train.zip`` and ``cifar10-jpeg-test.zip``
  (the layout of the project data folder);
- a torchvision root: a folder holding ``cifar-10-batches-py/`` (or that folder itself),
  read directly, never downloaded.

Every problem it can name becomes a :class:`~course.errors.DataError` that names the file and
the fix. Decoding is ``course.sources.decoding``'s job, caching ``course.sources.cache``'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from course.errors import DataError
from course.paths import display_path, kit_data_dir
from course.sources.decoding import SIZE, RawCIFAR10, decode_splits
from course.sources.layout import (
    LAYOUT_HELP,
    SPLITS,
    check_layout,
    is_junk,
    strip_common_folder,
)

TRAIN_ZIP = "cifar10-jpeg-train.zip"

TEST_ZIP = "cifar10-jpeg-test.zip"

TORCHVISION_FOLDER = "cifar-10-batches-py"

TORCHVISION_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _stat_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


@dataclass(frozen=True)
class Source:
    """A place that holds CIFAR-10, recognised but not yet read.

    Attributes:
        kind: ``"folder"``, ``"zip"`` (one zip, or the train and test zips) or
            ``"torchvision"``.
        path: the folder or zip the user (or the search) named.
        files: the zips or batch files that are read; empty for a folder.
    """

    kind: str
    path: Path
    files: tuple[Path, ...] = ()

    def describe(self) -> str:
        """Say where the images come from, in words.

        Known places are named in words (``course.paths.display_path``): the kit's data, the
        project data folder, the course cache. A build machine's paths never show.
        """
        if self.kind == "folder":
            return f"image folders in {display_path(self.path)}"
        if self.kind == "zip":
            parents = {f.parent for f in self.files}
            if len(parents) == 1:
                names = " + ".join(f.name for f in self.files)
                return f"zip {names} in {display_path(parents.pop())}"
            return "zip " + " + ".join(display_path(f) for f in self.files)
        return f"torchvision CIFAR-10 batches in {display_path(self.files[0].parent)}"

    @property
    def in_kit(self) -> bool:
        """True when the images are the student kit's CIFAR-10 subset."""
        kit = kit_data_dir()
        if kit is None:
            return False
        try:
            self.path.resolve().relative_to(kit.resolve())
        except ValueError:
            return False
        return True

    def identity(self) -> str:
        """A hash of the source files' paths, sizes and modification times (the cache key)."""
        if self.kind == "folder":
            keys = [f"{rel}|{st.st_size}|{st.st_mtime_ns}" for rel, st in sorted(_walk(self.path))]
        else:
            keys = [_stat_key(f) for f in self.files]
        text = "\n".join([self.kind, str(self.path.resolve()), *keys])
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def read(self) -> RawCIFAR10:
        """Decode every image (all 60,000: 7 s on a quiet 2-core CPU, 25 s on a busy one)."""
        if self.kind == "folder":
            where = str(self.path)
            found = check_layout((rel for rel, _ in _walk(self.path)), where)
            return decode_splits(found, lambda name: (self.path / name).read_bytes(), where)
        if self.kind == "zip":
            return _read_zips(self.files)
        return _read_torchvision(self.files)


def _walk(root: Path) -> list[tuple[str, os.stat_result]]:
    """Every file below ``root`` as (relative posix name, stat), hidden files left out."""
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not is_junk(d)]
        rel_folder = Path(folder).relative_to(root).as_posix()
        for file in files:
            rel = file if rel_folder == "." else f"{rel_folder}/{file}"
            if not is_junk(rel):
                out.append((rel, os.stat(os.path.join(folder, file))))
    return out


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DataError(
            f"{path} is not a readable zip file ({error}); it may be truncated or damaged.",
            "Copy or download it again in full (the data README lists the sha256 of each zip).",
        ) from None


def _read_zips(paths: tuple[Path, ...]) -> RawCIFAR10:
    with contextlib.ExitStack() as stack:
        names: list[str] = []
        owner: dict[str, tuple[zipfile.ZipFile, str, Path]] = {}
        for path in paths:
            archive = stack.enter_context(_open_zip(path))
            members = [n for n in archive.namelist() if not n.endswith("/") and not is_junk(n)]
            prefix, stripped = strip_common_folder(members)
            for name in stripped:
                names.append(name)
                owner[name] = (archive, prefix + name, path)
        where = " + ".join(str(p) for p in paths)
        found = check_layout(names, where)

        def read(name: str) -> bytes:
            archive, member, path = owner[name]
            try:
                return archive.read(member)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
                raise DataError(
                    f"{path} is damaged: cannot read {member} ({error}).",
                    "Copy or download the zip again in full.",
                ) from None

        return decode_splits(found, read, where)


def _read_torchvision(files: tuple[Path, ...]) -> RawCIFAR10:
    splits: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    for path in files:
        try:
            with open(path, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, SIZE, SIZE)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
            if len(labels) != len(data) or not ((labels >= 0) & (labels < 10)).all():
                raise ValueError("its labels do not match its images")
        except (
            OSError,
            EOFError,
            pickle.UnpicklingError,
            KeyError,
            ValueError,
            TypeError,
        ) as error:
            raise DataError(
                f"{path} is not a readable CIFAR-10 batch file ({error}).",
                f"Delete the {TORCHVISION_FOLDER} folder and download it again "
                "(load_cifar10(download=True)).",
            ) from None
        splits["test" if path.name == "test_batch" else "train"].append((data, labels))
    tensors = []
    for split in SPLITS:
        tensors.append(torch.from_numpy(np.concatenate([d for d, _ in splits[split]])))
        tensors.append(torch.from_numpy(np.concatenate([lab for _, lab in splits[split]])))
    return RawCIFAR10(*tensors)


def detect(path: Path) -> Source | None:
    """Recognise a CIFAR-10 source at ``path``, or return ``None`` if none is there.

    Nothing is read beyond folder listings: a damaged source is found here and
    fails later, in :meth:`Source.read`, with a message about what is wrong.
    """
    if path.is_file():
        return Source("zip", path, (path,)) if path.suffix.lower() == ".zip" else None
    if not path.is_dir():
        return None
    for tv_folder in (path / TORCHVISION_FOLDER, path):
        if tv_folder.name == TORCHVISION_FOLDER and tv_folder.is_dir():
            return _torchvision_source(path, tv_folder)
    if (path / TRAIN_ZIP).is_file() or (path / TEST_ZIP).is_file():
        for name in (TRAIN_ZIP, TEST_ZIP):
            if not (path / name).is_file():
                raise DataError(
                    f"{path} holds only one of the two CIFAR-10 zips: {name} is missing.",
                    f"Put both {TRAIN_ZIP} and {TEST_ZIP} in {path}.",
                )
        return Source("zip", path, (path / TRAIN_ZIP, path / TEST_ZIP))
    if any((path / split).is_dir() for split in SPLITS):
        return Source("folder", path)
    return None


def _torchvision_source(root: Path, folder: Path) -> Source:
    files = tuple(folder / name for name in TORCHVISION_BATCHES)
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(
            f"{folder} is a torchvision CIFAR-10 folder without {', '.join(missing)}.",
            f"Delete {folder} and download it again (load_cifar10(download=True)), "
            "or point COURSE_DATA at a complete copy.",
        )
    return Source("torchvision", root, files)


def open_source(path: Path) -> Source:
    """Like :func:`detect`, but say exactly why ``path`` is not a CIFAR-10 source.

    Raises:
        DataError: ``path`` does not exist, is empty, or is laid out differently.
    """
    if not path.exists():
        raise DataError(
            f"{path} does not exist.",
            "Check the path (or COURSE_DATA); it should be a folder with train/ and test/, "
            "a zip of one, a folder with the two CIFAR-10 zips, or a torchvision root.",
        )
    source = detect(path)
    if source is not None:
        return source
    if path.is_file():
        raise DataError(
            f"{path} is a file but not a zip.",
            "Pass a zip of train/<class>/ and test/<class>/ folders, or the folder itself.",
        )
    # No split folders: check_layout explains what is there instead (empty, loose images,
    # class folders at the top, a stray folder).
    check_layout((rel for rel, _ in _walk(path)), str(path))
    raise DataError(f"{path} holds no CIFAR-10 images.", LAYOUT_HELP)  # pragma: no cover
