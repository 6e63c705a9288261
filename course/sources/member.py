"""One CIFAR-10 image, copied byte for byte out of the JPEG data to a file of its own.

Lesson 7 predicts the class of "your own image". No photo can be committed or downloaded
here, and no CIFAR-10 image is ever committed, so :func:`stand_in_image` writes one CIFAR-10
training image to the lesson's ``assets/my_image.jpg`` the first time it is needed (the
student kit ships that file already). A file already at that path, e.g. a student's own
photo, is used as it is.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from course.data import search_locations
from course.errors import DataError
from course.paths import display_path
from course.sources.layout import is_junk, strip_common_folder
from course.sources.reading import Source, detect

#: The training image that stands in for a photo of your own (a horse).
STAND_IN = "train/horse/0000.jpg"


def _member_bytes(source: Source, member: str) -> bytes | None:
    """The bytes of ``member`` (``split/class/file``) in a JPEG source, or ``None``."""
    if source.kind == "folder":
        path = source.path / member
        return path.read_bytes() if path.is_file() else None
    if source.kind != "zip":
        return None  # a torchvision root holds pixel arrays, not image files
    for path in source.files:
        try:
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/") and not is_junk(n)]
                prefix, stripped = strip_common_folder(names)
                if member in stripped:
                    return archive.read(prefix + member)
        except (zipfile.BadZipFile, OSError, EOFError, KeyError):
            continue  # a damaged zip cannot give the image; try the next place
    return None


def stand_in_image(path: str | os.PathLike[str], member: str = STAND_IN) -> Path:
    """Return ``path``, first copying CIFAR-10's ``member`` there if nothing is there yet.

    The CIFAR-10 data is searched for in the places ``course.data.load_cifar10()`` searches
    (``$COURSE_DATA``, the torchvision roots, the kit's subset, the project data folder);
    the first image folder or JPEG zip that holds ``member`` gives its bytes, unchanged.
    Its folder is created if needed.

    Args:
        path: where the image should be, e.g. ``Path("assets") / "my_image.jpg"``.
        member: the image, as ``"<split>/<class>/<file>"`` inside the CIFAR-10 JPEG data.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        DataError: ``path`` does not exist and no CIFAR-10 JPEG source holds ``member``.
    """
    target = Path(path)
    if target.is_file():
        return target
    searched = []
    for label, place in search_locations():
        try:
            source = detect(place)
        except DataError:  # e.g. one of the two zips missing: that place cannot help
            source = None
        blob = _member_bytes(source, member) if source is not None else None
        if blob is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(blob)
            partial.replace(target)
            return target
        searched.append(f"{label} ({display_path(place)})")
    raise DataError(
        f"{target} does not exist, and no CIFAR-10 JPEG images holding {member} were found "
        "to copy it from. Searched:\n    - " + "\n    - ".join(searched),
        f"Use a photo of your own: put any JPEG at {target}. Or set COURSE_DATA to the "
        "CIFAR-10 JPEG zips (cifar10-jpeg-train.zip and cifar10-jpeg-test.zip) or a folder "
        "of train/<class>/ images.",
    )
