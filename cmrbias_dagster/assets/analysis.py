"""The paper's tables and statistics over every evaluated experiment x ratio (DuckDB, CSV, LaTeX).

Each asset reads all partitions of the evaluation tables, so it summarises whatever the study has
evaluated so far; rematerialise it after more partitions finish.
"""

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.support.outputs import ANALYSIS_ASSET_ARGS, table_output
from cmrbias_dagster.lib.analysis import (
    boundary,
    calibration,
    comparisons,
    confounders,
    gaps,
    mitigation,
    ratio_dependence,
    repeats,
    result_tables,
    strategy_effects,
)
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


@dg.asset(**ANALYSIS_ASSET_ARGS)
def mitigation_comparison(subject_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Each mitigated experiment beside the experiment it varies, per ratio: group medians of the
    overall DSC, gap, Mann-Whitney U (Holm as in group_comparisons), SD, SER, ES-Dice and the mean
    DSC, with the gap closed and the DSC change against the baseline (docs/mitigation.md)."""
    design = study.design()
    table = mitigation.mitigation_comparison(subject_scores, design)
    families = [base.name for base, _ in mitigation.mitigation_families(design)]
    shown = {
        f"gap_{name}": markdown_table(mitigation.side_by_side(table, name))
        for name in families
        if name in table["experiment"]
    }
    if not families:
        shown["note"] = (
            "the design has no mitigated experiment (one with `mitigation` and `varies`, "
            "docs/mitigation.md): the table is empty"
        )
    summary = table.select(mitigation.SUMMARY)
    return table_output(
        study, table, "mitigation_comparison", summary=markdown_table(summary), **shown
    )


@dg.asset(**ANALYSIS_ASSET_ARGS)
def mitigation_effects(subject_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """What each strategy does, tested: per mitigated experiment and ratio, the paired change
    (variant minus baseline, same test subjects, repeat against repeat) of each group's median
    DSC and of the gap, with two-level CIs, Holm p and whether it narrows the gap."""
    design = study.design()
    table = strategy_effects.strategy_effect_table(
        subject_scores, design, design.equivalence_margin
    )
    summary = table.select(strategy_effects.SUMMARY)
    return table_output(study, table, "mitigation_effects", summary=markdown_table(summary))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def repeat_summary(
    subject_scores: pl.DataFrame, gap_verdicts: pl.DataFrame, study: StudyResource
) -> dg.Output:
    """Repeated draws (`repeats` in the design): per base experiment, ratio and group, the median
    and spread over repeats of each repeat's median overall DSC, the per-repeat gaps and the
    overall gap's two-level verdict (docs/study.md, "Repeated draws")."""
    design = study.design()
    table = repeats.repeat_summary(subject_scores, gap_verdicts, design)
    shown = table.select(repeats.SUMMARY)
    draws = f"{design.repeats} draw(s) per experiment"
    return table_output(study, table, "repeat_summary", summary=markdown_table(shown), design=draws)


@dg.asset(**ANALYSIS_ASSET_ARGS)
def boundary_scores(segmentation_metrics: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Per experiment, ratio, test subject and class (and `overall`): HD95 and ASSD (mm) averaged
    over ED/ES, null where a case has no distance (a structure missing from prediction or truth),
    with the number of undefined cases (docs/study.md, "Boundary metrics")."""
    scores = boundary.subject_boundary_scores(segmentation_metrics)
    undefined = scores.filter(pl.col("class") == "overall")["hd95_mm"].is_null().sum()
    return dg.Output(
        scores, metadata={"rows": scores.height, "undefined_overall_scores": int(undefined)}
    )


@dg.asset(**ANALYSIS_ASSET_ARGS)
def boundary_metric_table(boundary_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Table 2 in mm: median HD95 and ASSD (seeded bootstrap 95 % CI) per group and overall,
    experiment, ratio and class, with the subjects left out as undefined."""
    table = boundary.boundary_median_table(boundary_scores, seed=study.design().seed)
    shown = {
        f"{metric}_{experiment}": markdown_table(
            result_tables.table2_wide(
                table.filter(pl.col("metric") == metric), experiment, values="median_mm"
            )
        )
        for metric in boundary.METRICS
        for experiment in table["experiment"].unique(maintain_order=True)
    }
    return table_output(study, table, "boundary_metric_table", **shown)


@dg.asset(**ANALYSIS_ASSET_ARGS)
def boundary_comparisons(boundary_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Mann-Whitney U between the groups on HD95 and ASSD at each ratio and class, Holm per
    experiment and metric, stars from the Holm p (effect size > 0: the first group worse)."""
    table = boundary.boundary_comparisons(boundary_scores, study.design().group_order())
    overall = table.filter(pl.col("class") == "overall").select(
        "metric", "experiment", "ratio", "p_value", "p_holm", "effect_size", "stars"
    )
    return table_output(study, table, "boundary_comparisons", overall=markdown_table(overall))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def boundary_verdicts(boundary_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """The two-level verdict on every HD95 and ASSD gap (first group's median minus the second's,
    mm; positive: the first group worse): established or not established, no equivalence in mm."""
    table = boundary.boundary_gap_table(boundary_scores, study.design())
    overall = table.filter(pl.col("class") == "overall").select("metric", *gaps.SUMMARY)
    return table_output(study, table, "boundary_verdicts", overall=markdown_table(overall))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def boundary_ratio_dependence(boundary_scores: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Does the HD95 or ASSD gap move with the training share? The gap slope in mm from 0 to
    100 % share (negative: the first group gains), two-level CI, verdict and trend."""
    table = boundary.boundary_ratio_dependence(boundary_scores, study.design())
    overall = table.filter(pl.col("class") == "overall").drop("note")
    return table_output(study, table, "boundary_ratio_dependence", overall=markdown_table(overall))


@dg.asset(**ANALYSIS_ASSET_ARGS)
def confounder_adjusted_gaps(
    subject_scores: pl.DataFrame, subject_manifest: pl.DataFrame, study: StudyResource
) -> dg.Output:
    """Per base experiment, ratio and pooled: the gap in mean overall DSC unadjusted and adjusted
    for age and BMI (cluster-robust regression, two-level with repeats), verdicts and whether
    adjusting changes them (docs/study.md, "Confounders")."""
    table = confounders.confounder_adjusted_gaps(subject_scores, subject_manifest, study.design())
    summary = markdown_table(table.select(confounders.SUMMARY))
    return table_output(study, table, "confounder_adjusted_gaps", summary=summary)


@dg.asset(**ANALYSIS_ASSET_ARGS)
def calibration_by_group(case_calibration: pl.DataFrame, study: StudyResource) -> dg.Output:
    """Per experiment, ratio, class and group: ECE, Brier score and predictive entropy pooled over
    the group's test cases in the band around the heart, seeded bootstrap 95 % CIs over subjects,
    and the gap (first group minus second) with its CI (docs/study.md)."""
    if case_calibration.is_empty():
        raise dg.Failure(
            "no partition's calibration has been recorded yet: materialise case_calibration for "
            "at least one experiment x ratio (partition_job) first"
        )
    design = study.design()
    table = calibration.calibration_by_group(case_calibration, design.group_order(), design.seed)
    overall = table.filter(pl.col("class") == "overall").select(
        "experiment", "ratio", "group", "ece", "ece_ci_low", "ece_ci_high", "brier", "entropy"
    )
    return table_output(study, table, "calibration_by_group", overall=markdown_table(overall))
