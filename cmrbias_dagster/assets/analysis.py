"""The paper's tables and statistics over every evaluated experiment x ratio (DuckDB, CSV, LaTeX).

Each asset reads all partitions of the evaluation tables, so it summarises whatever the study has
evaluated so far; rematerialise it after more partitions finish.
"""

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.support.outputs import ANALYSIS_ASSET_ARGS, table_output
from cmrbias_dagster.lib.analysis import comparisons, gaps, ratio_dependence, result_tables
from cmrbias_dagster.lib.outputs import markdown_table
from cmrbias_dagster.resources import StudyResource


@dg.asset(**ANALYSIS_ASSET_ARGS)
def subject_scores(segmentation_metrics: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Per experiment, ratio, test subject and class (and `overall`): DSC averaged over ED/ES."""
    if segmentation_metrics.is_empty():
        raise dg.Failure(
            "no partition has been evaluated yet: materialise segmentation_metrics for at least "
            "one experiment x ratio (partition_job) first"
        )
    scores = result_tables.subject_scores(segmentation_metrics)
    evaluated = scores.select("experiment", "ratio").unique().sort("experiment", "ratio")
    return dg.Output(
        scores,
        metadata={
            "rows": scores.height,
            "partitions_evaluated": evaluated.height,
            "evaluated": dg.MetadataValue.md(markdown_table(evaluated)),
        },
    )


@dg.asset(**ANALYSIS_ASSET_ARGS)
def median_dsc_table(subject_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Table 2: median DSC (seeded bootstrap 95 % CI) per group and overall, experiment, ratio and
    class."""
    table = result_tables.median_dsc_table(subject_scores, seed=study.design().seed)
    shown = {
        f"table2_{experiment}": markdown_table(result_tables.table2_wide(table, experiment))
        for experiment in table["experiment"].unique(maintain_order=True)
    }
    return table_output(study, table, "table2_median_dsc", **shown)


@dg.asset(**ANALYSIS_ASSET_ARGS)
def intersectional_dsc_table(subject_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Table 3: median overall DSC per group x held attribute, with the Mann-Whitney U test between
    the groups within each held value (raw p, Holm p per experiment, stars from the Holm p); no
    rows for experiments without a held attribute."""
    table = result_tables.intersectional_table(subject_scores)
    unheld = result_tables.experiments_without_held(subject_scores)
    notes = {"no_held_attribute": ", ".join(unheld)} if unheld else {}
    return table_output(
        study, table, "table3_intersectional", table3=markdown_table(table, 60), **notes
    )


@dg.asset(**ANALYSIS_ASSET_ARGS)
def dsc_by_class_and_phase(segmentation_metrics: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Median DSC per class (LVBP, LVM, RVBP), phase (ED, ES), group, experiment and ratio."""
    table = result_tables.class_phase_table(segmentation_metrics)
    return table_output(study, table, "dsc_by_class_and_phase", preview=markdown_table(table, 24))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def clinical_difference_table(clinical_measures: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Predicted minus truth of LV/RV EDV, ESV, EF and LV mass by group and ratio, with the
    Mann-Whitney U test between the groups (raw p, Holm p per experiment, stars from the Holm p)."""
    table = result_tables.clinical_difference_table(clinical_measures)
    shown = table.filter(pl.col("measure").is_in(["lv_esv_ml", "lv_ef", "rv_esv_ml", "rv_ef"]))
    return table_output(study, table, "clinical_differences", preview=markdown_table(shown, 60))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def group_comparisons(subject_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Mann-Whitney U between the two groups at each ratio and class: U, p, Holm-adjusted p per
    experiment, rank-biserial effect size and stars (the paper's test)."""
    table = comparisons.group_comparisons(subject_scores, study.design().group_order())
    overall = table.filter(pl.col("class") == "overall").select(
        "experiment", "ratio", "group_a", "group_b", "p_value", "p_holm", "effect_size", "stars"
    )
    return table_output(study, table, "group_comparisons", overall=markdown_table(overall))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def ratio_comparisons(subject_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Paired Wilcoxon signed-rank between every two ratios for the same group and class (the same
    test subjects, two models), Holm-adjusted per experiment, with rank-biserial effect sizes."""
    table = comparisons.ratio_comparisons(subject_scores)
    overall = table.filter((pl.col("class") == "overall") & (pl.col("ratio_a") == 0)).select(
        "experiment", "group", "ratio_a", "ratio_b", "p_value", "p_holm", "effect_size", "stars"
    )
    return table_output(study, table, "ratio_comparisons", versus_0_percent=markdown_table(overall))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def fairness_table(subject_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Fairness of the overall DSC per experiment and ratio: SD of group means, skewed error
    ratio, ES-Dice, parity gap; and each experiment's accuracy parity ratio."""
    table = comparisons.fairness_table(subject_scores).join(
        comparisons.parity_ratios(subject_scores), on="experiment"
    )
    return table_output(study, table, "fairness", fairness=markdown_table(table))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def gap_verdicts(subject_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """The study's verdict on every between-group gap: per base experiment (its repeats pooled),
    ratio and class, the median gap's two-level estimate (training draws and test subjects), 95 %
    CI, Holm p per experiment and verdict: established, not established or equivalent within the
    design's margin (docs/study.md, "Verdicts")."""
    design = study.design()
    table = gaps.gap_table(subject_scores, design, design.equivalence_margin)
    overall = table.filter(pl.col("class") == "overall").select(gaps.SUMMARY)
    return table_output(study, table, "gap_verdicts", overall=markdown_table(overall))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def ratio_dependence_table(subject_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Does the between-group gap move with the training share? Per-subject DSC slopes over the
    ratios, the gap slope within held strata with two-level uncertainty, Holm per class, the
    verdict and the trend it reads as."""
    design = study.design()
    table = ratio_dependence.ratio_dependence_table(
        subject_scores, design, design.equivalence_margin
    )
    untested = ratio_dependence.single_ratio_experiments(subject_scores)
    notes = {"fewer_than_two_ratios": ", ".join(untested)} if untested else {}
    overall = table.filter(pl.col("class") == "overall").drop("note")
    return table_output(study, table, "ratio_dependence", overall=markdown_table(overall), **notes)
