"""Rank tests, Holm correction, bootstrap CIs and stars against scipy and by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from cmrbias_dagster.lib.analysis.statistics import (
    adjust_holm,
    bootstrap_median_ci,
    holm,
    mann_whitney,
    significance_stars,
    wilcoxon_paired,
)


@pytest.mark.parametrize(
    ("p", "stars"),
    [
        (0.0, "****"),
        (1e-4, "****"),
        (1.01e-4, "***"),
        (1e-3, "***"),
        (1.01e-3, "**"),
        (1e-2, "**"),
        (0.0101, "*"),
        (0.05, "*"),
        (0.051, "ns"),
        (1.0, "ns"),
        (math.nan, "ns"),
    ],
)
def test_significance_stars(p: float, stars: str) -> None:
    assert significance_stars(p) == stars


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mann_whitney_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.85, 0.05, 40), rng.normal(0.82, 0.07, 25)
    expected = stats.mannwhitneyu(a, b, alternative="two-sided")
    result = mann_whitney(a, b)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.effect_size == pytest.approx(2 * expected.statistic / (40 * 25) - 1)
    assert (result.n_a, result.n_b, result.p_holm) == (40, 25, None)


def test_mann_whitney_by_hand() -> None:
    # Every a is below every b: U_a = 0, exact two-sided p = 2 / C(6, 3) = 0.1, r = 2*0/9 - 1.
    result = mann_whitney([1, 2, 3], [4, 5, 6])
    assert (result.statistic, result.p_value, result.effect_size) == (0.0, pytest.approx(0.1), -1)
    assert mann_whitney([4, 5, 6], [1, 2, 3]).effect_size == 1.0


def test_mann_whitney_identical_samples() -> None:
    result = mann_whitney([0.8, 0.9, 0.7, 0.85], [0.8, 0.9, 0.7, 0.85])
    assert (result.p_value, result.effect_size, result.stars) == (1.0, 0.0, "ns")


def test_mann_whitney_drops_nans() -> None:
    with_nans = mann_whitney([1, math.nan, 2, 3], [4, 5, math.nan, 6])
    assert with_nans == mann_whitney([1, 2, 3], [4, 5, 6])
    assert (with_nans.n_a, with_nans.n_b) == (3, 3)


def test_mann_whitney_empty_group() -> None:
    result = mann_whitney([math.nan], [1.0, 2.0])
    assert math.isnan(result.p_value) and result.stars == "ns" and result.n_a == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wilcoxon_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(0.85, 0.05, 30)
    b = a - rng.normal(0.01, 0.02, 30)
    expected = stats.wilcoxon(a, b, alternative="two-sided")
    result = wilcoxon_paired(a, b)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.statistic == pytest.approx(expected.statistic)
    assert -1 <= result.effect_size <= 1 and (result.n_a, result.n_b) == (30, 30)


def test_wilcoxon_effect_by_hand() -> None:
    # d = a - b = [1, 1, 2, -4]: ranks of |d| = [1.5, 1.5, 3, 4]; (R+ - R-) / sum = (6 - 4) / 10.
    result = wilcoxon_paired([1, 2, 3, 0], [0, 1, 1, 4])
    assert result.effect_size == pytest.approx(0.2)


def test_wilcoxon_all_equal_pairs() -> None:
    result = wilcoxon_paired([0.8, 0.9, 0.7], [0.8, 0.9, 0.7])
    assert (result.p_value, result.effect_size, result.stars) == (1.0, 0.0, "ns")


def test_wilcoxon_drops_pairs_with_nan() -> None:
    a, b = [1.0, 2.0, math.nan, 3.0, 5.0], [0.0, 1.0, 1.0, 1.0, math.nan]
    assert wilcoxon_paired(a, b) == wilcoxon_paired([1.0, 2.0, 3.0], [0.0, 1.0, 1.0])


def test_wilcoxon_rejects_unpaired() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        wilcoxon_paired([1.0, 2.0], [1.0])


@pytest.mark.parametrize(
    ("p", "adjusted"),
    [
        # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06.
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        ([0.01, math.nan, 0.04], [0.02, math.nan, 0.04]),
        ([0.4, 0.5, 0.6], [1.0, 1.0, 1.0]),
        ([], []),
    ],
)
def test_holm(p: list[float], adjusted: list[float]) -> None:
    assert holm(p) == pytest.approx(adjusted, nan_ok=True)


def test_adjust_holm_fills_family() -> None:
    family = adjust_holm([mann_whitney([1, 2, 3], [4, 5, 6]), mann_whitney([4, 5, 6], [1, 2, 3])])
    # two p = 0.1: sorted 0.1*2 = 0.2, 0.1*1 = 0.1 -> running max 0.2 for both; raw p kept.
    assert [c.p_holm for c in family] == pytest.approx([0.2, 0.2])
    assert [c.p_value for c in family] == pytest.approx([0.1, 0.1])
    assert all(c.stars == "ns" for c in family)


def test_bootstrap_ci_deterministic_and_contains_median() -> None:
    values = np.random.default_rng(5).normal(0.85, 0.05, 60)
    ci = bootstrap_median_ci(values, seed=7)
    assert ci == bootstrap_median_ci(values, seed=7)
    assert ci != bootstrap_median_ci(values, seed=8)
    assert ci[0] <= np.median(values) <= ci[1]


def test_bootstrap_ci_narrows_with_more_data() -> None:
    rng = np.random.default_rng(5)
    small, large = rng.normal(0.85, 0.05, 20), rng.normal(0.85, 0.05, 2000)
    small_low, small_high = bootstrap_median_ci(small, seed=0)
    large_low, large_high = bootstrap_median_ci(large, seed=0)
    assert large_high - large_low < small_high - small_low


def test_bootstrap_ci_drops_nans_and_handles_empty() -> None:
    assert bootstrap_median_ci([0.8, math.nan, 0.9], seed=0) == bootstrap_median_ci(
        [0.8, 0.9], seed=0
    )
    assert all(math.isnan(x) for x in bootstrap_median_ci([math.nan], seed=0))
