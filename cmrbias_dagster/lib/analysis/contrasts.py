"""The study's contrasts as two-level estimates (two_level.py): between-group gaps of median DSC,
share slopes of the gap, and a strategy's paired effect, each from a cube of scores
(ratio x repeat x subject) on one experiment's test set.
"""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from cmrbias_dagster.lib.analysis.two_level import (
    N_RESAMPLES,
    TwoLevelEstimate,
    combine,
    subject_resamples,
)


@dataclass(frozen=True)
class ScoreCube:
    """One experiment's scores of one class: `dsc[k, r, j]` is subject j's DSC at `ratios[k]`
    from repeat r's model (NaN where not evaluated); `first` marks the first group's subjects and
    `held` each subject's held value ("" without a held attribute)."""

    ratios: tuple[int, ...]
    subject_ids: tuple[str, ...]
    first: np.ndarray
    held: np.ndarray
    dsc: np.ndarray

    def resamples(self, seed: int, n: int = N_RESAMPLES) -> np.ndarray:
        """`n` subject resamples within group x held strata (two_level.subject_resamples)."""
        strata = [f"{a}|{h}" for a, h in zip(self.first, self.held, strict=True)]
        return subject_resamples(strata, seed, n)

    @property
    def subject_df(self) -> float:
        """Degrees of freedom of the subject part: subjects minus the two group means."""
        return float(self.first.size - 2)


def score_cube(
    scores: pl.DataFrame, repeats: Sequence[str], first_group: str, name: str, value: str = "dsc"
) -> ScoreCube:
    """The cube of `scores` rows of class `name` for the experiments `repeats` (repeat 1 first),
    over every ratio any of them was evaluated at; `value` names the score column (a null score,
    e.g. an undefined distance, is NaN in the cube like a score not evaluated)."""
    rows = scores.filter(pl.col("experiment").is_in(list(repeats)) & (pl.col("class") == name))
    ratios = tuple(sorted(rows["ratio"].unique().to_list()))
    subjects = rows.select("subject_id", "group", "held").unique("subject_id").sort("subject_id")
    ids = tuple(subjects["subject_id"].to_list())
    dsc = np.full((len(ratios), len(repeats), len(ids)), np.nan)
    column = {subject: j for j, subject in enumerate(ids)}
    repeat_index = {experiment: r for r, experiment in enumerate(repeats)}
    ratio_index = {ratio: k for k, ratio in enumerate(ratios)}
    for experiment, ratio, subject, score in rows.select(
        "experiment", "ratio", "subject_id", pl.col(value).fill_null(np.nan)
    ).iter_rows():
        dsc[ratio_index[ratio], repeat_index[experiment], column[subject]] = score
    return ScoreCube(
        ratios=ratios,
        subject_ids=ids,
        first=(subjects["group"] == first_group).to_numpy(),
        held=subjects["held"].fill_null("").cast(pl.Utf8).to_numpy().astype(str),
        dsc=dsc,
    )


def evaluated_repeats(cube: ScoreCube, ratio: int) -> np.ndarray:
    """Which repeats have a score at `ratio` (their model was evaluated there)."""
    return np.isfinite(cube.dsc[cube.ratios.index(ratio)]).any(axis=1)


def group_medians(values: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each group's median over the last axis (subjects), NaNs ignored (NaN for a group without
    a finite score)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values[..., first], axis=-1), np.nanmedian(values[..., ~first], axis=-1)


def median_gap(
    cube: ScoreCube, ratio: int, seed: int, n_resamples: int = N_RESAMPLES
) -> TwoLevelEstimate:
    """First group's median DSC minus the second's at `ratio`, over the evaluated repeats."""
    values = cube.dsc[cube.ratios.index(ratio)][evaluated_repeats(cube, ratio)]
    draws = cube.resamples(seed, n_resamples)
    a, b = group_medians(values, cube.first)
    boot_a, boot_b = group_medians(values[:, draws], cube.first)
    return combine(a - b, (boot_a - boot_b).T, cube.subject_df)


def strategy_effects(
    variant: ScoreCube, baseline: ScoreCube, ratio: int, seed: int, n_resamples: int = N_RESAMPLES
) -> dict[str, TwoLevelEstimate]:
    """The variant minus its baseline on the same test subjects (paired through one resample),
    repeat r against the baseline's repeat r: each group's median (`a`, `b`) and the gap (`gap`,
    a negative value moves the first-minus-second gap down)."""
    if variant.subject_ids != baseline.subject_ids:
        raise ValueError("a strategy's test subjects differ from its baseline's")
    both = evaluated_repeats(variant, ratio) & evaluated_repeats(baseline, ratio)
    v = variant.dsc[variant.ratios.index(ratio)][both]
    b = baseline.dsc[baseline.ratios.index(ratio)][both]
    draws = variant.resamples(seed, n_resamples)
    (va, vb), (ba, bb) = group_medians(v, variant.first), group_medians(b, variant.first)
    (bva, bvb), (bba, bbb) = (group_medians(x[:, draws], variant.first) for x in (v, b))
    pairs = {"a": (va - ba, bva - bba), "b": (vb - bb, bvb - bbb)}
    pairs["gap"] = (pairs["a"][0] - pairs["b"][0], pairs["a"][1] - pairs["b"][1])
    return {key: combine(obs, boot.T, variant.subject_df) for key, (obs, boot) in pairs.items()}


def subject_slopes(cube: ScoreCube) -> np.ndarray:
    """(repeats, subjects): each subject's OLS slope of DSC over the ratio as a fraction (0..1),
    from each repeat's models; NaN with fewer than two finite scores."""
    x = np.asarray(cube.ratios, dtype=float)[:, None, None] / 100.0
    y = cube.dsc
    finite = np.isfinite(y)
    count = finite.sum(axis=0)
    xs = np.where(finite, x, 0.0)
    mean_x = xs.sum(axis=0) / np.maximum(count, 1)
    mean_y = np.where(finite, y, 0.0).sum(axis=0) / np.maximum(count, 1)
    dx = np.where(finite, x - mean_x, 0.0)
    numerator = (dx * np.where(finite, y - mean_y, 0.0)).sum(axis=0)
    denominator = (dx**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slopes = numerator / denominator
    return np.where((count >= 2) & (denominator > 0), slopes, np.nan)


def stratified_difference(values: np.ndarray, first: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Mean of the first group minus the second's within each held stratum, averaged with the
    strata's sizes as weights (strata lacking a group left out), over the last axis."""
    parts, weights = [], []
    for stratum in np.unique(held):
        in_stratum = held == stratum
        a, b = first & in_stratum, ~first & in_stratum
        if a.any() and b.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                means = np.nanmean(values[..., a], axis=-1) - np.nanmean(values[..., b], axis=-1)
            parts.append(means)
            weights.append(in_stratum.sum())
    if not parts:
        return np.full(values.shape[:-1], np.nan)
    return np.average(np.stack(parts), axis=0, weights=np.asarray(weights, dtype=float))


def gap_slope(cube: ScoreCube, seed: int, n_resamples: int = N_RESAMPLES) -> TwoLevelEstimate:
    """The first group's mean slope minus the second's within held strata: the gap's change from
    0 % to 100 % share. Repeats with fewer than two evaluated ratios are left out."""
    slopes = subject_slopes(cube)
    slopes = slopes[np.isfinite(slopes).any(axis=1)]
    draws = cube.resamples(seed, n_resamples)
    observed = stratified_difference(slopes, cube.first, cube.held)
    resampled = stratified_difference(slopes[:, draws], cube.first, cube.held)
    return combine(observed, resampled.T, cube.subject_df)
