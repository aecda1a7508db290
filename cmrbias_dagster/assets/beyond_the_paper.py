"""The analyses beyond the paper's tables, over every evaluated experiment x ratio (DuckDB, CSV):
what each mitigation strategy does, the repeated draws, boundary metrics (HD95, ASSD), the gaps
adjusted for age and BMI, and calibration by group (docs/study.md).

Each asset reads all partitions of its inputs, so it summarises whatever the study has evaluated
so far; rematerialise it after more partitions finish.
"""

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.support.outputs import ANALYSIS_ASSET_ARGS, table_output
from cmrbias_dagster.lib.analysis import (
    boundary,
    calibration,
    confounders,
    gaps,
    mitigation,
    repeats,
    result_tables,
    strategy_effects,
)
from cmrbias_dagster.lib.outputs import markdown_table
from cmrbias_dagster.resources import StudyResource


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
