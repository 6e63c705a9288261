"""One sentence from a measurement's own numbers: which is larger, by how much, is it noise?

Every measurement cell of the lessons ends with such a sentence, computed here, so that the
text under a table can never claim what the numbers do not show. The rule is deliberately
simple and stated in every sentence: the *seed spread* of a set of runs is the range (largest
minus smallest) of its values, and a difference between two means counts as larger than the
noise only when it exceeds the larger of the two spreads. With a single run on one side no
spread was measured, and the sentence says so instead of judging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def spread(values: Sequence[float]) -> float:
    """The range of ``values`` (largest minus smallest); 0.0 for a single value.

    Raises:
        ValueError: ``values`` is empty or holds a NaN.
    """
    numbers = _checked(values, "values")
    return max(numbers) - min(numbers)


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean of ``values``.

    Raises:
        ValueError: ``values`` is empty or holds a NaN.
    """
    numbers = _checked(values, "values")
    return sum(numbers) / len(numbers)


def summarize(values: Sequence[float], *, unit: str = "%", digits: int = 1) -> str:
    """``"63.2% (3 seeds: 62.5-63.9)"``: the mean, how many runs, and their range."""
    numbers = _checked(values, "values")
    m = f"{mean(numbers):.{digits}f}{unit}"
    if len(numbers) == 1:
        return f"{m} (1 run)"
    return f"{m} ({len(numbers)} seeds: {min(numbers):.{digits}f}-{max(numbers):.{digits}f})"


def compare(
    name_a: str,
    values_a: Sequence[float],
    name_b: str,
    values_b: Sequence[float],
    *,
    what: str = "test accuracy",
    unit: str = " points",
    digits: int = 1,
    paired: bool = False,
) -> str:
    """One sentence comparing two sets of runs (e.g. the test accuracies of 3 seeds each).

    The sentence names the larger mean, the difference, and whether that difference exceeds
    the seed spread (the larger of the two ranges, see the module docstring). Example::

        compare("staged", [70.1, 70.9, 70.4], "joint", [68.0, 68.6, 68.3])
        # staged: the higher mean test accuracy, 70.5 against 68.3 for joint, 2.2 points
        # more; that is larger than the seed spread (0.8 points), so on these seeds the
        # difference is real.

    Args:
        name_a: what the first set of runs is (e.g. ``"warm-up + cosine"``).
        values_a: its values, one per seed.
        name_b: the second set's name.
        values_b: its values.
        what: the measured quantity, as the sentence names it.
        unit: the unit of a *difference* (``" points"`` for percentages, ``" s"`` ...).
        digits: decimals shown.
        paired: the i-th values of both sets come from the same seed (same start, same
            batches): one more sentence says on how many seeds the first set is higher.

    Raises:
        ValueError: a set of values is empty or holds a NaN, or ``paired`` sets differ
            in length.
    """
    a, b = _checked(values_a, name_a), _checked(values_b, name_b)
    mean_a, mean_b = mean(a), mean(b)
    noise = max(spread(a), spread(b))
    diff = abs(mean_a - mean_b)
    f = f".{digits}f"
    if round(diff, digits) == 0:
        head = f"{name_a} and {name_b}: the same mean {what}, {mean_a:{f}}"
    else:
        (hi, hi_mean), (lo, lo_mean) = sorted(
            [(name_a, mean_a), (name_b, mean_b)], key=lambda pair: pair[1], reverse=True
        )
        head = (
            f"{hi}: the higher mean {what}, {hi_mean:{f}} against {lo_mean:{f}} for {lo}, "
            f"{diff:{f}}{unit} more"
        )
    if paired and len(a) != len(b):
        raise ValueError(f"paired values need one per seed on both sides: {len(a)} != {len(b)}")
    if len(a) == 1 and len(b) == 1:
        return f"{head}; one run each, so no seed spread was measured: this is not yet evidence."
    if diff > noise:
        verdict = (
            f"{head}; that is larger than the seed spread ({noise:{f}}{unit}), "
            "so on these seeds the difference is real."
        )
    else:
        verdict = (
            f"{head}; that is within the seed spread ({noise:{f}}{unit}), "
            "so these seeds cannot tell the two apart."
        )
    if paired:
        higher = sum(x > y for x, y in zip(a, b, strict=True))
        verdict += f" Seed by seed, {name_a} is higher on {higher} of {len(a)}."
    return verdict


def _checked(values: Sequence[float], name: str) -> list[float]:
    numbers = [float(v) for v in values]
    if not numbers:
        raise ValueError(f"{name}: no values to compare")
    if any(math.isnan(v) for v in numbers):
        raise ValueError(f"{name}: a value is NaN ({numbers})")
    return numbers
