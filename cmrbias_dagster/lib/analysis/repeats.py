"""Repeated draws (the design's `repeats`): does a group gap survive a new training draw?

Every repeat of an experiment is tested on the same test set with its own training draws and
training seed, so the repeat, not the test subject, is the unit of replication. Per base
experiment, ratio and group: the median over repeats of each repeat's median overall DSC and its
spread (min, max, SD with two or more repeats); per repeat: the gap (first group's median minus
the second's) and the study's subject-level Mann-Whitney U (Holm within the repeat, as in
`group_comparisons`).

The verdict, over the repeats evaluated at that ratio:
- `established`: every repeat's test is significant (Holm p <= 0.05) in the same direction and,
  with three or more repeats, a one-sample t-test of the repeats' gaps against 0 gives p <= 0.05
  (a Wilcoxon signed-rank test cannot reach 0.05 with fewer than six repeats);
- `not replicated`: at least one repeat is significant, but not all in one direction (or the
  gaps vary too much for the t-test);
- `absent`: no repeat is significant;
- `one draw`: the design draws once (repeats: 1); one draw's test says nothing of the next;
- `incomplete`: fewer repeats evaluated than the design draws.
"""

import math

import numpy as np
import polars as pl
from scipy import stats

from cmrbias_dagster.lib.analysis.comparisons import group_comparisons
from cmrbias_dagster.lib.analysis.fairness import scores_by_group
from cmrbias_dagster.lib.design.study import Experiment, StudyDesign

ALPHA = 0.05
GROUP_STATS = ("median", "min", "max", "sd")
SCHEMA = {
    **dict.fromkeys(("experiment", "group_a", "group_b"), pl.Utf8),
    **dict.fromkeys(("ratio", "repeats"), pl.Int64),
    **{f"{stat}_{side}": pl.Float64 for side in "ab" for stat in GROUP_STATS},
    "gap_median": pl.Float64,
    "gaps": pl.Utf8,
    "significant_repeats": pl.Int64,
    "p_gaps": pl.Float64,
    "verdict": pl.Utf8,
}
# The columns a reader compares first: the groups' medians over draws, each draw's gap, the verdict.
SUMMARY = ("experiment", "ratio", "repeats", "median_a", "median_b", "gaps", "verdict")
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


def repeat_summary(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """One row per base experiment x evaluated ratio: each group's median, min, max and SD over
    the repeats of the per-repeat median DSC, the per-repeat gaps and the verdict (module doc)."""
    results = repeat_results(scores, design)
    groups = {experiment.base: experiment.groups for experiment in design.experiments}
    rows = []
    for (base, ratio), cell in results.group_by("base", "ratio", maintain_order=True):
        cell = cell.sort("repeat")
        gaps = cell["gap"].to_list()
        rows.append(
            {
                "experiment": base,
                "ratio": ratio,
                "group_a": groups[base][0],
                "group_b": groups[base][1],
                "repeats": cell.height,
                **spread(cell["median_a"].to_list(), "a"),
                **spread(cell["median_b"].to_list(), "b"),
                "gap_median": float(np.median(gaps)),
                "gaps": ", ".join(f"{gap:+.4f}" for gap in gaps),
                "significant_repeats": sum(p <= ALPHA for p in cell["p_holm"].fill_nan(1.0)),
                "p_gaps": gap_test(gaps),
                "verdict": gap_verdict(
                    cell["p_holm"].to_list(), cell["effect_size"].to_list(), gaps, design.repeats
                ),
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


def gap_test(gaps: list[float]) -> float | None:
    """Two-sided one-sample t-test of the repeats' gaps against 0; None below three repeats."""
    values = np.asarray(gaps, dtype=float)
    if values.size < 3 or np.isnan(values).any():
        return None
    if np.all(values == values[0]):  # no spread: t is infinite for a non-zero gap
        return 1.0 if values[0] == 0 else 0.0
    return float(stats.ttest_1samp(values, 0.0).pvalue)


def gap_verdict(
    p_holm: list[float], effects: list[float], gaps: list[float], design_repeats: int
) -> str:
    """The verdict of one base experiment x ratio over its evaluated repeats (module doc)."""
    if design_repeats == 1:
        return "one draw"
    if len(p_holm) < design_repeats:
        return "incomplete"
    significant = [not math.isnan(p) and p <= ALPHA for p in p_holm]
    if not any(significant):
        return "absent"
    one_direction = len({math.copysign(1.0, effect) for effect in effects}) == 1
    p_gaps = gap_test(gaps)
    if all(significant) and one_direction and (p_gaps is None or p_gaps <= ALPHA):
        return "established"
    return "not replicated"


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
