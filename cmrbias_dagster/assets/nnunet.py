"""nnU-Net assets per experiment x ratio: the raw dataset, then its plans and preprocessed data."""

import dagster as dg
import polars as pl

from cmrbias_dagster.lib.cases import subject_cases
from cmrbias_dagster.lib.folds import nnunet_splits
from cmrbias_dagster.lib.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet_dataset import (
    NnunetEnvironment,
    dataset_name,
    stable_dataset_id,
    write_raw_dataset,
)
from cmrbias_dagster.lib.nnunet_plan_edits import PlanEdits
from cmrbias_dagster.lib.nnunet_plans import dataset_fingerprint_summary, plan_and_preprocess
from cmrbias_dagster.lib.versions import table_version
from cmrbias_dagster.partitions import experiment_and_ratio, study_partitions
from cmrbias_dagster.resources import StudyResource


def nnunet_environment(study: StudyResource) -> NnunetEnvironment:
    """The profile's nnU-Net folders under data/work/<profile>/nnunet/."""
    base = study.output_dir("nnunet")
    return NnunetEnvironment(base / "raw", base / "preprocessed", base / "results")


def partition_dataset(study: StudyResource, partition_key: str) -> tuple[int, str]:
    """The stable nnU-Net dataset id and folder name of a study partition."""
    name, ratio = experiment_and_ratio(partition_key)
    design = study.design()
    dataset_id = stable_dataset_id(design.experiment_names.index(name), design.ratios.index(ratio))
    return dataset_id, dataset_name(dataset_id, name, ratio)


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
    _, name = partition_dataset(study, context.partition_key)
    cases = subject_cases(training_split, subject_manifest)
    folder = write_raw_dataset(cases, name, nnunet_environment(study))
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
    dataset_id, _ = partition_dataset(study, context.partition_key)
    edits = PlanEdits.from_mapping(study.settings().nnunet)
    folder = run_in_fresh_process(
        plan_and_preprocess, dataset_id, nnunet_environment(study), edits, nnunet_splits(cv_folds)
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
