"""Where CIFAR-10 images come from: recognise a source, check its layout, decode it.

A source is one of:

- a folder with ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (the ``ImageFolder``
  layout; PNG, WebP, GIF, BMP and TIFF work too);
- a zip of such a folder, with or without one top-level folder around ``train/`` and ``test/``;
- a folder holding the two zips ``cifar10-jpeg-train.zip`` and ``cifar10-jpeg-test.zip``
  (the layout of ``../shared/data/``);
- a torchvision root: a folder holding ``cifar-10-batches-py/`` (or that folder itself),
  read directly, never downloaded.

``course.data`` decides which source to use and caches what :meth:`Source.read` decodes;
this module only reads. Every problem it can name becomes a :class:`~course.errors.DataError`
that names the file and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

try:  # deprecated in torchvision 0.29 for TorchCodec; PIL takes over once it is gone
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as _tv_decode_image
except ImportError:  # pragma: no cover
    _tv_decode_image = None

from course import paths
from course.errors import DataError

#: CIFAR-10's classes in label order (alphabetical, so ``ImageFolder`` agrees).
CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
SPLITS = ("train", "test")
TRAIN_ZIP = "cifar10-jpeg-train.zip"
TEST_ZIP = "cifar10-jpeg-test.zip"
TORCHVISION_FOLDER = "cifar-10-batches-py"
TORCHVISION_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
SIZE = 32
#: Bump when the cache file's contents change, so that old caches are ignored.
CACHE_VERSION = 1

_LAYOUT_HELP = (
    "Lay the images out as train/<class>/<image> and test/<class>/<image>, one folder per "
    "CIFAR-10 class (" + ", ".join(CLASSES) + "), or pass a torchvision root."
)


@dataclass(frozen=True)
class RawCIFAR10:
    """The decoded images of a source, before the train/valid split (uint8, N x 3 x 32 x 32)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def _is_junk(name: str) -> bool:
    """Files that operating systems and zip tools leave behind, never part of a data set."""
    parts = name.split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1] in (
        "Thumbs.db",
        "desktop.ini",
    )


def decode_image(data: bytes, name: str) -> torch.Tensor:
    """Decode one image file's bytes into a uint8 ``(3, 32, 32)`` RGB tensor.

    Args:
        data: the file's bytes.
        name: where they came from, for the error message.

    Raises:
        DataError: the bytes are not a readable image, or the image is not 32 x 32.
    """
    try:
        if _tv_decode_image is None:
            raise RuntimeError("torchvision.io cannot decode images")
        # torchvision's decoder is about 4x faster than PIL on tiny JPEGs; a bytearray
        # keeps the buffer writable, which spares a warning on stderr.
        image = _tv_decode_image(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB
        )
    except RuntimeError:
        try:  # formats torchvision does not decode (BMP, TIFF)
            with Image.open(io.BytesIO(data)) as pil:
                image = torch.from_numpy(np.array(pil.convert("RGB"))).permute(2, 0, 1)
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise DataError(
                f"{name} is not a readable image ({error}).",
                "Delete or replace this file; if many files fail, copy or download the data again.",
            ) from None
    if tuple(image.shape) != (3, SIZE, SIZE):
        raise DataError(
            f"{name} is {image.shape[-1]}x{image.shape[-2]} pixels; CIFAR-10 images are 32x32.",
            "Use the original 32x32 CIFAR-10 images (resizing happens later, in the transforms).",
        )
    return image.contiguous()


def _strip_common_folder(names: list[str]) -> tuple[str, list[str]]:
    """Drop one top-level folder that wraps everything (a zipped ``cifar10/`` folder)."""
    firsts = {n.split("/", 1)[0] for n in names}
    if len(firsts) == 1 and all("/" in n for n in names):
        (top,) = firsts
        if top not in SPLITS:
            return top + "/", [n.split("/", 1)[1] for n in names]
    return "", names


def check_layout(names: Iterable[str], where: str) -> dict[str, list[tuple[str, int]]]:
    """Sort relative file names into ``{"train": [(name, label)], "test": [...]}``.

    Args:
        names: file paths relative to the source's root, with ``/`` separators
            (folder entries and hidden files are ignored).
        where: the folder or zip they came from, for error messages.

    Raises:
        DataError: nothing there, images outside their class folders, a missing split,
            classes other than CIFAR-10's ten, or a file that is not an image.
    """
    names = sorted(n for n in names if not n.endswith("/") and not _is_junk(n))
    if not names:
        raise DataError(f"{where} is empty: it holds no image files.", _LAYOUT_HELP)
    found: dict[str, list[tuple[str, int]]] = {split: [] for split in SPLITS}
    extra: dict[str, set[str]] = {split: set() for split in SPLITS}
    for name in names:
        parts = name.split("/")
        suffix = Path(parts[-1]).suffix.lower()
        if len(parts) == 1:
            if suffix in IMAGE_SUFFIXES:
                raise DataError(
                    f"{where} has images directly in it (e.g. {name}), outside any split folder.",
                    _LAYOUT_HELP,
                )
            continue  # a README or licence file beside the splits is fine
        if parts[0] in CLASSES:
            raise DataError(
                f"{where} has class folders ({parts[0]}/, ...) directly in it.",
                "Put them under train/ (and the test images under test/): "
                "train/<class>/<image>, test/<class>/<image>.",
            )
        if parts[0] not in SPLITS:
            raise DataError(
                f"{where} has a folder {parts[0]}/ that is not train/ or test/.",
                "Keep only train/ and test/ (the validation split is carved out of train/ "
                "automatically); move other folders elsewhere.",
            )
        if len(parts) != 3:
            raise DataError(
                f"{where}/{name} is not in a class folder of its split "
                f"(expected {parts[0]}/<class>/<image>).",
                _LAYOUT_HELP,
            )
        split, cls, _ = parts
        if cls not in CLASSES:
            extra[split].add(cls)
            continue
        if suffix not in IMAGE_SUFFIXES:
            raise DataError(
                f"{where}/{name} is not an image file (images end in "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}).",
                "Move this file out of the image folders.",
            )
        found[split].append((name, CLASSES.index(cls)))
    for split in SPLITS:
        if extra[split]:
            raise DataError(
                f"{where}/{split}/ has folders that are not CIFAR-10 classes: "
                f"{', '.join(sorted(extra[split]))}.",
                f"CIFAR-10 has exactly these ten classes: {', '.join(CLASSES)}. "
                "Rename or remove the other folders.",
            )
        if not found[split]:
            raise DataError(f"{where} has no {split}/ images.", _LAYOUT_HELP)
        missing = sorted(set(CLASSES) - {CLASSES[label] for _, label in found[split]})
        if missing:
            raise DataError(
                f"{where}/{split}/ has no images of {', '.join(missing)}.",
                f"CIFAR-10 needs all ten classes in each split: {', '.join(CLASSES)}.",
            )
    return found


def _decode_all(
    entries: list[tuple[str, int]], read: Callable[[str], bytes], where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.empty((len(entries), 3, SIZE, SIZE), dtype=torch.uint8)
    labels = torch.tensor([label for _, label in entries], dtype=torch.int64)
    with warnings.catch_warnings():
        # torchvision 0.29 warns on every decode that it will move to TorchCodec: noise for
        # a student, and a failed test cell under nbgrader, which marks any stderr output.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        for i, (name, _) in enumerate(entries):
            images[i] = decode_image(read(name), f"{where}/{name}")
    return images, labels


def _decode_splits(
    found: dict[str, list[tuple[str, int]]], read: Callable[[str], bytes], where: str
) -> RawCIFAR10:
    train = _decode_all(found["train"], read, where)
    test = _decode_all(found["test"], read, where)
    return RawCIFAR10(*train, *test)


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
        """Say where the images come from, in words."""
        if self.kind == "folder":
            return f"image folders in {self.path}"
        if self.kind == "zip":
            return "zip " + " + ".join(str(f) for f in self.files)
        return f"torchvision CIFAR-10 batches in {self.files[0].parent}"

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
            return _decode_splits(found, lambda name: (self.path / name).read_bytes(), where)
        if self.kind == "zip":
            return _read_zips(self.files)
        return _read_torchvision(self.files)


def _walk(root: Path) -> list[tuple[str, os.stat_result]]:
    """Every file below ``root`` as (relative posix name, stat), hidden files left out."""
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not _is_junk(d)]
        rel_folder = Path(folder).relative_to(root).as_posix()
        for file in files:
            rel = file if rel_folder == "." else f"{rel_folder}/{file}"
            if not _is_junk(rel):
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
            members = [n for n in archive.namelist() if not n.endswith("/") and not _is_junk(n)]
            prefix, stripped = _strip_common_folder(members)
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

        return _decode_splits(found, read, where)


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
    raise DataError(f"{path} holds no CIFAR-10 images.", _LAYOUT_HELP)  # pragma: no cover


def digest(*tensors: torch.Tensor) -> str:
    """A blake2b hex digest of the tensors' raw bytes (about 0.4 s for all of CIFAR-10)."""
    hasher = hashlib.blake2b(digest_size=16)
    for tensor in tensors:
        hasher.update(tensor.contiguous().numpy())
    return hasher.hexdigest()


def load_decoded(source: Source) -> tuple[RawCIFAR10, str]:
    """Return the decoded images of ``source`` and their digest, from the cache if it is intact.

    The cache lives in ``course.paths.cache_dir()/cifar10``, keyed on the source files'
    paths, sizes and modification times; a cache whose checksum fails is decoded again.
    """
    folder = paths.cache_dir() / "cifar10"
    where = hashlib.blake2b(str(source.path.resolve()).encode(), digest_size=6).hexdigest()
    stem = f"{source.kind}-{where}"
    cache = folder / f"{stem}-{source.identity()}-v{CACHE_VERSION}.pt"
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    raw = source.read()
    checksum = digest(raw.train_images, raw.train_labels, raw.test_images, raw.test_labels)
    _write_cache(cache, raw, checksum, stale=folder.glob(f"{stem}-*.pt"))
    return raw, checksum


def _read_cache(path: Path) -> tuple[RawCIFAR10, str] | None:
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, weights_only=True)
        raw = RawCIFAR10(
            *(stored[k] for k in ("train_images", "train_labels", "test_images", "test_labels"))
        )
        for images, labels in (
            (raw.train_images, raw.train_labels),
            (raw.test_images, raw.test_labels),
        ):
            if (
                images.dtype != torch.uint8
                or images.shape[1:] != (3, 32, 32)
                or labels.dtype != torch.int64
                or len(labels) != len(images)
            ):
                raise ValueError("unexpected shapes")
        # A flipped bit or a half-written file must not slip into training unnoticed.
        if (
            digest(raw.train_images, raw.train_labels, raw.test_images, raw.test_labels)
            != stored["digest"]
        ):
            raise ValueError("checksum mismatch")
        return raw, stored["digest"]
    except Exception as error:  # any unreadable cache is rebuilt, never trusted
        warnings.warn(
            f"Decoded-image cache {path} is damaged ({error}); decoding the images again.",
            RuntimeWarning,
            stacklevel=3,
        )
        path.unlink(missing_ok=True)
        return None


def _write_cache(path: Path, raw: RawCIFAR10, checksum: str, stale: Iterable[Path]) -> None:
    stale = list(stale)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({**raw.__dict__, "digest": checksum}, tmp)
        os.replace(tmp, path)  # atomic: a reader never sees a half-written cache
        for old in stale:
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        warnings.warn(
            f"Could not cache decoded images in {path.parent} ({error}); "
            "the next load decodes them again.",
            RuntimeWarning,
            stacklevel=3,
        )
