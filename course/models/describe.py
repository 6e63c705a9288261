"""Counting parameters, and a table of where they live: what the lecture asks students to see."""

from __future__ import annotations

from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter values in ``model`` (each shared tensor counted once).

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad=True``, i.e. the ones an
            optimizer can change.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameter values that will train (``requires_grad=True``)."""
    return count_parameters(model, trainable_only=True)


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the trainable parameter tensors, e.g. ``["classifier.6.weight", ...]``."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def describe(model: nn.Module) -> str:
    """A table of parameter counts by top-level block: total, trainable and frozen.

    Works for any module. For VGG16 the blocks are ``features`` (the 13 conv layers),
    ``avgpool`` (no parameters) and ``classifier`` (fc6, fc7 and the output layer). Parameters
    that sit directly on the model (a ViT's ``class_token``) get a row of their own.
    """
    rows: list[tuple[str, str, int, int]] = []
    own = list(model.named_parameters(recurse=False))
    if own:
        rows.append(
            (
                "(own)",
                "parameters on the model itself",
                sum(p.numel() for _, p in own),
                sum(p.numel() for _, p in own if p.requires_grad),
            )
        )
    for block_name, block in model.named_children():
        rows.append(
            (block_name, type(block).__name__, count_parameters(block), trainable_parameters(block))
        )
    total, trainable = count_parameters(model), trainable_parameters(model)

    header = type(model).__name__
    label = getattr(model, "weights_label", None)
    if label:
        header += f"  (weights: {label})"
    name_w = max([len("block"), len("total")] + [len(r[0]) for r in rows])
    type_w = max([len("type")] + [len(r[1]) for r in rows])
    num_w = max(len("trainable"), len(f"{total:,}"))

    def line(block: str, kind: str, n: int | str, t: int | str, f: int | str) -> str:
        nums = [f"{v:,}" if isinstance(v, int) else v for v in (n, t, f)]
        return (
            f"{block:<{name_w}}  {kind:<{type_w}}  " + "  ".join(f"{v:>{num_w}}" for v in nums)
        ).rstrip()

    out = [header, line("block", "type", "parameters", "trainable", "frozen")]
    out.append("-" * len(out[-1]))
    out += [line(b, k, n, t, n - t) for b, k, n, t in rows]
    out.append("-" * len(out[1]))
    out.append(line("total", "", total, trainable, total - trainable))
    share = 100.0 * trainable / total if total else 0.0
    out.append(f"{share:.2f}% of the parameters will train.")
    return "\n".join(out)
