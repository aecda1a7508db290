"""The paper's figures and supplementary ones: PNG files under figures/, shown in the UI."""

from pathlib import Path

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.support.outputs import FIGURE_ASSET_ARGS, write_figures
from cmrbias_dagster.lib import plots
from cmrbias_dagster.lib.analysis import boundary
from cmrbias_dagster.lib.cohort.volumes import load_volume
from cmrbias_dagster.lib.design.partition import partition_key
from cmrbias_dagster.lib.evaluation.predictions import load_labels, prediction_path
from cmrbias_dagster.lib.plots import figure_names
from cmrbias_dagster.resources import StudyResource

BALANCED = 50


@dg.asset(**FIGURE_ASSET_ARGS)
def dsc_figure(
    subject_scores: pl.DataFrame, group_comparisons: pl.DataFrame, study: StudyResource
) -> dg.MaterializeResult:
    """Fig. 2: overall DSC per group across training ratios, one panel per experiment, with the
    Mann-Whitney U stars between the groups at each ratio."""
    figure = plots.dsc_by_ratio_figure(
        subject_scores, group_comparisons, study.design().group_order()
    )
    return write_figures(study, {figure_names.DSC_BY_RATIO: figure})


@dg.asset(**FIGURE_ASSET_ARGS)
def class_dsc_figure(
    subject_scores: pl.DataFrame, group_comparisons: pl.DataFrame, study: StudyResource
) -> dg.MaterializeResult:
    """Fig. 3: the same per class (LVBP, LVM, RVBP)."""
    figure = plots.dsc_by_class_figure(
        subject_scores, group_comparisons, study.design().group_order()
    )
    return write_figures(study, {figure_names.DSC_BY_CLASS: figure})


@dg.asset(**FIGURE_ASSET_ARGS)
def clinical_figure(clinical_measures: pl.DataFrame, study: StudyResource) -> dg.MaterializeResult:
    """Fig. 4: predicted minus true LV/RV ESV and EF per group across training ratios."""
    figure = plots.clinical_differences_figure(clinical_measures, study.design().group_order())
    return write_figures(study, {figure_names.CLINICAL_DIFFERENCES: figure})


@dg.asset(**FIGURE_ASSET_ARGS)
def fairness_figure(fairness_table: pl.DataFrame, study: StudyResource) -> dg.MaterializeResult:
    """SD of group means, skewed error ratio, ES-Dice and parity gap against the training ratio."""
    figure = plots.fairness_figure(fairness_table, study.design().group_order())
    return write_figures(study, {figure_names.FAIRNESS: figure})


@dg.asset(**FIGURE_ASSET_ARGS)
def mitigation_figure(
    mitigation_comparison: pl.DataFrame, study: StudyResource
) -> dg.MaterializeResult:
    """Each mitigated experiment beside the experiment it varies: gap and skewed error ratio
    against the training ratio, and mean DSC against the gap (the fairness-accuracy trade-off)."""
    if mitigation_comparison.is_empty():
        return dg.MaterializeResult(
            metadata={"note": "no mitigated experiment evaluated yet: nothing to draw"}
        )
    figure = plots.mitigation_figure(mitigation_comparison)
    return write_figures(study, {figure_names.MITIGATION: figure})


@dg.asset(**FIGURE_ASSET_ARGS)
def repeat_figure(repeat_summary: pl.DataFrame, study: StudyResource) -> dg.MaterializeResult:
    """Repeated draws: per base experiment, each group's median DSC over the repeats against the
    training ratio, the min-max over repeats as error bars and each ratio's verdict."""
    if repeat_summary.is_empty():
        return dg.MaterializeResult(
            metadata={"note": "no experiment evaluated yet: nothing to draw"}
        )
    figure = plots.repeat_figure(repeat_summary, study.design().repeats)
    return write_figures(study, {figure_names.REPEATS: figure})


@dg.asset(**FIGURE_ASSET_ARGS)
def cohort_figure(subject_manifest: pl.DataFrame, study: StudyResource) -> dg.MaterializeResult:
    """Table 1's distributions: age, height, weight and BMI by race and by sex."""
    figure = plots.cohort_distributions_figure(subject_manifest)
    return write_figures(study, {figure_names.COHORT_DISTRIBUTIONS: figure})


@dg.asset(**FIGURE_ASSET_ARGS)
def qualitative_figure(
    subject_scores: pl.DataFrame, subject_manifest: pl.DataFrame, study: StudyResource
) -> dg.MaterializeResult:
    """Per experiment, the best, median and worst test subject of each group at the lowest ratio
    evaluated (0 % once the study is complete) and at 50 %: end-diastolic image, truth and the
    ensemble's prediction."""
    figures = {}
    overall = subject_scores.filter(pl.col("class") == "overall")
    for experiment in overall["experiment"].unique(maintain_order=True):
        cases = []
        evaluated = overall.filter(pl.col("experiment") == experiment)
        for ratio in sorted({evaluated["ratio"].min(), BALANCED} & set(evaluated["ratio"])):
            part = evaluated.filter(pl.col("ratio") == ratio)
            folder = study.predictions_folder(study.partition(partition_key(experiment, ratio)))
            for pick in plots.pick_best_median_worst(part).iter_rows(named=True):
                cases.append(qualitative_case(pick, ratio, subject_manifest, folder))
        if cases:
            figures[figure_names.qualitative(experiment)] = plots.qualitative_figure(cases)
    return write_figures(study, figures)


def qualitative_case(
    pick: dict, ratio: int, manifest: pl.DataFrame, folder: Path
) -> plots.QualitativeCase:
    """One test subject's ED image, truth and prediction, titled by group, rank and DSC."""
    subject = manifest.filter(pl.col("subject_id") == pick["subject_id"]).row(0, named=True)
    return plots.QualitativeCase(
        title=f"{pick['group']} {pick['rank']} @{ratio}%\nDSC {pick['dsc']:.3f}",
        image=load_volume(pick["subject_id"], Path(subject["image_ed"])).data,
        truth=load_labels(Path(subject["label_ed"])),
        prediction=load_labels(prediction_path(folder, pick["subject_id"], "ED")),
    )


@dg.asset(**FIGURE_ASSET_ARGS)
def boundary_figure(
    boundary_scores: pl.DataFrame, boundary_comparisons: pl.DataFrame, study: StudyResource
) -> dg.MaterializeResult:
    """HD95 and ASSD (mm, lower is better) per group across training ratios, one column per
    experiment, with the Mann-Whitney U stars between the groups at each ratio."""
    figure = plots.boundary_by_ratio_figure(
        boundary_scores,
        boundary_comparisons,
        study.design().group_order(),
        boundary.METRICS,
    )
    return write_figures(study, {figure_names.BOUNDARY_BY_RATIO: figure})


@dg.asset(**FIGURE_ASSET_ARGS)
def reliability_figure(
    case_calibration: pl.DataFrame, study: StudyResource
) -> dg.MaterializeResult:
    """Per experiment, reliability diagrams of the ensemble's probabilities in the band around
    the heart: each group's accuracy against confidence at every evaluated ratio, with its
    pooled ECE."""
    group_order = study.design().group_order()
    figures = {
        figure_names.reliability(experiment): plots.reliability_figure(
            case_calibration.filter(pl.col("experiment") == experiment), group_order[experiment]
        )
        for experiment in case_calibration["experiment"].unique(maintain_order=True)
        if experiment in group_order
    }
    return write_figures(study, figures)
