"""Does the between-group gap move with the training share? Imbalance bias is a gap that depends
on the first group's share; a gap that is the same at every share is group difficulty (or an
under-trained model), not imbalance bias.

Statistic: per test subject and repeat, the OLS slope of its DSC over the ratios (as fractions
0..1, so the slope is the DSC change from 0 % to 100 % share); the gap slope is the first group's
mean slope minus the second's within each held-attribute stratum, averaged with the strata's sizes
as weights, so a trend that belongs to the held attribute is not read as the groups'. One slope per
subject removes its own difficulty; its uncertainty is two-level (two_level.py): the test subjects
and, with repeats, the training draws (one model per ratio and repeat). Holm families: one per
class, across experiments.
"""

import numpy as np
import polars as pl

from cmrbias_dagster.lib.analysis.contrasts import gap_slope, subject_slopes
from cmrbias_dagster.lib.analysis.gaps import ESTIMATE, estimate_columns, experiment_cubes
from cmrbias_dagster.lib.analysis.two_level import (
    TwoLevelEstimate,
    equivalence_label,
    holm_adjusted,
    is_established,
    verdict,
)
from cmrbias_dagster.lib.design.study import StudyDesign

TRENDS = {
    "share dependent": "the first group gains on the second as its share rises: imbalance bias",
    "reverse": "the first group loses ground to the second as its share rises",
    "no share dependence detected": "the test does not reject a gap that is the same at every "
    "share; a non-zero gap may be group difficulty or under-training",
    "equivalent": "the gap's change over the shares lies inside the equivalence margin",
}
SCHEMA = {
    **dict.fromkeys(("experiment", "class", "group_a", "group_b"), pl.Utf8),
    **dict.fromkeys(("repeats", "n_ratios", "n_a", "n_b", "ratio_low", "ratio_high"), pl.Int64),
    **dict.fromkeys(("gap_low", "gap_high", "slope_a", "slope_b"), pl.Float64),
    **dict.fromkeys((*ESTIMATE, "p_holm"), pl.Float64),
    **dict.fromkeys(("verdict", "trend", "note"), pl.Utf8),
}


def ratio_dependence_table(
    scores: pl.DataFrame,
    design: StudyDesign,
    margin: float,
    value: str = "dsc",
    lower_is_better: bool = False,
) -> pl.DataFrame:
    """Per base experiment and class: the gap slope's two-level estimate (`estimate`), CI, p,
    Holm p across experiments per class, the gaps at the lowest and highest ratio, the verdict and
    the trend it reads as. Experiments with fewer than two evaluated ratios have no row. `value`
    names another score column; `lower_is_better` (a distance) reads a falling gap as the first
    group gaining."""
    rows = []
    for experiment, name, cube in experiment_cubes(scores, design, value):
        if len(cube.ratios) < 2 or cube.first.all() or not cube.first.any():
            continue
        slopes = subject_slopes(cube)
        rows.append(
            {
                "experiment": experiment.base,
                "class": name,
                "group_a": experiment.groups[0],
                "group_b": experiment.groups[1],
                "n_ratios": len(cube.ratios),
                "n_a": int(cube.first.sum()),
                "n_b": int((~cube.first).sum()),
                "ratio_low": cube.ratios[0],
                "ratio_high": cube.ratios[-1],
                "gap_low": _mean_gap(cube.dsc[0], cube.first),
                "gap_high": _mean_gap(cube.dsc[-1], cube.first),
                "slope_a": float(np.nanmean(slopes[:, cube.first])),
                "slope_b": float(np.nanmean(slopes[:, ~cube.first])),
                "estimate": gap_slope(cube, design.seed),
            }
        )
    if not rows:
        return pl.DataFrame(schema=SCHEMA)
    by_class: dict[str, list[dict]] = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(row)
    for family in by_class.values():
        for row, p_holm in zip(family, holm_adjusted([r["estimate"] for r in family]), strict=True):
            estimate: TwoLevelEstimate = row.pop("estimate")
            said = verdict(estimate, p_holm, margin)
            trend = share_trend(said, estimate.estimate, margin, lower_is_better)
            row |= {"repeats": estimate.repeats, **estimate_columns(estimate), "p_holm": p_holm}
            row |= {"verdict": said, "trend": trend, "note": TRENDS[trend]}
    return pl.DataFrame(rows, schema=SCHEMA).sort("experiment", "class")


def share_trend(said: str, slope: float, margin: float, lower_is_better: bool = False) -> str:
    """The verdict read as a trend: `share dependent` or `reverse` when established (by the
    slope's sign: a rising gap is the first group gaining, a falling one where lower is
    better), `equivalent` inside the margin, else `no share dependence detected`."""
    if is_established(said):
        gains = slope < 0 if lower_is_better else slope > 0
        return "share dependent" if gains else "reverse"
    if said.startswith(equivalence_label(margin)):
        return "equivalent"
    return "no share dependence detected"


def single_ratio_experiments(scores: pl.DataFrame) -> list[str]:
    """Experiments evaluated at fewer than two ratios so far: no trend can be tested."""
    counts = scores.group_by("experiment").agg(pl.col("ratio").n_unique())
    return sorted(counts.filter(pl.col("ratio") < 2)["experiment"])


def _mean_gap(values: np.ndarray, first: np.ndarray) -> float:
    """Mean over repeats and subjects of the first group minus the second's, at one ratio."""
    return float(np.nanmean(values[:, first]) - np.nanmean(values[:, ~first]))
