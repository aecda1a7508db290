"""Group comparisons of per-subject scores: rank tests, Holm correction, bootstrap CIs, stars."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

STAR_THRESHOLDS = ((1e-4, "****"), (1e-3, "***"), (1e-2, "**"), (0.05, "*"))


@dataclass(frozen=True)
class GroupComparison:
    """One two-group test: statistic, raw and Holm-adjusted p, rank-biserial effect size, sizes."""

    test: str
    statistic: float
    p_value: float
    p_holm: float | None
    effect_size: float
    stars: str
    n_a: int
    n_b: int


def significance_stars(p: float) -> str:
    """Stars as in statannotations: **** p<=1e-4, *** p<=1e-3, ** p<=1e-2, * p<=0.05, else ns."""
    if math.isnan(p):
        return "ns"
    return next((stars for threshold, stars in STAR_THRESHOLDS if p <= threshold), "ns")


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> GroupComparison:
    """Two-sided Mann-Whitney U test of independent groups; NaNs dropped, empty group gives p NaN.

    `statistic` is scipy's U of `a`; effect size r = 2U_a/(n_a n_b) - 1 = 1 - 2U_b/(n_a n_b),
    in [-1, 1] and positive when values of `a` tend to exceed those of `b`.
    """
    x, y = _finite(a), _finite(b)
    if x.size == 0 or y.size == 0:
        return GroupComparison(
            "mann-whitney", math.nan, math.nan, None, math.nan, "ns", x.size, y.size
        )
    result = stats.mannwhitneyu(x, y, alternative="two-sided")
    u_a, p = float(result.statistic), float(result.pvalue)
    effect = 2.0 * u_a / (x.size * y.size) - 1.0
    return GroupComparison(
        "mann-whitney", u_a, p, None, effect, significance_stars(p), x.size, y.size
    )


def wilcoxon_paired(a: Sequence[float], b: Sequence[float]) -> GroupComparison:
    """Two-sided Wilcoxon signed-rank test of paired values (same subjects, two models).

    Pairs with a NaN are dropped, zero differences are discarded (scipy's "wilcox"), and all-zero
    differences give p 1.0. Effect size is the matched-pairs rank-biserial (R+ - R-)/(R+ + R-),
    positive when `a` tends to exceed `b`.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n == 0:
        return GroupComparison("wilcoxon", math.nan, math.nan, None, math.nan, "ns", 0, 0)
    diff = x - y
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return GroupComparison("wilcoxon", 0.0, 1.0, None, 0.0, "ns", n, n)
    ranks = stats.rankdata(np.abs(nonzero))
    effect = float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())
    result = stats.wilcoxon(x, y, alternative="two-sided")
    p = float(result.pvalue)
    return GroupComparison(
        "wilcoxon", float(result.statistic), p, None, effect, significance_stars(p), n, n
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values in input order: step-down, monotone, capped at 1.

    NaNs are passed through and do not count towards the family size.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = p.copy()
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    scaled = p[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted.tolist()


def adjust_holm(comparisons: Sequence[GroupComparison]) -> list[GroupComparison]:
    """The family with `p_holm` filled in by `holm`, and stars recomputed from the adjusted p."""
    adjusted = holm([c.p_value for c in comparisons])
    return [
        replace(c, p_holm=p, stars=significance_stars(p))
        for c, p in zip(comparisons, adjusted, strict=True)
    ]


def bootstrap_median_ci(
    values: Sequence[float], seed: int, n_resamples: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the median (NaNs dropped; (NaN, NaN) when nothing is left)."""
    x = _finite(values)
    if x.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, x.size, size=(n_resamples, x.size))], axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(medians, [tail, 1.0 - tail])
    return float(low), float(high)


def _finite(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x[~np.isnan(x)]
