"""course.reporting: the sentence under every measurement follows from its numbers."""

from __future__ import annotations

import pytest

from course.reporting import compare, mean, spread, summarize


def test_a_difference_larger_than_the_spread_is_called_real() -> None:
    text = compare("staged", [70.1, 70.9, 70.4], "joint", [68.0, 68.6, 68.3])
    assert text.startswith("staged: the higher mean test accuracy, 70.5 against 68.3 for joint")
    assert "2.2 points more" in text
    assert "larger than the seed spread (0.8 points)" in text
    assert text.endswith("the difference is real.")


def test_the_order_of_the_arguments_does_not_change_the_verdict() -> None:
    a, b = [70.1, 70.9, 70.4], [68.0, 68.6, 68.3]
    assert compare("joint", b, "staged", a) == compare("staged", a, "joint", b)


def test_a_difference_within_the_spread_is_not_evidence() -> None:
    text = compare("cosine", [61.0, 64.0, 62.5], "constant", [62.0, 63.0, 62.0])
    assert text.startswith("cosine: the higher mean")
    assert "within the seed spread (3.0 points)" in text
    assert "cannot tell the two apart" in text


def test_equal_means_and_single_runs() -> None:
    same = compare("a", [50.0, 52.0], "b", [51.0, 51.0])
    assert same.startswith("a and b: the same mean test accuracy, 51.0")
    assert "within the seed spread (2.0 points)" in same
    single = compare("scratch", [27.8], "pixels", [29.0], what="accuracy")
    assert single.startswith("pixels: the higher mean accuracy, 29.0 against 27.8 for scratch")
    assert "no seed spread was measured" in single


def test_units_digits_and_what_are_used() -> None:
    text = compare("bf16", [1.23, 1.25], "fp32", [2.0, 2.02], what="time", unit=" s", digits=2)
    assert "fp32: the higher mean time, 2.01 against 1.24 for bf16, 0.77 s more" in text
    assert "seed spread (0.02 s)" in text


def test_helpers_and_bad_input() -> None:
    assert spread([3.0]) == 0.0
    assert spread([1.0, 4.0, 2.0]) == 3.0
    assert mean([1.0, 2.0, 6.0]) == 3.0
    assert summarize([62.5, 63.9, 63.2]) == "63.2% (3 seeds: 62.5-63.9)"
    assert summarize([27.8]) == "27.8% (1 run)"
    with pytest.raises(ValueError, match="no values"):
        compare("a", [], "b", [1.0])
    with pytest.raises(ValueError, match="NaN"):
        compare("a", [float("nan")], "b", [1.0])


def test_paired_comparisons_count_the_seeds_where_the_first_is_higher() -> None:
    text = compare("tta", [56.6, 55.9, 59.8], "plain", [55.1, 56.0, 56.9], paired=True)
    assert text.endswith("Seed by seed, tta is higher on 2 of 3.")
    assert "Seed by seed" not in compare("tta", [56.6, 55.9], "plain", [55.1, 56.0])
    with pytest.raises(ValueError, match="one per seed"):
        compare("a", [1.0, 2.0], "b", [1.0], paired=True)
