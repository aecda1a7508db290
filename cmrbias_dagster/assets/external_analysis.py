"""The external test cohorts' analysis: their subject scores, and the headline tables and figure
with the study's own test set (`internal`) and each external cohort side by side
(`test_cohort`). external.py imports, segments and scores the cohorts, and lists these assets."""

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.support.outputs import FIGURE_ASSET_ARGS, table_output, write_figures
from cmrbias_dagster.lib.external import tables
from cmrbias_dagster.lib.outputs import markdown_table
from cmrbias_dagster.lib.plots import figure_names
from cmrbias_dagster.lib.plots.test_cohorts import dsc_by_test_cohort_figure
from cmrbias_dagster.resources import StudyResource

ANALYSIS_ARGS = {"group_name": "analysis", "kinds": {"polars", "duckdb"}}


@dg.asset(**ANALYSIS_ARGS)
def external_subject_scores(external_segmentation_metrics: pl.DataFrame) -> dg.Output:
    """subject_scores of every external cohort (DSC over ED/ES; `overall` over the classes its
    truth labels), with `test_cohort`."""
    scores = tables.external_subject_scores(external_segmentation_metrics)
    return dg.Output(scores, metadata={"rows": scores.height})


@dg.asset(**ANALYSIS_ARGS)
def test_cohort_median_dsc(
    subject_scores: pl.DataFrame, external_subject_scores: pl.DataFrame, study: StudyResource
) -> dg.Output:
    """Table 2 per test cohort: the study's own test set (`internal`) and each external cohort,
    median DSC with bootstrap 95 % CI per experiment, ratio, class and group."""
    scores = tables.scores_by_test_cohort(subject_scores, external_subject_scores)
    table = tables.median_dsc_by_test_cohort(scores, study.design().seed)
    overall = table.filter((pl.col("class") == "overall") & (pl.col("group") == "all"))
    return table_output(study, table, "test_cohort_median_dsc", overall=markdown_table(overall))


@dg.asset(**ANALYSIS_ARGS)
def test_cohort_gap_verdicts(
    subject_scores: pl.DataFrame, external_subject_scores: pl.DataFrame, study: StudyResource
) -> dg.Output:
    """gap_verdicts per test cohort, where the cohort holds both groups of an experiment; the
    experiments a cohort cannot compare are listed in the metadata."""
    design = study.design()
    scores = tables.scores_by_test_cohort(subject_scores, external_subject_scores)
    table = tables.gap_verdicts_by_test_cohort(scores, design)
    missing = tables.uncompared(scores, design)
    overall = table.filter(pl.col("class") == "overall")
    return table_output(
        study,
        table,
        "test_cohort_gap_verdicts",
        overall=markdown_table(overall),
        not_compared=markdown_table(missing),
    )


@dg.asset(**ANALYSIS_ARGS)
def test_cohort_group_comparisons(
    subject_scores: pl.DataFrame, external_subject_scores: pl.DataFrame, study: StudyResource
) -> dg.Output:
    """group_comparisons (Mann-Whitney U, Holm) per test cohort, where it holds both groups."""
    scores = tables.scores_by_test_cohort(subject_scores, external_subject_scores)
    table = tables.group_comparisons_by_test_cohort(scores, study.design())
    shown = markdown_table(table)
    return table_output(study, table, "test_cohort_group_comparisons", comparisons=shown)


@dg.asset(**FIGURE_ASSET_ARGS)
def test_cohort_dsc_figure(
    test_cohort_median_dsc: pl.DataFrame, study: StudyResource
) -> dg.MaterializeResult:
    """Median overall DSC by training ratio, one line per test cohort, a panel per experiment."""
    figure = dsc_by_test_cohort_figure(test_cohort_median_dsc, study.design().group_order())
    return write_figures(study, {figure_names.DSC_BY_TEST_COHORT: figure})
