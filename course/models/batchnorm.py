"""Re-estimate BatchNorm statistics on data without changing what the model computes in eval."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from course.errors import CourseError


def calibrate_batchnorm(model: nn.Module, batches: Iterable[object]) -> nn.Module:
    """Give every BatchNorm layer the statistics of ``batches``, keeping eval outputs unchanged.

    Why: a network whose BatchNorm was folded into its convolutions (the offline MobileNetV2:
    running mean 0, running variance ``1 - eps``) is exact in ``eval()`` mode, but in
    ``train()`` mode BatchNorm normalizes with the *batch's* statistics, which are nothing
    like those stored values: the features are destroyed (0% agreement with eval mode) and
    fine-tuning starts from noise. This function measures each BatchNorm's real input
    statistics on your data (mean and variance per channel, with the model in eval mode),
    stores them as running statistics, and rescales the layer's weight and bias so that the
    eval-mode output stays the same up to float rounding (about 4e-5 on MobileNetV2's logits).
    Afterwards train-mode batches from similar data are normalized almost as in eval mode,
    so the layers can be fine-tuned. (BatchNorm layers that stay frozen can instead simply
    be kept in eval mode during training.)

    The model's eval/train mode and ``requires_grad`` flags are left as they were.

    Args:
        model: any module; its BatchNorm layers must have affine weights and running stats.
        batches: images, as tensors or as ``(images, labels, ...)`` tuples (a DataLoader
            works), normalized exactly as the model's inputs will be. A few hundred images
            are plenty.

    Returns:
        The same model, calibrated in place.

    Raises:
        CourseError: no batches, or a BatchNorm layer without affine weights or running stats.
    """
    kinds = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]
    for name, bn in layers:
        if not bn.affine or not bn.track_running_stats:
            raise CourseError(
                f"BatchNorm layer {name or '(model)'} has no affine weights or no running "
                "statistics, so its output cannot be kept unchanged",
                "calibrate only models whose BatchNorm layers use the defaults "
                "(affine=True, track_running_stats=True)",
            )
    if not layers:
        return model
    sums: dict[str, list[torch.Tensor | int]] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach().to(torch.float64)
            dims = [d for d in range(x.dim()) if d != 1]  # every dimension but channels
            entry = sums.setdefault(name, [0, 0.0, 0.0])
            entry[0] += x.numel() // x.shape[1]
            entry[1] = entry[1] + x.sum(dim=dims)
            entry[2] = entry[2] + (x * x).sum(dim=dims)

        return hook

    handles = [bn.register_forward_pre_hook(record(name)) for name, bn in layers]
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()  # eval mode: each layer sees exactly the inputs it sees at test time
        with torch.no_grad():
            for batch in batches:
                images = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(images.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not sums:
        raise CourseError(
            "calibrate_batchnorm got no batches", "pass a few batches of training images"
        )
    with torch.no_grad():
        for name, bn in layers:
            if name not in sums:
                continue  # a layer the forward pass never reached
            count, total, squares = sums[name]
            mean = total / count
            var = (squares / count - mean * mean).clamp_min(0.0)
            old_scale = bn.weight.double() / (bn.running_var.double() + bn.eps).sqrt()
            # y = (x - m0) * w0 / s0 + b0 must equal (x - m1) * w1 / s1 + b1 for every x:
            # w1 = w0 * s1 / s0 and b1 = b0 + (m1 - m0) * w0 / s0.
            bn.weight.copy_(old_scale * (var + bn.eps).sqrt())
            bn.bias.copy_(bn.bias.double() + (mean - bn.running_mean.double()) * old_scale)
            bn.running_mean.copy_(mean)
            # The population variance: what train mode normalizes a large batch with.
            bn.running_var.copy_(var)
    return model
