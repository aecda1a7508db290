"""Does the between-group gap move with the training share? Imbalance bias is a gap that depends
on the first group's share; a gap that is the same at every share is group difficulty (or an
under-trained model), not imbalance bias.

Statistic: per test subject, the OLS slope of its DSC over the ratios (as fractions 0..1, so the
slope is the DSC change from 0 % to 100 % share); the gap slope is the first group's mean slope
minus the second's, which equals the slope of the mean gap over the ratios. Each subject is
segmented by every ratio's model, so the subject is the unit: one slope per subject removes its
own difficulty (a constant offset), and subjects are independent under the null that both groups'
slopes come from the same distribution. The permutation test shuffles group labels among subjects
within held-attribute strata; the models are treated as fixed, so model-to-model noise (one model
per ratio) is not in the null. Holm families: one per class, across experiments.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from cmrbias_dagster.lib.analysis.statistics import holm

SUBJECT = ["experiment", "class", "subject_id", "group", "held"]
NOTES = {
    "share_dependent": "the first group gains on the second as its share rises: imbalance bias",
    "reverse": "the first group loses ground to the second as its share rises",
    "constant": "no trend with the share; a non-zero gap is group difficulty or under-training, "
    "not imbalance bias",
}
SCHEMA = {
    **dict.fromkeys(("experiment", "class", "group_a", "group_b", "verdict"), pl.Utf8),
    **dict.fromkeys(("n_ratios", "n_a", "n_b", "ratio_low", "ratio_high"), pl.Int64),
    **dict.fromkeys(("gap_low", "gap_high", "slope_a", "slope_b", "gap_slope"), pl.Float64),
    **dict.fromkeys(("ci_low", "ci_high", "p_value", "p_holm"), pl.Float64),
    "note": pl.Utf8,
}


def subject_slopes(scores: pl.DataFrame) -> pl.DataFrame:
    """Per experiment, class and subject: OLS slope of DSC over the ratio as a fraction (0..1)
    and how many ratios it rests on; subjects with fewer than two finite scores are left out."""
    x = pl.col("ratio") / 100.0
    return (
        scores.filter(pl.col("dsc").is_finite())
        .group_by(SUBJECT, maintain_order=True)
        .agg(
            slope=pl.cov(x, pl.col("dsc")) / x.var(),
            n_ratios=pl.col("ratio").n_unique(),
        )
        .filter(pl.col("n_ratios") >= 2)
        .sort(SUBJECT, nulls_last=True)
    )


def permutation_p_value(
    values: Sequence[float],
    first: Sequence[bool],
    strata: Sequence[object],
    seed: int,
    n_permutations: int = 10_000,
) -> float:
    """Two-sided permutation p of mean(first) - mean(second), shuffling the group labels within
    each stratum; (1 + extreme) / (1 + n_permutations), so never 0."""
    y, labels = np.asarray(values, dtype=float), np.asarray(first, dtype=bool)
    n_a, n_b = int(labels.sum()), int((~labels).sum())
    if n_a == 0 or n_b == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    shuffled = np.empty((n_permutations, y.size), dtype=bool)
    _, stratum = np.unique(np.asarray(strata, dtype=str), return_inverse=True)
    for s in np.unique(stratum):
        members = np.flatnonzero(stratum == s)
        tiled = np.tile(labels[members], (n_permutations, 1))
        shuffled[:, members] = rng.permuted(tiled, axis=1)
    observed = y[labels].mean() - y[~labels].mean()
    null = shuffled @ y / n_a - (~shuffled) @ y / n_b
    # a relative tolerance so permutations equal to the observed split count despite rounding
    extreme = np.abs(null) >= abs(observed) * (1 - 1e-9) - 1e-12
    return float((1 + extreme.sum()) / (1 + n_permutations))


def bootstrap_gap_ci(
    a: Sequence[float], b: Sequence[float], seed: int, n_resamples: int = 2000
) -> tuple[float, float]:
    """Percentile bootstrap 95 % CI of mean(a) - mean(b), resampling subjects within each group."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means_a = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    means_b = y[rng.integers(0, y.size, size=(n_resamples, y.size))].mean(axis=1)
    low, high = np.quantile(means_a - means_b, [0.025, 0.975])
    return float(low), float(high)


def ratio_dependence_table(
    scores: pl.DataFrame, group_order: Mapping[str, Sequence[str]], seed: int
) -> pl.DataFrame:
    """Per experiment and class: the gap slope, its bootstrap CI, the within-held-strata
    permutation p (Holm across experiments per class), the gaps at the lowest and highest ratio
    and a verdict. Experiments with fewer than two evaluated ratios have no row."""
    slopes, finite = subject_slopes(scores), scores.filter(pl.col("dsc").is_finite())
    rows = []
    for (experiment, name), part in slopes.group_by("experiment", "class", maintain_order=True):
        cell = finite.filter((pl.col("experiment") == experiment) & (pl.col("class") == name))
        row = _row(part, cell, group_order[experiment], seed)
        if row:
            rows.append({"experiment": experiment, "class": name, **row})
    if not rows:
        return pl.DataFrame(schema=SCHEMA)
    table = pl.DataFrame(rows).sort("class", "experiment")
    adjusted = pl.concat(
        part.with_columns(p_holm=pl.Series(holm(part["p_value"].to_list())))
        for _, part in table.group_by("class", maintain_order=True)
    )
    verdicts = [_verdict(p, slope) for p, slope in adjusted.select("p_holm", "gap_slope").rows()]
    return (
        adjusted.with_columns(verdict=pl.Series(verdicts, dtype=pl.Utf8))
        .with_columns(note=pl.col("verdict").replace_strict(NOTES))
        .select(list(SCHEMA))
        .sort("experiment", "class")
    )


def single_ratio_experiments(scores: pl.DataFrame) -> list[str]:
    """Experiments evaluated at fewer than two ratios so far: no trend can be tested."""
    counts = scores.group_by("experiment").agg(pl.col("ratio").n_unique())
    return sorted(counts.filter(pl.col("ratio") < 2)["experiment"])


def _row(slopes: pl.DataFrame, cell: pl.DataFrame, groups: Sequence[str], seed: int) -> dict:
    """One experiment x class; empty with fewer than two ratios or a group without subjects."""
    first, second = groups
    ratios = sorted(cell["ratio"].unique())
    a, b = slopes.filter(pl.col("group") == first), slopes.filter(pl.col("group") == second)
    if len(ratios) < 2 or a.is_empty() or b.is_empty():
        return {}
    tested = pl.concat([a, b])
    strata = tested["held"].fill_null("")
    low, high = bootstrap_gap_ci(a["slope"], b["slope"], seed)
    return {
        "group_a": first,
        "group_b": second,
        "n_ratios": len(ratios),
        "n_a": a.height,
        "n_b": b.height,
        "ratio_low": ratios[0],
        "ratio_high": ratios[-1],
        "gap_low": _gap(cell, ratios[0], first, second),
        "gap_high": _gap(cell, ratios[-1], first, second),
        "slope_a": a["slope"].mean(),
        "slope_b": b["slope"].mean(),
        "gap_slope": a["slope"].mean() - b["slope"].mean(),
        "ci_low": low,
        "ci_high": high,
        "p_value": permutation_p_value(tested["slope"], tested["group"] == first, strata, seed),
    }


def _gap(cell: pl.DataFrame, ratio: int, first: str, second: str) -> float:
    at = cell.filter(pl.col("ratio") == ratio)
    mean = {g: at.filter(pl.col("group") == g)["dsc"].mean() for g in (first, second)}
    return mean[first] - mean[second]


def _verdict(p_holm: float, gap_slope: float) -> str:
    if p_holm <= 0.05 and gap_slope > 0:
        return "share_dependent"
    if p_holm <= 0.05 and gap_slope < 0:
        return "reverse"
    return "constant"
