"""The offline ImageNet network: Google's MobileNetV2, converted once and cached.

No machine of the course can download torchvision's ImageNet weights, but Google's uint8
MobileNetV2 for TensorFlow Lite (Apache-2.0, from the public repository
google-coral/test_data, originally TensorFlow's hosted models) ships with the course data.
This module finds that file, checks it, converts it once with
``course.models.mobilenet_tflite`` and keeps the float state dict in
``course.paths.cache_dir()/weights``, keyed on the file's sha256.

Where the file is looked for, in this order:

1. ``$COURSE_PRETRAINED_DIR``: a folder holding ``mobilenet_v2_1.0_224_quant.tflite``,
   ``imagenet_labels.txt`` and ``LICENSE`` (the student kit ships that folder). When the
   variable is set, the file must be there: a wrong setting is reported, never skipped.
2. ``course.paths.shared_data_dir()/mobilenet-v2-imagenet`` (``../shared/data`` beside a
   checkout).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from course import paths
from course.errors import WeightsError
from course.models.imagenet import Preprocessing
from course.models.messages import short_error
from course.models.mobilenet_tflite import convert_tflite, install_tf_same_padding

#: The environment variable naming a folder with the TFLite file.
PRETRAINED_DIR_ENV = "COURSE_PRETRAINED_DIR"
#: The folder's name under ``../shared/data``.
SHARED_FOLDER = "mobilenet-v2-imagenet"
TFLITE_FILE = "mobilenet_v2_1.0_224_quant.tflite"
#: sha256 of the one file the converter is written for (3,610,798 bytes).
TFLITE_SHA256 = "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
#: The ``weights_label`` of the converted model.
LABEL = "imagenet (MobileNetV2 from Google's uint8 TFLite file)"
#: What the file expects: uint8 pixels p mapped to (p - 128) / 128.
PREPROCESSING = Preprocessing(
    mean=(128 / 255,) * 3,
    std=(128 / 255,) * 3,
    label="(pixel - 128) / 128, as Google's TFLite MobileNetV2 expects",
)
#: Bump when the conversion changes, so that old cached state dicts are ignored.
CONVERTER_VERSION = 2

#: How to provide the file, for error messages.
PROVIDE_FILE = (
    f"put {TFLITE_FILE} (with imagenet_labels.txt and LICENSE, from the course data folder "
    f"{SHARED_FOLDER}/) into a folder and set {PRETRAINED_DIR_ENV} to it"
)
_REMEDY = f"{PROVIDE_FILE}, or use weights='random' (no pretrained weights)"


def offline_weights_file() -> Path | None:
    """The TFLite file to convert, or ``None`` when no place holds it.

    Raises:
        WeightsError: ``$COURSE_PRETRAINED_DIR`` is set but does not hold the file.
    """
    env = os.environ.get(PRETRAINED_DIR_ENV, "").strip()
    if env:
        file = Path(env).expanduser() / TFLITE_FILE
        if not file.is_file():
            raise WeightsError(
                f"{PRETRAINED_DIR_ENV}={env} does not hold {TFLITE_FILE} (missing file {file})",
                f"point {PRETRAINED_DIR_ENV} at the folder that holds {TFLITE_FILE}, or unset "
                "it to use the course's data folder",
            )
        return file
    kit = paths.kit_pretrained_dir()  # the student kit's pretrained/ folder, found by its marker
    if kit is not None and (kit / TFLITE_FILE).is_file():
        return kit / TFLITE_FILE
    shared = paths.shared_data_dir()
    if shared is not None and (shared / SHARED_FOLDER / TFLITE_FILE).is_file():
        return shared / SHARED_FOLDER / TFLITE_FILE
    return None


def missing_file_text() -> tuple[str, str]:
    """(where it was looked for, how to provide it), for errors of callers that found none."""
    shared = paths.shared_data_dir()
    places = [f"${PRETRAINED_DIR_ENV} (not set)"]
    places.append(
        str(shared / SHARED_FOLDER) if shared else f"../shared/data/{SHARED_FOLDER} (absent)"
    )
    return f"{TFLITE_FILE} is in none of: {', '.join(places)}", _REMEDY


def sha256_of(path: Path) -> str:
    """The file's sha256 as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_state_file(sha256: str) -> Path:
    """Where the converted float state dict of the file with this sha256 is kept."""
    name = f"mobilenet_v2-tflite-{sha256[:16]}-v{CONVERTER_VERSION}.pt"
    return paths.cache_dir() / "weights" / name


def load_offline_mobilenet_v2(file: Path | None = None) -> nn.Module:
    """Torchvision's ``mobilenet_v2`` holding Google's ImageNet weights (1000 classes).

    Converts the TFLite file on first use (about a second) and reads the cached state dict
    afterwards. The model returns in training mode, as torchvision returns its models; its
    BatchNorm layers are folded (identity plus bias) and belong in ``eval()`` mode unless
    ``course.models.calibrate_batchnorm`` has re-estimated their statistics.

    Args:
        file: the TFLite file; ``None`` finds it (see the module docstring).

    Returns:
        The model, with ``weights_label``, ``preprocessing`` and ``weights_file`` (the TFLite
        file it came from) set.

    Raises:
        WeightsError: file missing, not the expected file (sha256), or not convertible.
    """
    if file is None:
        file = offline_weights_file()
        if file is None:
            raise WeightsError(*missing_file_text())
    if not file.is_file():
        raise WeightsError(f"missing file {file}", _REMEDY)
    sha = sha256_of(file)
    if sha != TFLITE_SHA256:
        raise WeightsError(
            f"{file} is not the expected MobileNetV2 file: its sha256 is {sha}, expected "
            f"{TFLITE_SHA256} (a truncated or damaged copy, or another file)",
            f"copy {TFLITE_FILE} again in full from the course data folder {SHARED_FOLDER}/ "
            "(its README lists the sha256), or use weights='random'",
        )
    cache = cached_state_file(sha)
    model = _build_from_cache(cache, sha)
    if model is None:
        state = convert_tflite(file)
        _write_cached(cache, state, sha)
        model = _build(state)
    model.weights_label = LABEL
    model.preprocessing = PREPROCESSING
    model.weights_file = file
    return model


def _build(state: dict[str, torch.Tensor]) -> nn.Module:
    # On the meta device, then allocated without init: every tensor comes from the state dict.
    with torch.device("meta"):
        model = mobilenet_v2()
    model = model.to_empty(device="cpu")
    model.load_state_dict(state)
    install_tf_same_padding(model)  # hooks are not in the state dict: install on every load
    return model


def _digest(state: dict[str, torch.Tensor]) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for key, tensor in state.items():
        hasher.update(key.encode())
        hasher.update(tensor.contiguous().view(-1).view(torch.uint8).numpy())
    return hasher.hexdigest()


def _build_from_cache(path: Path, sha256: str) -> nn.Module | None:
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        state = stored["state_dict"]
        # A flipped bit or another file under this name must not slip in unnoticed.
        if stored["source_sha256"] != sha256 or stored["digest"] != _digest(state):
            raise ValueError("checksum mismatch")
        return _build(state)
    except Exception as err:  # any unreadable cache is converted again, never trusted
        warnings.warn(
            f"Converted-weights cache {path} is damaged ({short_error(err)}); converting the "
            "TFLite file again.",
            RuntimeWarning,
            stacklevel=3,
        )
        path.unlink(missing_ok=True)
        return None


def _write_cached(path: Path, state: dict[str, torch.Tensor], sha256: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": state, "source_sha256": sha256, "digest": _digest(state)}, tmp)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees a half-written file
    except OSError as err:
        tmp.unlink(missing_ok=True)
        warnings.warn(
            f"Could not cache the converted weights in {path.parent} ({err}); the next load "
            "converts the TFLite file again.",
            RuntimeWarning,
            stacklevel=3,
        )
