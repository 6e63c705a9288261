"""Torchvision classifiers with ImageNet, local-file or random weights, and a readable summary.

One module per job:

- ``loading``: :func:`load_model`, the one entry point, and where ImageNet weights come from;
- ``offline_mobilenet``: the offline ImageNet network (Google's TFLite MobileNetV2, converted
  once by ``mobilenet_tflite`` and cached);
- ``checkpoint_files``: reading and checking a local weights file, and mismatch messages;
- ``architecture``: guessing which torchvision model a state dict belongs to;
- ``imagenet``: input preprocessing and ImageNet class names;
- ``weights_info``: :class:`WeightsInfo`, the typed description of a model's weights;
- ``batchnorm``: :func:`calibrate_batchnorm`, for fine-tuning folded-BatchNorm networks;
- ``describe``: parameter counts and the table of where they live;
- ``builders``: model names, quiet random init, building on the meta device.
"""

from course.models.batchnorm import calibrate_batchnorm
from course.models.builders import available_models, build_on_meta
from course.models.describe import (
    count_parameters,
    describe,
    trainable_parameter_names,
    trainable_parameters,
)
from course.models.imagenet import (
    IMAGENET_PREPROCESSING,
    Preprocessing,
    imagenet_classes,
    imagenet_weights_file,
)
from course.models.loading import RANDOM_LABEL, load_model
from course.models.mobilenet_tflite import install_tf_same_padding
from course.models.offline_mobilenet import offline_weights_file
from course.models.weights_info import (
    WeightsInfo,
    add_weights_note,
    attach_weights_info,
    weights_info_of,
)

__all__ = [
    "IMAGENET_PREPROCESSING",
    "RANDOM_LABEL",
    "Preprocessing",
    "WeightsInfo",
    "add_weights_note",
    "attach_weights_info",
    "available_models",
    "build_on_meta",
    "calibrate_batchnorm",
    "count_parameters",
    "describe",
    "imagenet_classes",
    "imagenet_weights_file",
    "install_tf_same_padding",
    "load_model",
    "offline_weights_file",
    "trainable_parameter_names",
    "trainable_parameters",
    "weights_info_of",
]
