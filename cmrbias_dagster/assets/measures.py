"""Per experiment x ratio, from the ensemble's predictions on the test set: segmentation metrics
and clinical measures (and where those predictions live)."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.nnunet import partition_dataset
from cmrbias_dagster.lib import evaluation
from cmrbias_dagster.lib.tables import markdown_table
from cmrbias_dagster.partitions import (
    experiment_and_ratio,
    experiment_of_study_partition,
    study_partitions,
)
from cmrbias_dagster.resources import StudyResource

TEST_SET = {"test_set": dg.AssetIn(partition_mapping=experiment_of_study_partition)}
PARTITION_COLUMNS = {"partition_expr": {"experiment": "experiment", "ratio": "ratio"}}
# What both tables share: one DuckDB table per partition, read from the ensemble's predictions.
FROM_PREDICTIONS = {
    "partitions_def": study_partitions,
    "group_name": "evaluation",
    "kinds": {"polars", "duckdb"},
    "ins": TEST_SET,
    "deps": [dg.AssetKey("ensemble_prediction")],
    "metadata": PARTITION_COLUMNS,
}


def predictions_folder(study: StudyResource, partition_key: str) -> Path:
    """The partition's predictions: data/work/<profile>/predictions/<dataset>/."""
    return study.output_dir("predictions") / partition_dataset(study, partition_key)[1]


def with_partition(table: pl.DataFrame, test_set: pl.DataFrame, partition_key: str) -> pl.DataFrame:
    """Rows keyed by the partition and joined with each subject's group and held value."""
    experiment, ratio = experiment_and_ratio(partition_key)
    attributes = test_set.select("subject_id", "group", "held")
    return table.join(attributes, on="subject_id").with_columns(
        experiment=pl.lit(experiment), ratio=pl.lit(ratio, dtype=pl.Int64)
    )


@dg.asset(
    **FROM_PREDICTIONS,
    check_specs=[dg.AssetCheckSpec("metrics_in_range", asset="segmentation_metrics")],
)
def segmentation_metrics(
    context: dg.AssetExecutionContext,
    test_set: pl.DataFrame,
    subject_manifest: pl.DataFrame,
    study: StudyResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """One row per test subject x phase x class: DSC, HD95 and ASSD in mm, predicted and true
    volumes, with the subject's group and held value."""
    folder = predictions_folder(study, context.partition_key)
    metrics = with_partition(
        evaluation.case_metrics(test_set, subject_manifest, folder),
        test_set,
        context.partition_key,
    )
    overall = evaluation.subject_overall_dsc(metrics).join(
        test_set.select("subject_id", "group"), on="subject_id"
    )
    medians = evaluation.median_dsc_by_group(metrics)
    bad = metrics.filter(~pl.col("dice").is_between(0, 1) | (pl.col("true_ml") <= 0))
    yield dg.Output(
        metrics,
        metadata={
            "rows": metrics.height,
            "median_dsc_by_group_and_class": dg.MetadataValue.md(markdown_table(medians)),
            "median_overall_dsc_by_group": dg.MetadataValue.md(
                markdown_table(
                    overall.group_by("group")
                    .agg(median_overall_dsc=pl.col("overall_dsc").median())
                    .sort("group")
                )
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name="metrics_in_range",
        passed=bad.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"out_of_range_rows": bad.height},
    )


@dg.asset(**FROM_PREDICTIONS)
def clinical_measures(
    context: dg.AssetExecutionContext,
    test_set: pl.DataFrame,
    subject_manifest: pl.DataFrame,
    study: StudyResource,
) -> dg.Output[pl.DataFrame]:
    """One row per test subject: LV and RV EDV, ESV, EF and LV mass (1.05 g/mL), predicted,
    true, predicted minus truth and relative difference."""
    folder = predictions_folder(study, context.partition_key)
    table = with_partition(
        evaluation.clinical_differences(test_set, subject_manifest, folder),
        test_set,
        context.partition_key,
    )
    summary = (
        table.group_by("group")
        .agg(pl.col(f"{m}_diff").median().alias(f"median_{m}_diff") for m in evaluation.CLINICAL)
        .sort("group")
    )
    return dg.Output(
        table,
        metadata={"median_differences_by_group": dg.MetadataValue.md(markdown_table(summary))},
    )
