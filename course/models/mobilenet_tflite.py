"""Convert Google's uint8 TFLite MobileNetV2 into a float torchvision ``mobilenet_v2`` state dict.

The file (``mobilenet_v2_1.0_224_quant.tflite``) is a quantization-aware-trained MobileNetV2.
Its 53 convolutions (``CONV_2D`` and ``DEPTHWISE_CONV_2D``, the last one being the classifier)
map in graph order onto torchvision's 52 convolutions plus ``classifier.1``:

- weights are dequantized as ``(q - zero_point) * scale``; biases are int32 with zero point 0;
- layouts: convolution OHWI -> OIHW, depthwise 1HWC -> C1HW, classifier OHWI -> (O, I);
- BatchNorm is already folded into each convolution's weights and bias, so every torchvision
  BatchNorm becomes the identity plus that bias: weight 1, bias b, running mean 0, running
  var ``1 - eps`` (exact in ``eval()`` mode; see ``course.models.calibrate_batchnorm`` for
  training);
- 1001 outputs (0 = "background") become ImageNet's 1000: TF class ``i + 1`` is class ``i``.

TensorFlow pads ``SAME`` convolutions asymmetrically: a 3x3 stride-2 convolution on an even
input gets its extra row and column at the bottom and right, where torchvision pads one on
each side. :func:`install_tf_same_padding` reproduces TF's padding with a forward pre-hook;
without it top-1 agreement with the TFLite interpreter falls from about 88% to about 30%.
Hooks are not part of a state dict, so it must be installed on every model that receives
these weights (``course.models.load_model`` does).

Needs the pure-Python ``tflite`` package (with ``flatbuffers`` and ``numpy``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course.errors import WeightsError
from course.models.builders import try_build_on_meta
from course.models.messages import short_error

#: TFLite tensor types that appear in this file, as numpy dtypes.
_NUMPY_TYPES = {0: np.float32, 2: np.int32, 3: np.uint8, 9: np.int8}
_SAME = 0  # tflite.Padding.SAME


@dataclass(frozen=True)
class TFLiteConv:
    """One convolution of the graph, dequantized, in TFLite's own layout."""

    op: str  # "CONV_2D" or "DEPTHWISE_CONV_2D"
    name: str  # the weight tensor's name, for error messages
    weight: np.ndarray  # float32, OHWI (conv) or 1HWC (depthwise)
    bias: np.ndarray  # float32, (O,)
    stride: tuple[int, int]
    same_padding: bool


def _dequantize(model: object, tensor: object) -> np.ndarray:
    """A tensor's stored values as float32: ``(q - zero_point) * scale`` per tensor or axis."""
    dtype = _NUMPY_TYPES.get(tensor.Type())
    if dtype is None:
        raise ValueError(f"tensor {tensor.Name().decode()} has unsupported type {tensor.Type()}")
    raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
    shape = tuple(int(s) for s in tensor.ShapeAsNumpy())
    values = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(shape).astype(np.float32)
    quant = tensor.Quantization()
    if quant is None or quant.ScaleLength() == 0:
        return values
    scale = quant.ScaleAsNumpy().astype(np.float32)
    zero = (
        quant.ZeroPointAsNumpy().astype(np.float32)
        if quant.ZeroPointLength()
        else np.zeros_like(scale)
    )
    if scale.size > 1:  # per-channel quantization along one axis
        axis = quant.QuantizedDimension()
        view = [1] * values.ndim
        view[axis] = scale.size
        scale, zero = scale.reshape(view), zero.reshape(view)
    return (values - zero) * scale


def read_convolutions(data: bytes) -> list[TFLiteConv]:
    """Every convolution of a TFLite model's first graph, in graph order, dequantized.

    Raises:
        ValueError (or the flatbuffer reader's own errors): the bytes are not such a model.
    """
    import tflite  # imported here: only the conversion needs it, not every model load

    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError("the model has no graph")
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    convs = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        options = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        weight = graph.Tensors(op.Inputs(1))
        convs.append(
            TFLiteConv(
                op=kind,
                name=weight.Name().decode(errors="replace"),
                weight=_dequantize(model, weight),
                bias=_dequantize(model, graph.Tensors(op.Inputs(2))),
                stride=(options.StrideH(), options.StrideW()),
                same_padding=options.Padding() == _SAME,
            )
        )
    return convs


def _layers(model: nn.Module) -> Iterator[tuple[str, nn.Module, str | None]]:
    """Each convolution / linear layer, with the name of the BatchNorm right after it."""
    modules = list(model.named_modules())
    for i, (name, module) in enumerate(modules):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            after = modules[i + 1] if i + 1 < len(modules) else None
            bn = after[0] if after and isinstance(after[1], nn.BatchNorm2d) else None
            yield name, module, bn


def to_torchvision(convs: list[TFLiteConv]) -> dict[str, torch.Tensor]:
    """Map the TFLite convolutions onto torchvision ``mobilenet_v2``'s state dict (1000 classes).

    Raises:
        ValueError: the convolutions do not match MobileNetV2 1.0 (count, kind, shape, stride).
    """
    reference = try_build_on_meta("mobilenet_v2", {})
    if reference is None:  # pragma: no cover - torchvision builds it on meta today
        raise RuntimeError("torchvision's mobilenet_v2 cannot be built on the meta device")
    layers = list(_layers(reference))
    if len(convs) != len(layers):
        raise ValueError(
            f"it has {len(convs)} convolutions where MobileNetV2 1.0 has {len(layers)}"
        )
    state: dict[str, torch.Tensor] = {}
    for conv, (name, module, bn) in zip(convs, layers, strict=True):
        if isinstance(module, nn.Linear):  # the classifier, a 1x1 conv in TF, with background
            weight = conv.weight.reshape(conv.weight.shape[0], -1)[1:]
            bias = conv.bias[1:]
        elif module.groups == 1:
            weight, bias = conv.weight.transpose(0, 3, 1, 2), conv.bias  # OHWI -> OIHW
        else:
            weight, bias = conv.weight.transpose(3, 0, 1, 2), conv.bias  # 1HWC -> C1HW
        depthwise = isinstance(module, nn.Conv2d) and module.groups > 1
        if (conv.op == "DEPTHWISE_CONV_2D") != depthwise:
            raise ValueError(f"{conv.name} is a {conv.op} where torchvision has {name}")
        if tuple(weight.shape) != tuple(module.weight.shape):
            raise ValueError(
                f"{conv.name} has shape {list(weight.shape)} where torchvision's {name} has "
                f"{list(module.weight.shape)}"
            )
        stride = getattr(module, "stride", (1, 1))
        if tuple(conv.stride) != tuple(stride) or not conv.same_padding:
            raise ValueError(f"{conv.name} has stride {conv.stride} where {name} has {stride}")
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        if bn is None:
            state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
            continue
        # BatchNorm is folded into the conv: make torchvision's BN the identity plus the bias.
        eps = reference.get_submodule(bn).eps
        channels = bias.shape[0]
        state[f"{bn}.weight"] = torch.ones(channels)
        state[f"{bn}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
        state[f"{bn}.running_mean"] = torch.zeros(channels)
        state[f"{bn}.running_var"] = torch.full((channels,), 1.0 - eps)
        state[f"{bn}.num_batches_tracked"] = torch.tensor(0)
    expected = reference.state_dict()
    if set(state) != set(expected):  # pragma: no cover - guarded by the checks above
        raise ValueError("the converted keys do not cover torchvision's mobilenet_v2")
    return {
        k: state[k].to(torch.float32) if state[k].is_floating_point() else state[k]
        for k in expected
    }


def convert_tflite(path: Path) -> dict[str, torch.Tensor]:
    """Read Google's uint8 MobileNetV2 TFLite file into a float torchvision state dict.

    Raises:
        WeightsError: the ``tflite`` package is missing, or the file cannot be parsed or
            is not MobileNetV2 1.0.
    """
    try:
        import tflite  # noqa: F401
    except ImportError as err:
        raise WeightsError(
            f"reading {path} needs the Python package 'tflite', which is not installed",
            "install it with: pip install tflite flatbuffers",
        ) from err
    try:
        convs = read_convolutions(path.read_bytes())
        return to_torchvision(convs)
    except Exception as err:
        raise WeightsError(
            f"{path} could not be converted: it is not Google's MobileNetV2 1.0 TFLite file "
            f"({short_error(err)})",
            "copy mobilenet_v2_1.0_224_quant.tflite again from the course's data folder "
            "(its README gives the sha256), or use weights='random'",
        ) from err


def tf_same_padding(module: nn.Conv2d, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Forward pre-hook: pad the input as TensorFlow's ``SAME`` does (extra at bottom/right).

    For a 3x3 stride-2 convolution on an even size this is ``(0, 1, 0, 1)``; the formula covers
    odd sizes too. The convolution itself must have ``padding=0``.
    """
    x, *rest = args
    pads: list[int] = []
    # F.pad takes the last dimension first: (left, right, top, bottom).
    for size, k, s, d in reversed(
        list(zip(x.shape[-2:], module.kernel_size, module.stride, module.dilation, strict=True))
    ):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return (F.pad(x, pads), *rest)


def install_tf_same_padding(model: nn.Module) -> list[str]:
    """Give every strided, larger-than-1x1 convolution TensorFlow's ``SAME`` padding.

    Sets ``padding=0`` and registers :func:`tf_same_padding` as a forward pre-hook (a module
    level function, so ``copy.deepcopy`` and pickling keep it). Calling it again changes
    nothing. Returns the names of the convolutions it applies to (five in MobileNetV2).
    """
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d) or max(module.stride) == 1:
            continue
        if max(module.kernel_size) == 1:
            continue
        names.append(name)
        if getattr(module, "tf_same_padding", False):
            continue
        module.padding = (0, 0)
        module.register_forward_pre_hook(tf_same_padding)
        module.tf_same_padding = True  # a marker, so a second call adds no second hook
    return names
