"""CIFAR-10 image sources, one module per job.

- ``layout``: the ``train/<class>/<image>`` layout and the messages that explain it;
- ``reading``: recognising a source (folder, zip, the two zips, a torchvision root) and
  reading its files;
- ``decoding``: image bytes to uint8 ``3 x 32 x 32`` tensors;
- ``cache``: decoding once, reusing the tensors while the source is unchanged.

``course.data`` decides which source to use and loads it through :func:`load_decoded`.
"""

from course.sources.cache import CACHE_VERSION, digest, load_decoded
from course.sources.decoding import SIZE, RawCIFAR10, decode_image
from course.sources.layout import CLASSES, IMAGE_SUFFIXES, SPLITS, check_layout
from course.sources.reading import (
    TEST_ZIP,
    TORCHVISION_BATCHES,
    TORCHVISION_FOLDER,
    TRAIN_ZIP,
    Source,
    detect,
    open_source,
)

__all__ = [
    "CACHE_VERSION",
    "CLASSES",
    "IMAGE_SUFFIXES",
    "SIZE",
    "SPLITS",
    "TEST_ZIP",
    "TORCHVISION_BATCHES",
    "TORCHVISION_FOLDER",
    "TRAIN_ZIP",
    "RawCIFAR10",
    "Source",
    "check_layout",
    "decode_image",
    "detect",
    "digest",
    "load_decoded",
    "open_source",
]
