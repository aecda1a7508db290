"""nnU-Net assets per experiment x ratio: the raw dataset, then its plans and preprocessed data."""

import dagster as dg
import polars as pl

from cmrbias_dagster.lib.nnunet.dataset import subject_cases, write_raw_dataset
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.plans import dataset_fingerprint_summary, plan_and_preprocess
from cmrbias_dagster.lib.outputs import table_version
from cmrbias_dagster.lib.splits.folds import nnunet_splits
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import StudyResource


@dg.asset(
    partitions_def=study_partitions,
    group_name="nnunet",
    kinds={"nnunet"},
    check_specs=[dg.AssetCheckSpec("case_files_present", asset="nnunet_dataset", blocking=True)],
)
def nnunet_dataset(
    context: dg.AssetExecutionContext,
    training_split: pl.DataFrame,
    subject_manifest: pl.DataFrame,
    study: StudyResource,
) -> dg.MaterializeResult:
    """The split's ED and ES cases in nnU-Net's raw format, with dataset.json (LVBP/LVM/RVBP)."""
    name = study.partition(context.partition_key).dataset
    cases = subject_cases(training_split, subject_manifest)
    folder = write_raw_dataset(cases, name, study.nnunet_environment())
    missing = [
        case.case_id
        for case in cases
        if not (folder / "imagesTr" / f"{case.case_id}_0000.nii.gz").is_file()
        or not (folder / "labelsTr" / f"{case.case_id}.nii.gz").is_file()
    ]
    hashed = training_split.join(
        subject_manifest.select("subject_id", "content_hash"), on="subject_id"
    )
    return dg.MaterializeResult(
        metadata={"cases": len(cases), "dataset": name, "path": dg.MetadataValue.path(str(folder))},
        data_version=dg.DataVersion(table_version(hashed, ["subject_id", "content_hash"])),
        check_results=[
            dg.AssetCheckResult(
                check_name="case_files_present",
                passed=not missing,
                metadata={"missing": ", ".join(missing) or "none"},
            )
        ],
    )


@dg.asset(
    partitions_def=study_partitions,
    group_name="nnunet",
    kinds={"nnunet"},
    deps=[nnunet_dataset],
)
def nnunet_plans(
    context: dg.AssetExecutionContext, cv_folds: pl.DataFrame, study: StudyResource
) -> dg.MaterializeResult:
    """nnU-Net's fingerprint, 2d plan (with the profile's edits) and preprocessed data, plus the
    grouped folds as splits_final.json."""
    folder = run_in_fresh_process(
        plan_and_preprocess,
        study.partition(context.partition_key).dataset_id,
        study.nnunet_environment(),
        study.settings().nnunet,
        nnunet_splits(cv_folds),
    )
    summary = dataset_fingerprint_summary(folder)
    return dg.MaterializeResult(
        metadata={
            **{
                key: dg.MetadataValue.json(value) if isinstance(value, list) else value
                for key, value in summary.items()
            },
            "path": dg.MetadataValue.path(str(folder)),
        }
    )
