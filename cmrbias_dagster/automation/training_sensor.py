"""`training_sensor` and the nightly schedule: train only partitions whose split changed."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from cmrbias_dagster.assets.training import fold_checkpoint
from cmrbias_dagster.automation.events import (
    IN_FLIGHT,
    NNUNET_DATASET,
    PARTITION_TAG,
    TRAINING_SPLIT,
    built_from,
    latest_event,
    version_of,
)
from cmrbias_dagster.lib.refresh_plan import (
    RefreshPlan,
    decode_cursor,
    encode_cursor,
    plan_refresh,
)
from cmrbias_dagster.partitions import (
    study_partitions,
)


def fold_keys(n_folds: int) -> list[dg.AssetKey]:
    """The fold checkpoint assets of a profile with `n_folds` folds."""
    return [fold_checkpoint(fold).key for fold in range(n_folds)]


def training_split_versions(
    instance: dg.DagsterInstance, folds: list[dg.AssetKey]
) -> tuple[dict[str, str], dict[str, str | None]]:
    """Per drawn study partition: the latest training_split version, and the one its nnU-Net
    dataset was built from when every fold checkpoint was trained after that dataset (else None)."""
    latest, built = {}, {}
    for partition in study_partitions.get_partition_keys():
        version = version_of(latest_event(instance, TRAINING_SPLIT, partition))
        if version is None:
            continue
        dataset = latest_event(instance, NNUNET_DATASET, partition)
        checkpoints = [latest_event(instance, key, partition) for key in folds]
        trained = dataset is not None and all(
            checkpoint is not None and checkpoint.storage_id > dataset.storage_id
            for checkpoint in checkpoints
        )
        latest[partition] = version
        built[partition] = (
            built_from(instance, TRAINING_SPLIT, dataset, partition) if trained else None
        )
    return latest, built


def partitions_in_training(instance: dg.DagsterInstance, job_name: str) -> set[str]:
    """Study partitions that a queued or running run of `job_name` builds nnU-Net data for (runs
    that only re-draw a split do not count)."""
    runs = instance.get_run_records(dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT))
    return {
        record.dagster_run.tags[PARTITION_TAG]
        for record in runs
        if PARTITION_TAG in record.dagster_run.tags
        and (
            record.dagster_run.asset_selection is None
            or NNUNET_DATASET in record.dagster_run.asset_selection
        )
    }


def plan_training(
    instance: dg.DagsterInstance,
    requested: dict[str, str],
    job_name: str,
    folds: list[dg.AssetKey],
) -> RefreshPlan:
    """The partitions to train: split changed or never trained, not requested or in training."""
    latest, built = training_split_versions(instance, folds)
    busy = {p: latest[p] for p in partitions_in_training(instance, job_name) if p in latest}
    return plan_refresh(latest, built, {**requested, **busy})


def training_sensor(
    partition_job: UnresolvedAssetJobDefinition, n_folds: int
) -> dg.SensorDefinition:
    """The sensor that trains each partition whose training split changed, once per version."""
    folds = fold_keys(n_folds)

    @dg.sensor(
        name="training_sensor",
        job=partition_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests partition_job for each partition whose latest training_split data "
        "version is not the one its nnunet_dataset and fold checkpoints were built from (or that "
        "was never trained), once per version; the cursor holds what was requested. Stopped by "
        "default: on an untrained study it would start training every partition.",
    )
    def train_changed_partitions(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        plan = plan_training(
            context.instance, decode_cursor(context.cursor), partition_job.name, folds
        )
        return dg.SensorResult(
            run_requests=[dg.RunRequest(partition_key=p) for p in plan.requests],
            skip_reason=None if plan.requests else "no training split changed",
            cursor=encode_cursor(plan.requested),
        )

    return train_changed_partitions


def nightly_training_schedule(
    partition_job: UnresolvedAssetJobDefinition, n_folds: int
) -> dg.ScheduleDefinition:
    """02:00 UTC: train every partition whose split changed or whose training failed."""
    folds = fold_keys(n_folds)

    @dg.schedule(
        name="nightly_training_schedule",
        cron_schedule="0 2 * * *",
        job=partition_job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="At 02:00 UTC, requests partition_job for every partition whose training "
        "split is not the one it was trained from, unless a run is already building it. Without a "
        "cursor it also retries partitions whose last training failed.",
    )
    def train_outdated_nightly(
        context: dg.ScheduleEvaluationContext,
    ) -> list[dg.RunRequest] | dg.SkipReason:
        plan = plan_training(context.instance, {}, partition_job.name, folds)
        if not plan.requests:
            return dg.SkipReason("every drawn partition is trained from its current split")
        return [dg.RunRequest(partition_key=p, run_key=p) for p in plan.requests]

    return train_outdated_nightly
