"""Mitigated experiments beside the experiment they vary: at each training ratio, the two groups'
median overall DSC, the gap and its Mann-Whitney U test, the fairness metrics and the mean DSC
(the fairness-accuracy trade-off), for the variant and for its baseline (docs/mitigation.md).
"""

import math

import numpy as np
import polars as pl

from cmrbias_dagster.lib.analysis.comparisons import group_comparisons
from cmrbias_dagster.lib.analysis.fairness import fairness_metrics, scores_by_group
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.study import StudyDesign

SCHEMA = {
    "experiment": pl.Utf8,
    "varies": pl.Utf8,
    "strategy": pl.Utf8,
    "ratio": pl.Int64,
    "group_a": pl.Utf8,
    "group_b": pl.Utf8,
    "n_a": pl.Int64,
    "n_b": pl.Int64,
    "median_a": pl.Float64,
    "median_b": pl.Float64,
    "gap": pl.Float64,
    "p_value": pl.Float64,
    "p_holm": pl.Float64,
    "stars": pl.Utf8,
    "sd_of_group_means": pl.Float64,
    "skewed_error_ratio": pl.Float64,
    "es_dice": pl.Float64,
    "mean_dsc": pl.Float64,
    "gap_closed": pl.Float64,
    "dsc_change": pl.Float64,
}
FAIRNESS = ("sd_of_group_means", "skewed_error_ratio", "es_dice")
# The columns a reader compares first: what each strategy does to the gap and to accuracy.
SUMMARY = ("experiment", "strategy", "ratio", "median_a", "median_b", "gap", "stars")
SUMMARY += ("skewed_error_ratio", "es_dice", "mean_dsc", "gap_closed", "dsc_change")


def mitigation_families(design: StudyDesign) -> list[tuple[Experiment, list[Experiment]]]:
    """Each experiment that mitigated experiments vary, with those variants, in file order. A
    mitigated experiment is one with an active strategy and a `varies`."""
    variants: dict[str, list[Experiment]] = {}
    for experiment in design.experiments:
        if experiment.mitigation.active and experiment.varies is not None:
            variants.setdefault(experiment.varies, []).append(experiment)
    return [(base, variants[base.name]) for base in design.experiments if base.name in variants]


def mitigation_comparison(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """One row per experiment x evaluated ratio of every mitigation family: the baseline's rows
    (`varies` null) first, then each variant's (`varies` = the baseline), all on the overall DSC.

    `gap` is median_a - median_b (first group minus second); `p_value`, `p_holm` and `stars` are
    the experiment's `group_comparisons` (Holm over its ratios and classes, as in Fig. 2); SD, SER
    and ES-Dice as in `fairness_metrics`; `mean_dsc` is the mean over every test subject.
    `gap_closed` = |baseline gap| - |gap| and `dsc_change` = mean_dsc - the baseline's, at the
    same ratio (null where the baseline has not been evaluated at that ratio).
    """
    rows: list[dict] = []
    for base, variants in mitigation_families(design):
        baseline = {row["ratio"]: row for row in _experiment_rows(scores, base, None)}
        rows += baseline.values()
        for variant in variants:
            rows += [
                row | _change(row, baseline.get(row["ratio"]))
                for row in _experiment_rows(scores, variant, base.name)
            ]
    return pl.DataFrame(rows, schema=SCHEMA)


def side_by_side(table: pl.DataFrame, baseline: str, value: str = "gap") -> pl.DataFrame:
    """One row per ratio, one `value` column per experiment of the baseline's family, named
    `<experiment> (<strategy>)`, the baseline first."""
    family = table.filter(pl.coalesce("varies", "experiment") == baseline)
    labelled = family.with_columns(
        column=pl.format("{} ({})", pl.col("experiment"), pl.col("strategy"))
    )
    order = labelled["column"].unique(maintain_order=True).to_list()
    wide = labelled.pivot(on="column", index="ratio", values=value)
    return wide.select("ratio", *order).sort("ratio")


def _experiment_rows(scores: pl.DataFrame, experiment: Experiment, varies: str | None) -> list:
    own = scores.filter(pl.col("experiment") == experiment.name)
    if own.is_empty():
        return []
    tests = group_comparisons(own, {experiment.name: experiment.groups})
    overall = own.filter(pl.col("class") == "overall")
    rows = []
    for test in tests.filter(pl.col("class") == "overall").sort("ratio").iter_rows(named=True):
        cell = overall.filter(pl.col("ratio") == test["ratio"])
        dsc, groups = cell["dsc"].to_list(), cell["group"].to_list()
        by_group = scores_by_group(dsc, groups)
        median_a, median_b = (_median(by_group.get(g)) for g in experiment.groups)
        fairness = fairness_metrics(dsc, groups)
        rows.append(
            {
                "experiment": experiment.name,
                "varies": varies,
                "strategy": experiment.mitigation.label,
                **{key: test[key] for key in ("ratio", "group_a", "group_b", "n_a", "n_b")},
                "median_a": median_a,
                "median_b": median_b,
                "gap": median_a - median_b,
                **{key: test[key] for key in ("p_value", "p_holm", "stars")},
                **{key: fairness[key] for key in FAIRNESS},
                "mean_dsc": float(np.concatenate(list(by_group.values())).mean()),
                "gap_closed": 0.0 if varies is None else None,
                "dsc_change": 0.0 if varies is None else None,
            }
        )
    return rows


def _median(values: np.ndarray | None) -> float:
    """NaN for a group without a finite score (every one of its subjects failed)."""
    return float(np.median(values)) if values is not None and values.size else math.nan


def _change(row: dict, baseline: dict | None) -> dict:
    if baseline is None:
        return {}
    return {
        "gap_closed": abs(baseline["gap"]) - abs(row["gap"]),
        "dsc_change": row["mean_dsc"] - baseline["mean_dsc"],
    }
