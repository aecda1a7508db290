"""Repeated draws (the design's `repeats`): how far a group's median DSC and the gap move from one
training draw to the next.

Every repeat of an experiment is tested on the same test set with its own training draws and
training seed. Per base experiment, ratio and group: the median over repeats of each repeat's
median overall DSC and its spread (min, max, SD with two or more repeats); per repeat: the gap
(first group's median minus the second's) and the study's subject-level Mann-Whitney U (Holm within
the repeat, as in `group_comparisons`). The estimate, CI and verdict are the two-level ones of
`gap_table` (gaps.py): training draws and test subjects together, so a gap is established when the
adjusted test rejects 0 with both sources of variation in it, not when every repeat is significant
on its own (a rule whose chance of holding falls as power^R).
"""

import math

import numpy as np
import polars as pl

from cmrbias_dagster.lib.analysis.comparisons import group_comparisons
from cmrbias_dagster.lib.analysis.fairness import scores_by_group
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.study import StudyDesign

GROUP_STATS = ("median", "min", "max", "sd")
VERDICT = ("estimate", "ci_low", "ci_high", "p_value", "p_holm", "verdict")
SCHEMA = {
    **dict.fromkeys(("experiment", "group_a", "group_b"), pl.Utf8),
    **dict.fromkeys(("ratio", "repeats"), pl.Int64),
    **{f"{stat}_{side}": pl.Float64 for side in "ab" for stat in GROUP_STATS},
    "gaps": pl.Utf8,
    **dict.fromkeys(VERDICT[:-1], pl.Float64),
    "verdict": pl.Utf8,
}
# The columns a reader compares first: the groups' medians over draws, each draw's gap, the verdict.
SUMMARY = ("experiment", "ratio", "repeats", "median_a", "median_b", "gaps", "estimate")
SUMMARY += ("ci_low", "ci_high", "verdict")
REPEAT_SCHEMA = {
    **dict.fromkeys(("experiment", "base"), pl.Utf8),
    **dict.fromkeys(("repeat", "ratio"), pl.Int64),
    **dict.fromkeys(("median_a", "median_b", "gap", "p_holm", "effect_size"), pl.Float64),
}


def repeat_results(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """One row per experiment (every repeat) x evaluated ratio: its base and repeat, the groups'
    median overall DSC, the gap, and the Holm-adjusted p and rank-biserial effect of its test."""
    rows = [
        row
        for experiment in design.experiments
        for row in _repeat_rows(scores.filter(pl.col("experiment") == experiment.name), experiment)
    ]
    return pl.DataFrame(rows, schema=REPEAT_SCHEMA).sort("base", "ratio", "repeat")


def repeat_summary(scores: pl.DataFrame, gaps: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """One row per base experiment x evaluated ratio: each group's median, min, max and SD over
    the repeats of the per-repeat median DSC, the per-repeat gaps, and the overall gap's two-level
    estimate, CI, p and verdict from `gaps` (gaps.gap_table)."""
    results = repeat_results(scores, design)
    overall = gaps.filter(pl.col("class") == "overall")
    groups = {experiment.base: experiment.groups for experiment in design.experiments}
    rows = []
    for (base, ratio), cell in results.group_by("base", "ratio", maintain_order=True):
        cell = cell.sort("repeat")
        two_level = overall.filter((pl.col("experiment") == base) & (pl.col("ratio") == ratio))
        rows.append(
            {
                "experiment": base,
                "ratio": ratio,
                "group_a": groups[base][0],
                "group_b": groups[base][1],
                "repeats": cell.height,
                **spread(cell["median_a"].to_list(), "a"),
                **spread(cell["median_b"].to_list(), "b"),
                "gaps": ", ".join(f"{gap:+.4f}" for gap in cell["gap"].to_list()),
                **{key: two_level[key].first() for key in VERDICT},
            }
        )
    return pl.DataFrame(rows, schema=SCHEMA)


def spread(medians: list[float], side: str) -> dict[str, float | None]:
    """Median, min and max of the per-repeat medians, and their SD (None with one repeat)."""
    values = np.asarray(medians, dtype=float)
    sd = float(np.std(values, ddof=1)) if values.size >= 2 else None
    low, high = (float(values.min()), float(values.max())) if values.size >= 2 else (None, None)
    return {
        f"median_{side}": float(np.median(values)),
        f"min_{side}": low,
        f"max_{side}": high,
        f"sd_{side}": sd,
    }


def _repeat_rows(own: pl.DataFrame, experiment: Experiment) -> list[dict]:
    if own.is_empty():
        return []
    tests = group_comparisons(own, {experiment.name: experiment.groups})
    overall = own.filter(pl.col("class") == "overall")
    rows = []
    for test in tests.filter(pl.col("class") == "overall").iter_rows(named=True):
        cell = overall.filter(pl.col("ratio") == test["ratio"])
        by_group = scores_by_group(cell["dsc"].to_list(), cell["group"].to_list())
        median_a, median_b = (_median(by_group.get(group)) for group in experiment.groups)
        rows.append(
            {
                "experiment": experiment.name,
                "base": experiment.base,
                "repeat": experiment.repeat,
                "ratio": test["ratio"],
                "median_a": median_a,
                "median_b": median_b,
                "gap": median_a - median_b,
                "p_holm": test["p_holm"],
                "effect_size": test["effect_size"],
            }
        )
    return rows


def _median(values: np.ndarray | None) -> float:
    """NaN for a group without a finite score (every one of its subjects failed)."""
    return float(np.median(values)) if values is not None and values.size else math.nan
