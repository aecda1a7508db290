"""nnU-Net assets per experiment x ratio: the raw dataset, then its plans and preprocessed data; for
a cropping experiment also the cropped dataset of its second stage (docs/mitigation.md)."""

import dagster as dg
import polars as pl

from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.nnunet.dataset import subject_cases, write_raw_dataset
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.mitigation.cropping import (
    box_summary,
    cropped_environment,
    write_cropped_dataset,
)
from cmrbias_dagster.lib.nnunet.plans import dataset_fingerprint_summary, plan_and_preprocess
from cmrbias_dagster.lib.outputs import table_version
from cmrbias_dagster.lib.splits.folds import nnunet_splits
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import StudyResource


def cropping_margin(experiment: Experiment) -> float | None:
    """The heart box's margin in mm when the experiment crops to the heart; else None."""
    mitigation = experiment.mitigation
    return mitigation.crop_margin_mm if mitigation.uses("cropping") else None


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
    """The split's ED and ES cases in nnU-Net's raw format, with dataset.json (LVBP/LVM/RVBP);
    with cropping, also each case cropped to its labels' heart box plus the margin."""
    partition = study.partition(context.partition_key)
    name, margin = partition.dataset, cropping_margin(partition.experiment)
    cases = subject_cases(training_split, subject_manifest)
    cropped = {}
    if margin is not None:
        _, boxes = write_cropped_dataset(cases, name, study.nnunet_environment(), margin)
        cropped = {"crop_margin_mm": margin, **box_summary(boxes)}
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
        metadata={
            "cases": len(cases),
            "dataset": name,
            "path": dg.MetadataValue.path(str(folder)),
            **cropped,
        },
        data_version=dg.DataVersion(
            table_version(hashed, ["subject_id", "content_hash"])
            + ("" if margin is None else f"-cropped-{margin}mm")
        ),
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
    """nnU-Net's fingerprint, plan of the partition's network (2d unless the profile or experiment
    chooses another; with the profile's edits) and preprocessed data, plus the
    grouped folds as splits_final.json; with cropping, the same for the cropped dataset."""
    partition = study.partition(context.partition_key)
    env = study.nnunet_environment()
    crops = cropping_margin(partition.experiment) is not None
    trees = [env, cropped_environment(env)] if crops else [env]
    folder, *cropped = [
        run_in_fresh_process(
            plan_and_preprocess,
            partition.dataset_id,
            tree,
            study.settings().nnunet,
            nnunet_splits(cv_folds),
            network=partition.training.network,
        )
        for tree in trees
    ]
    summary = dataset_fingerprint_summary(folder)
    summary |= {
        f"cropped_{k}": v for f in cropped for k, v in dataset_fingerprint_summary(f).items()
    }
    return dg.MaterializeResult(
        metadata={
            **{
                key: dg.MetadataValue.json(value) if isinstance(value, list) else value
                for key, value in summary.items()
            },
            "path": dg.MetadataValue.path(str(folder)),
        }
    )
