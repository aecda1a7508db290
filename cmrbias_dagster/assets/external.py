"""External test cohorts (the design's `external_test`, docs/study.md): each cohort imported
through its layout's importer, segmented by every partition's ensemble as the study's own test
set is (same folds, same post-processing), scored against its own truth, and the headline
tables with the study's test set and each external cohort side by side (`test_cohort`,
external_analysis.py).

The code location defines these assets and external_analysis.py's only when the design names an
external cohort, so a study without one runs exactly as before."""

from pathlib import Path

import dagster as dg
import polars as pl

from cmrbias_dagster.assets.support.ensemble_routes import ensemble_predictor
from cmrbias_dagster.assets.support.fold_keys import fold_checkpoint_keys
from cmrbias_dagster.executors import TRAINING_POOL
from cmrbias_dagster.lib.cohort.manifest import build_manifest
from cmrbias_dagster.lib.design.external import ExternalCohort
from cmrbias_dagster.lib.design.partition import StudyPartition
from cmrbias_dagster.lib.evaluation import predictions
from cmrbias_dagster.lib.external.subjects import external_test_subjects, undefined_where_unlabelled
from cmrbias_dagster.lib.nnunet.dataset import subject_cases
from cmrbias_dagster.lib.outputs import markdown_table
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import CohortResource, StudyResource, TrainingResource

EMPTY_MANIFEST = {"subject_id": pl.String, "test_cohort": pl.String}
METRICS_SCHEMA = {
    "subject_id": pl.String,
    "phase": pl.String,
    "class": pl.String,
    **dict.fromkeys(("dice", "hd95_mm", "assd_mm", "predicted_ml", "true_ml"), pl.Float64),
    "distances_defined": pl.Boolean,
    "group": pl.String,
    "held": pl.String,
    "experiment": pl.String,
    "ratio": pl.Int64,
    "test_cohort": pl.String,
}
PARTITIONED_ARGS = {"partitions_def": study_partitions, "group_name": "evaluation"}


def cohort_resource(cohort: ExternalCohort) -> CohortResource:
    """The `cohort` resource an external cohort's importer reads it through."""
    return CohortResource(
        root=str(cohort.root_path),
        layout=cohort.layout,
        demographics_file=cohort.demographics_file,
        demographics_format=cohort.demographics_format,
        required_fields=list(cohort.required_fields),
    )


def predictions_folder(study: StudyResource, partition: StudyPartition, cohort: str) -> Path:
    """A partition's predictions of one external cohort: external/<cohort>/predictions/<dataset>."""
    return study.output_dir("external", cohort, "predictions") / partition.dataset


def cohort_subjects(manifest: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """Each external cohort's rows of the manifest, by name."""
    return [(c, part) for (c,), part in manifest.group_by("test_cohort", maintain_order=True)]


@dg.asset(group_name="cohort", kinds={"polars", "duckdb"})
def external_subject_manifest(
    context: dg.AssetExecutionContext, study: StudyResource
) -> dg.Output[pl.DataFrame]:
    """Every usable subject of each external test cohort, imported by its layout's importer
    (as `subject_manifest`), with `test_cohort`; empty when the design names none."""
    parts, counts = [], {}
    for cohort in study.design().external_test:
        source = cohort_resource(cohort)
        root = source.require_root()
        canonical = study.output_dir("external", cohort.name, "canonical")
        manifest, rejected = build_manifest(
            root, source.subject_table(), canonical, source.cohort_layout()
        )
        if manifest.height == 0:
            raise dg.Failure(
                f"external cohort {cohort.name!r}: no usable subject in {root}: "
                f"{rejected.head(5).to_dicts()}"
            )
        if rejected.height:
            context.log.warning(f"{cohort.name}: {rejected.height} subject(s) rejected")
        parts.append(manifest.with_columns(test_cohort=pl.lit(cohort.name)))
        counts[cohort.name] = manifest.height
    table = (
        pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame(schema=EMPTY_MANIFEST)
    )
    return dg.Output(table, metadata={"subjects": dg.MetadataValue.json(counts)})


def external_ensemble_prediction_asset(n_folds: int) -> dg.AssetsDefinition:
    """`external_ensemble_prediction` over the `n_folds` fold checkpoints."""

    @dg.asset(
        **PARTITIONED_ARGS,
        kinds={"nnunet", "pytorch"},
        deps=fold_checkpoint_keys(n_folds),
        pool=TRAINING_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                "prediction_per_external_case", asset="external_ensemble_prediction", blocking=True
            )
        ],
    )
    def external_ensemble_prediction(
        context: dg.AssetExecutionContext,
        external_subject_manifest: pl.DataFrame,
        study: StudyResource,
        training: TrainingResource,
    ) -> dg.MaterializeResult:
        """The partition's ensemble (ensemble_prediction's folds, route and largest-component
        post-processing) on every external subject's ED and ES; one folder per cohort."""
        partition = study.partition(context.partition_key)
        summary, problems = {}, []
        for cohort, manifest in cohort_subjects(external_subject_manifest):
            subjects = external_test_subjects(manifest, partition.experiment)
            folder = predictions_folder(study, partition, cohort)
            predict, _ = ensemble_predictor(study, partition, subjects, n_folds)
            results, device = training.run(
                predict,
                study.nnunet_environment(),
                partition.dataset,
                range(n_folds),
                subject_cases(subjects, manifest),
                folder,
                study.settings().prediction,
                log=context.log.info,
            )
            problems += predictions.prediction_problems(subjects, manifest, folder)
            summary[cohort] = {"cases": len(results), "device": device, "path": str(folder)}
        return dg.MaterializeResult(
            metadata={"cohorts": dg.MetadataValue.json(summary)},
            check_results=[
                dg.AssetCheckResult(
                    check_name="prediction_per_external_case",
                    passed=not problems,
                    metadata={"problems": "; ".join(problems[:20]) or "none"},
                )
            ],
        )

    return external_ensemble_prediction


@dg.asset(
    **PARTITIONED_ARGS,
    kinds={"polars", "duckdb"},
    deps=[dg.AssetKey("external_ensemble_prediction")],
    metadata={"partition_expr": {"experiment": "experiment", "ratio": "ratio"}},
)
def external_segmentation_metrics(
    context: dg.AssetExecutionContext, external_subject_manifest: pl.DataFrame, study: StudyResource
) -> dg.Output[pl.DataFrame]:
    """segmentation_metrics' rows for every external subject x phase x class, against the
    subject's own truth, with `test_cohort`; DSC, HD95 and ASSD null where that truth has no
    voxel of the class (Sunnybrook: no RV), and group or held null where the cohort does not
    record the experiment's attribute."""
    partition = study.partition(context.partition_key)
    parts = []
    for cohort, manifest in cohort_subjects(external_subject_manifest):
        subjects = external_test_subjects(manifest, partition.experiment)
        folder = predictions_folder(study, partition, cohort)
        metrics = undefined_where_unlabelled(
            predictions.case_metrics(subjects, manifest, folder)
        ).join(subjects, on="subject_id")
        parts.append(
            metrics.with_columns(
                experiment=pl.lit(partition.experiment.name), ratio=pl.lit(partition.ratio)
            )
        )
    table = pl.concat(parts) if parts else pl.DataFrame(schema=METRICS_SCHEMA)
    table = table.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA)
    medians = table.group_by("test_cohort", "class").agg(median_dsc=pl.col("dice").median())
    return dg.Output(
        table,
        metadata={
            "rows": table.height,
            "undefined_rows": table["dice"].null_count(),
            "median_dsc_by_cohort_and_class": dg.MetadataValue.md(
                markdown_table(medians.sort("test_cohort", "class"))
            ),
        },
    )


def external_assets(n_folds: int) -> list[dg.AssetsDefinition]:
    """The external test cohorts' import, segmentation and scoring, for a study over `n_folds`
    fold checkpoints; their tables are external_analysis.py's."""
    return [
        external_subject_manifest,
        external_ensemble_prediction_asset(n_folds),
        external_segmentation_metrics,
    ]
