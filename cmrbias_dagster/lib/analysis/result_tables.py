"""The paper's result tables from the evaluation rows of every experiment x ratio.

`metrics` rows come from the `segmentation_metrics` asset (one per experiment, ratio, subject,
phase, class); `clinical` rows from `clinical_measures` (one per experiment, ratio, subject).
"""

import polars as pl

from cmrbias_dagster.lib.analysis.statistics import (
    GroupComparison,
    adjust_holm,
    bootstrap_median_ci,
    mann_whitney,
)
from cmrbias_dagster.lib.evaluation.predictions import CLINICAL

KEYS = ["experiment", "ratio"]
SUBJECT = ["experiment", "ratio", "subject_id", "group", "held"]
CLASSES = ("overall", "LVBP", "LVM", "RVBP")


def subject_scores(metrics: pl.DataFrame) -> pl.DataFrame:
    """One row per experiment, ratio, subject and class: the DSC averaged over ED and ES; class
    `overall` averages the three classes too (the per-subject score of the paper's Table 2)."""
    per_class = metrics.group_by(*SUBJECT, "class").agg(dsc=pl.col("dice").mean())
    overall = metrics.group_by(*SUBJECT).agg(dsc=pl.col("dice").mean())
    overall = overall.with_columns(pl.lit("overall").alias("class")).select(per_class.columns)
    return pl.concat([overall, per_class]).sort(*KEYS, "class", "subject_id")


def median_dsc_table(scores: pl.DataFrame, seed: int, value: str = "dsc") -> pl.DataFrame:
    """Table 2 (all classes): median DSC with a seeded bootstrap 95 % CI, per experiment, ratio,
    class and group, plus the group `all` (every test subject). `value` names another score
    column (e.g. `hd95_mm`), reported as `median_<value>`; `n` counts the subjects whose score
    is not null (undefined scores are left out)."""
    everyone = scores.with_columns(pl.lit("all").alias("group"))
    rows = []
    for experiment, ratio, name, group, part in (
        pl.concat([scores, everyone])
        .group_by("experiment", "ratio", "class", "group", maintain_order=True)
        .agg(pl.col(value).drop_nulls())
        .iter_rows()
    ):
        low, high = bootstrap_median_ci(part, seed=seed)
        median = pl.Series(part, dtype=pl.Float64).median()
        rows.append(
            {
                "experiment": experiment,
                "ratio": ratio,
                "class": name,
                "group": group,
                "n": len(part),
                f"median_{value}": None if median is None else float(median),
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pl.DataFrame(rows).sort(*KEYS, "class", "group")


def intersectional_table(scores: pl.DataFrame) -> pl.DataFrame:
    """Table 3: median overall DSC per group x held value, with the Mann-Whitney U test between
    the two groups within each held value (e.g. black vs white women): raw p, Holm-adjusted p
    over the experiment's tests (every ratio and held value, one family as in
    `group_comparisons`) and stars from the adjusted p. Experiments without a held attribute
    (null `held`) have no rows."""
    overall = scores.filter((pl.col("class") == "overall") & pl.col("held").is_not_null())
    medians = overall.group_by(*KEYS, "held", "group").agg(
        n=pl.len(), median_dsc=pl.col("dsc").median()
    )
    keys: dict[str, list[dict]] = {}
    tests: dict[str, list[GroupComparison]] = {}
    for (experiment, ratio, held), part in overall.group_by(*KEYS, "held", maintain_order=True):
        groups = sorted(part["group"].unique())
        if len(groups) != 2:
            continue
        keys.setdefault(experiment, []).append(
            {"experiment": experiment, "ratio": ratio, "held": held}
        )
        tests.setdefault(experiment, []).append(
            mann_whitney(*(part.filter(pl.col("group") == g)["dsc"] for g in groups))
        )
    rows = [
        key | {"p_value": test.p_value, "p_holm": test.p_holm, "stars": test.stars}
        for experiment in keys
        for key, test in zip(keys[experiment], adjust_holm(tests[experiment]), strict=True)
    ]
    tested = medians.join(pl.DataFrame(rows), on=[*KEYS, "held"], how="left") if rows else medians
    return tested.sort(*KEYS, "held", "group")


def experiments_without_held(scores: pl.DataFrame) -> list[str]:
    """Experiments whose subjects have no held value (no held attribute), hence no Table 3 rows."""
    held = scores.group_by("experiment").agg(pl.col("held").is_not_null().any())
    return sorted(held.filter(~pl.col("held"))["experiment"].to_list())


def class_phase_table(metrics: pl.DataFrame) -> pl.DataFrame:
    """Median DSC per experiment, ratio, class, phase and group."""
    return (
        metrics.group_by(*KEYS, "class", "phase", "group")
        .agg(n=pl.len(), median_dsc=pl.col("dice").median())
        .sort(*KEYS, "class", "phase", "group")
    )


def clinical_difference_table(clinical: pl.DataFrame) -> pl.DataFrame:
    """Predicted minus truth of each clinical measure: median and mean per experiment, ratio and
    group, with the Mann-Whitney U test between the groups' differences: raw p, Holm-adjusted p
    over the experiment's tests (every ratio and measure, one family) and stars from the
    adjusted p; no test (null p, empty stars) where a ratio has not two groups."""
    cells: dict[str, list[tuple[int, str, dict[str, pl.Series]]]] = {}
    for (experiment, ratio), part in clinical.group_by(*KEYS, maintain_order=True):
        groups = sorted(part["group"].unique())
        for measure in CLINICAL:
            values = {g: part.filter(pl.col("group") == g)[f"{measure}_diff"] for g in groups}
            cells.setdefault(experiment, []).append((ratio, measure, values))
    rows = []
    for experiment, family in cells.items():
        tests = {
            index: mann_whitney(*values.values())
            for index, (_, _, values) in enumerate(family)
            if len(values) == 2
        }
        adjusted = dict(zip(tests, adjust_holm(list(tests.values())), strict=True))
        for index, (ratio, measure, values) in enumerate(family):
            test = adjusted.get(index)
            for group, diffs in values.items():
                rows.append(
                    {
                        "experiment": experiment,
                        "ratio": ratio,
                        "measure": measure,
                        "group": group,
                        "n": diffs.len(),
                        "median_diff": diffs.median(),
                        "mean_diff": diffs.mean(),
                        "p_value": test.p_value if test else None,
                        "p_holm": test.p_holm if test else None,
                        "stars": test.stars if test else "",
                    }
                )
    return pl.DataFrame(rows).sort(*KEYS, "measure", "group")


def table2_wide(
    table: pl.DataFrame, experiment: str, class_name: str = "overall", values: str = "median_dsc"
) -> pl.DataFrame:
    """Table 2 as printed: one row per ratio, a median column (`values`) per group and `all`."""
    part = table.filter((pl.col("experiment") == experiment) & (pl.col("class") == class_name))
    wide = part.pivot(on="group", index="ratio", values=values, sort_columns=True)
    groups = [c for c in wide.columns if c not in ("ratio", "all")]
    return wide.select("ratio", *groups, "all").sort("ratio")
