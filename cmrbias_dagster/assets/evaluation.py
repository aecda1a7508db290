"""Evaluation per experiment x ratio: the ensemble on the test set, then the metrics and clinical
measures computed from it (assets/measures.py)."""

import time

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.measures import (
    TEST_SET,
    clinical_measures,
    predictions_folder,
    segmentation_metrics,
)
from cmrbias_dagster.assets.nnunet import nnunet_environment, partition_dataset
from cmrbias_dagster.lib import evaluation
from cmrbias_dagster.lib.cases import subject_cases
from cmrbias_dagster.lib.nnunet_inference import PredictionSettings, predict_ensemble
from cmrbias_dagster.lib.render import markdown_image, prediction_overlay_png
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import StudyResource
from cmrbias_dagster.resources.training import TrainingResource


def evaluation_assets(n_folds: int) -> list[dg.AssetsDefinition]:
    """The ensemble over `n_folds` fold checkpoints, and the tables computed from it."""

    @dg.asset(
        partitions_def=study_partitions,
        group_name="evaluation",
        kinds={"nnunet", "pytorch"},
        ins=TEST_SET,
        deps=[dg.AssetKey(f"fold_{fold}_checkpoint") for fold in range(n_folds)],
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
        largest connected component kept per class; NIfTI in the image's own geometry."""
        _, dataset = partition_dataset(study, context.partition_key)
        cases = subject_cases(test_set, subject_manifest)
        folder = predictions_folder(study, context.partition_key)
        settings = PredictionSettings.from_mapping(study.settings().prediction)
        started = time.monotonic()
        results, device = training.run(
            predict_ensemble,
            nnunet_environment(study),
            dataset,
            range(n_folds),
            cases,
            folder,
            settings,
        )
        seconds = time.monotonic() - started
        problems = evaluation.prediction_problems(test_set, subject_manifest, folder)
        ensemble = sum(r.ensemble_mean_dice for r in results) / len(results)
        folds = [sum(r.fold_mean_dice[k] for r in results) / len(results) for k in range(n_folds)]
        return dg.MaterializeResult(
            metadata={
                "cases": len(results),
                "device": device,
                "seconds": round(seconds, 1),
                "ensemble_mean_dice": round(ensemble, 4),
                "fold_mean_dice": dg.MetadataValue.json([round(d, 4) for d in folds]),
                "path": dg.MetadataValue.path(str(folder)),
                "montage": dg.MetadataValue.md(
                    markdown_image(prediction_overlay_png(cases[:6:2], folder), "test cases")
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

    return [ensemble_prediction, segmentation_metrics, clinical_measures]
