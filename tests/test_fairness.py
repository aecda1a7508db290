"""Fairness metrics by hand on tiny two- and three-group examples."""

import math

import pytest

from cmrbias_dagster.lib.analysis.fairness import (
    accuracy_parity_ratio,
    fairness_metrics,
    group_means,
    group_medians,
)

TWO_GROUPS = ([0.9, 0.8, 0.7, 0.6, 0.5], ["a", "a", "b", "b", "b"])
THREE_GROUPS = ([0.9, 0.8, 0.7, 0.5], ["a", "b", "c", "c"])


def test_group_means_and_medians() -> None:
    assert group_means(*TWO_GROUPS) == pytest.approx({"a": 0.85, "b": 0.6})
    assert group_medians(*THREE_GROUPS) == pytest.approx({"a": 0.9, "b": 0.8, "c": 0.6})


def test_fairness_two_groups() -> None:
    # means a 0.85, b 0.6; overall 3.5 / 5 = 0.7; medians equal the means here.
    expected = {
        "sd_of_group_means": 0.125,  # |0.85 - 0.6| / 2 (ddof=0)
        "skewed_error_ratio": 0.4 / 0.15,  # errors 0.15 and 0.4
        "es_dice": 0.7 / (1 + 0.15 + 0.1),  # = 0.56
        "parity_gap": 0.25,
    }
    assert fairness_metrics(*TWO_GROUPS) == pytest.approx(expected)


def test_fairness_three_groups() -> None:
    # means 0.9, 0.8, 0.6 (mean of means 2.3 / 3); overall 2.9 / 4 = 0.725.
    # deviations 0.4/3, 0.1/3, -0.5/3 -> variance (0.16 + 0.01 + 0.25) / 9 / 3 = 0.14 / 9.
    expected = {
        "sd_of_group_means": math.sqrt(0.14) / 3,
        "skewed_error_ratio": 0.4 / 0.1,
        "es_dice": 0.725 / (1 + 0.175 + 0.075 + 0.125),
        "parity_gap": 0.9 - 0.6,
    }
    assert fairness_metrics(*THREE_GROUPS) == pytest.approx(expected)


def test_nan_scores_dropped() -> None:
    scores, groups = TWO_GROUPS
    with_nan = fairness_metrics([*scores, math.nan], [*groups, "a"])
    assert with_nan == pytest.approx(fairness_metrics(scores, groups))


@pytest.mark.parametrize(
    ("scores", "ser"), [([1.0, 0.9], math.inf), ([1.0, 1.0], 1.0), ([0.8, 0.9], 2.0)]
)
def test_skewed_error_ratio_edges(scores: list[float], ser: float) -> None:
    assert fairness_metrics(scores, ["a", "b"])["skewed_error_ratio"] == pytest.approx(ser)


def test_mismatched_lengths_rejected() -> None:
    with pytest.raises(ValueError, match="group labels"):
        fairness_metrics([0.9, 0.8], ["a"])


@pytest.mark.parametrize(
    ("table", "ratio"),
    [
        (
            {
                0: {"white": 0.90, "black": 0.80},
                25: {"white": 0.89, "black": 0.84},
                50: {"white": 0.88, "black": 0.85},
                75: {"white": 0.87, "black": 0.86},
                100: {"white": 0.84, "black": 0.88},
            },
            75,
        ),
        ({0: {"m": 0.9, "f": 0.8}, 25: {"m": 0.9, "f": 0.88}, 75: {"m": 0.88, "f": 0.9}}, 25),
        ({25: {"m": 0.9, "f": 0.85}, 50: {"m": 0.9, "f": 0.85}, 75: {"m": 0.9, "f": 0.85}}, 50),
    ],
)
def test_accuracy_parity_ratio(table: dict[int, dict[str, float]], ratio: int) -> None:
    assert accuracy_parity_ratio(table) == ratio
