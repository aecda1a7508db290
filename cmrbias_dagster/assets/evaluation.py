"""Evaluation per experiment x ratio: the ensemble of the trained folds on the test set (with
protected models, each subject's group's folds; with cropping, the cascade's two stages), then
the segmentation metrics and clinical measures computed from its predictions."""

import time
from collections.abc import Iterator

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.support.ensemble_routes import ensemble_predictor, prediction_metadata
from cmrbias_dagster.assets.support.fold_keys import fold_checkpoint_keys
from cmrbias_dagster.executors import TRAINING_POOL
from cmrbias_dagster.lib.cohort.validation import PHASES
from cmrbias_dagster.lib.design.partition import StudyPartition
from cmrbias_dagster.lib.evaluation import calibration, predictions
from cmrbias_dagster.lib.nnunet.dataset import subject_cases
from cmrbias_dagster.lib.outputs import markdown_table
from cmrbias_dagster.lib.plots.subjects import markdown_image, prediction_overlay_png
from cmrbias_dagster.lib.splits.folds import case_id
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import StudyResource, TrainingResource

# The @dg.asset arguments both tables share: one DuckDB table per partition, read from the
# ensemble's predictions.
PREDICTION_TABLE_ASSET_ARGS = {
    "partitions_def": study_partitions,
    "group_name": "evaluation",
    "kinds": {"polars", "duckdb"},
    "deps": [dg.AssetKey("ensemble_prediction")],
    "metadata": {"partition_expr": {"experiment": "experiment", "ratio": "ratio"}},
}


def ensemble_prediction_asset(n_folds: int) -> dg.AssetsDefinition:
    """`ensemble_prediction` over the `n_folds` fold checkpoints."""

    @dg.asset(
        partitions_def=study_partitions,
        group_name="evaluation",
        kinds={"nnunet", "pytorch"},
        deps=fold_checkpoint_keys(n_folds),
        # It predicts on a leased device slot: the pool gates it with the fold steps, so that a
        # fold step given a pool slot never waits for a lease inside its step (docs/scaling.md).
        pool=TRAINING_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                "prediction_per_test_case", asset="ensemble_prediction", blocking=True
            ),
            dg.AssetCheckSpec("ensemble_not_worse_than_folds", asset="ensemble_prediction"),
        ],
    )
    def ensemble_prediction(
        context: dg.AssetExecutionContext,
        test_set: pl.DataFrame,
        subject_manifest: pl.DataFrame,
        study: StudyResource,
        training: TrainingResource,
    ) -> dg.MaterializeResult:
        """The folds' softmax probabilities averaged on every test case (ED and ES), then the
        largest connected component kept per class; NIfTI in the image's own geometry. With
        protected models, each case's by the folds of its subject's group's model. Each case's
        calibration records go to calibration.parquet beside them (case_calibration)."""
        partition = study.partition(context.partition_key)
        cases = subject_cases(test_set, subject_manifest)
        folder = study.predictions_folder(partition)
        predict, routing = ensemble_predictor(study, partition, test_set, n_folds)
        started = time.monotonic()
        results, device = training.run(
            predict,
            study.nnunet_environment(),
            partition.dataset,
            range(n_folds),
            cases,
            folder,
            study.settings().prediction,
            log=context.log.info,
        )
        seconds = time.monotonic() - started
        problems = predictions.prediction_problems(test_set, subject_manifest, folder)
        # The montage shows only cases that have a prediction: a lost file is the check's to report.
        predicted = [c for c in cases if (folder / f"{c.case_id}.nii.gz").is_file()]
        ensemble = sum(r.ensemble_mean_dice for r in results) / len(results)
        folds = [sum(r.fold_mean_dice[k] for r in results) / len(results) for k in range(n_folds)]
        return dg.MaterializeResult(
            metadata={
                "cases": len(results),
                "device": device,
                "seconds": round(seconds, 1),
                "ensemble_mean_dice": round(ensemble, 4),
                "fold_mean_dice": dg.MetadataValue.json([round(d, 4) for d in folds]),
                **prediction_metadata(routing, results),
                "path": dg.MetadataValue.path(str(folder)),
                "montage": dg.MetadataValue.md(
                    markdown_image(prediction_overlay_png(predicted[:6:2], folder), "test cases")
                ),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="prediction_per_test_case",
                    passed=not problems,
                    metadata={"problems": "; ".join(problems[:20]) or "none"},
                ),
                dg.AssetCheckResult(
                    check_name="ensemble_not_worse_than_folds",
                    passed=ensemble >= min(folds),
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"ensemble": ensemble, "worst_fold": min(folds)},
                ),
            ],
        )

    return ensemble_prediction


def with_partition(
    table: pl.DataFrame, test_set: pl.DataFrame, partition: StudyPartition
) -> pl.DataFrame:
    """Rows keyed by the partition and joined with each subject's group and held value."""
    attributes = test_set.select("subject_id", "group", "held")
    return table.join(attributes, on="subject_id").with_columns(
        experiment=pl.lit(partition.experiment.name), ratio=pl.lit(partition.ratio, dtype=pl.Int64)
    )


@dg.asset(
    **PREDICTION_TABLE_ASSET_ARGS,
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
    partition = study.partition(context.partition_key)
    folder = study.predictions_folder(partition)
    metrics = with_partition(
        predictions.case_metrics(test_set, subject_manifest, folder), test_set, partition
    )
    overall = predictions.subject_overall_dsc(metrics).join(
        test_set.select("subject_id", "group"), on="subject_id"
    )
    medians = predictions.median_dsc_by_group(metrics)
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


@dg.asset(**PREDICTION_TABLE_ASSET_ARGS)
def clinical_measures(
    context: dg.AssetExecutionContext,
    test_set: pl.DataFrame,
    subject_manifest: pl.DataFrame,
    study: StudyResource,
) -> dg.Output[pl.DataFrame]:
    """One row per test subject: LV and RV EDV, ESV, EF and LV mass (1.05 g/mL), predicted,
    true, predicted minus truth and relative difference."""
    partition = study.partition(context.partition_key)
    folder = study.predictions_folder(partition)
    table = with_partition(
        predictions.clinical_differences(test_set, subject_manifest, folder), test_set, partition
    )
    summary = (
        table.group_by("group")
        .agg(pl.col(f"{m}_diff").median().alias(f"median_{m}_diff") for m in predictions.CLINICAL)
        .sort("group")
    )
    return dg.Output(
        table,
        metadata={"median_differences_by_group": dg.MetadataValue.md(markdown_table(summary))},
    )


@dg.asset(**PREDICTION_TABLE_ASSET_ARGS)
def case_calibration(
    context: dg.AssetExecutionContext, test_set: pl.DataFrame, study: StudyResource
) -> dg.Output[pl.DataFrame]:
    """One row per test subject x phase x class (`overall`, LVBP, LVM, RVBP): ECE, Brier score
    and mean predictive entropy of the ensemble's averaged probabilities in a 10 mm band around
    the heart, with the per-bin sums a reliability diagram pools (docs/study.md)."""
    partition = study.partition(context.partition_key)
    folder = study.predictions_folder(partition)
    cases = pl.DataFrame(
        [(case_id(s, phase), s, phase) for s in test_set["subject_id"] for phase in PHASES],
        schema=["case_id", "subject_id", "phase"],
        orient="row",
    )
    records = calibration.read_calibration(folder).join(cases, on="case_id", how="right")
    unrecorded = records.filter(pl.col("class").is_null())["case_id"].to_list()
    if unrecorded:
        raise dg.Failure(
            f"{folder / calibration.CALIBRATION_FILE} has no records of test case(s) "
            f"{unrecorded[:10]}: re-materialise ensemble_prediction for {partition.key}"
        )
    table = with_partition(records.drop("case_id"), test_set, partition)
    medians = (
        table.filter(pl.col("class") == calibration.OVERALL)
        .group_by("group")
        .agg(
            median_ece=pl.col("ece").median(),
            median_brier=pl.col("brier").median(),
            median_entropy=pl.col("entropy").median(),
        )
        .sort("group")
    )
    return dg.Output(
        table,
        metadata={
            "rows": table.height,
            "median_overall_by_group": dg.MetadataValue.md(markdown_table(medians)),
        },
    )


def evaluation_assets(n_folds: int) -> list[dg.AssetsDefinition]:
    """The ensemble over `n_folds` fold checkpoints, and the tables computed from it."""
    return [
        ensemble_prediction_asset(n_folds),
        segmentation_metrics,
        clinical_measures,
        case_calibration,
    ]
