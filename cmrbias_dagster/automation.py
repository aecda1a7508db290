"""Automation: refresh the cheap assets when the raw cohort changes, then train only the partitions
whose training split changed (sensors), with a nightly catch-up for training (schedule).

Both follow one rule (`lib/refresh_plan.py`): an item is rebuilt when the version of its input it
was last built from, the latest version recorded before it, is not the input's current version.
"""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from cmrbias_dagster.assets.cohort import raw_cohort
from cmrbias_dagster.assets.training import fold_checkpoint
from cmrbias_dagster.lib.manifest import cohort_listing_version
from cmrbias_dagster.lib.refresh_plan import (
    RefreshPlan,
    decode_cursor,
    encode_cursor,
    outdated,
    plan_refresh,
)
from cmrbias_dagster.partitions import (
    experiment_and_ratio,
    experiment_partitions,
    study_partitions,
)
from cmrbias_dagster.resources import CohortResource

# Where Dagster records the data version of an asset event, and the partition of a run.
DATA_VERSION_TAG = "dagster/data_version"
PARTITION_TAG = "dagster/partition"

MANIFEST = dg.AssetKey("subject_manifest")
MANIFEST_ITEM = "subject_manifest"
TEST_SET = dg.AssetKey("test_set")
TRAINING_SPLIT = dg.AssetKey("training_split")
CV_FOLDS = dg.AssetKey("cv_folds")
NNUNET_DATASET = dg.AssetKey("nnunet_dataset")
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def latest_event(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    partition: str | None = None,
    before: int | None = None,
    observation: bool = False,
) -> dg.EventLogRecord | None:
    """The latest materialization (or observation) of an asset partition, if given before a
    storage id."""
    records_filter = dg.AssetRecordsFilter(
        key, asset_partitions=[partition] if partition else None, before_storage_id=before
    )
    fetch = instance.fetch_observations if observation else instance.fetch_materializations
    records = fetch(records_filter, limit=1).records
    return records[0] if records else None


def version_of(record: dg.EventLogRecord | None) -> str | None:
    """The data version an asset event recorded."""
    event = record.asset_event if record else None
    return event.tags.get(DATA_VERSION_TAG) if event else None


def built_from(
    instance: dg.DagsterInstance,
    parent: dg.AssetKey,
    child: dg.EventLogRecord | None,
    partition: str | None = None,
    observation: bool = False,
) -> str | None:
    """The version of `parent` (partition) that `child` was built from: the latest before it."""
    if child is None:
        return None
    return version_of(latest_event(instance, parent, partition, child.storage_id, observation))


def item(key: dg.AssetKey, partition: str) -> str:
    """A cursor item: an asset partition, e.g. `test_set[race_black]`."""
    return f"{key.to_user_string()}[{partition}]"


def item_partition(name: str) -> str:
    """The partition key of a cursor item."""
    return name[name.index("[") + 1 : -1]


def versions_for_test_sets(
    instance: dg.DagsterInstance, manifest: str
) -> tuple[dict[str, str], dict[str, str | None]]:
    """Per test set: the current manifest version, and the one it was drawn from."""
    current, built = {}, {}
    for experiment in experiment_partitions.get_partition_keys():
        name = item(TEST_SET, experiment)
        current[name] = manifest
        built[name] = built_from(instance, MANIFEST, latest_event(instance, TEST_SET, experiment))
    return current, built


def split_versions(
    instance: dg.DagsterInstance, manifest: str, experiments: set[str]
) -> tuple[dict[str, str], dict[str, str | None]]:
    """Per split of `experiments`: the current manifest and test set versions, and the ones it
    was drawn from."""
    current, built = {}, {}
    for partition in study_partitions.get_partition_keys():
        experiment, _ = experiment_and_ratio(partition)
        if experiment not in experiments:
            continue
        split = latest_event(instance, TRAINING_SPLIT, partition)
        inputs = (
            built_from(instance, MANIFEST, split),
            built_from(instance, TEST_SET, split, experiment),
        )
        test_set = version_of(latest_event(instance, TEST_SET, experiment))
        current[item(TRAINING_SPLIT, partition)] = f"{manifest}+{test_set}"
        built[item(TRAINING_SPLIT, partition)] = None if None in inputs else "+".join(inputs)
    return current, built


def cohort_sensor(
    cohort_job: UnresolvedAssetJobDefinition,
    experiment_job: UnresolvedAssetJobDefinition,
    partition_job: UnresolvedAssetJobDefinition,
) -> dg.SensorDefinition:
    """The sensor that refreshes the manifest, then the test sets, then the splits."""

    @dg.sensor(
        name="cohort_sensor",
        jobs=[cohort_job, experiment_job, partition_job],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Watches the raw cohort's listing. When subjects arrive or change it observes "
        "raw_cohort and refreshes the manifest (cohort_job); on later ticks it re-draws each test "
        "set older than the manifest (experiment_job), then each split and its folds older than "
        "their manifest or test set (partition_job: training_split and cv_folds only). It never "
        "trains.",
    )
    def refresh_on_new_cohort(
        context: dg.SensorEvaluationContext, cohort: CohortResource
    ) -> dg.SensorResult:
        if not cohort.root_path.is_dir():
            return dg.SensorResult(skip_reason=f"cohort folder {cohort.root_path} does not exist")
        instance, requested = context.instance, decode_cursor(context.cursor)
        listing = cohort_listing_version(cohort.root_path)
        manifest = latest_event(instance, MANIFEST)
        observed = built_from(instance, raw_cohort.key, manifest, observation=True)
        plan = plan_refresh({MANIFEST_ITEM: listing}, {MANIFEST_ITEM: observed}, requested)
        if plan.requests:
            return dg.SensorResult(
                run_requests=[dg.RunRequest(job_name=cohort_job.name)],
                asset_events=[
                    dg.AssetObservation(raw_cohort.key, tags={DATA_VERSION_TAG: listing})
                ],
                cursor=encode_cursor(plan.requested),
            )
        if MANIFEST_ITEM in plan.requested:
            return dg.SensorResult(
                skip_reason=f"the manifest for cohort listing {listing} is not built yet (its run "
                "is queued, running or failed); test sets and splits wait for it",
                cursor=encode_cursor(plan.requested),
            )
        # Splits wait for their experiment's test set, so they never read one about to change.
        manifest_version = str(version_of(manifest))
        tests_current, tests_built = versions_for_test_sets(instance, manifest_version)
        tests = plan_refresh(tests_current, tests_built, plan.requested)
        ready = {item_partition(name) for name in tests_current} - {
            item_partition(name) for name in outdated(tests_current, tests_built)
        }
        splits = plan_refresh(*split_versions(instance, manifest_version, ready), tests.requested)
        run_requests = [
            *(
                dg.RunRequest(job_name=experiment_job.name, partition_key=item_partition(name))
                for name in tests.requests
            ),
            *(
                dg.RunRequest(
                    job_name=partition_job.name,
                    partition_key=item_partition(name),
                    asset_selection=[TRAINING_SPLIT, CV_FOLDS],
                )
                for name in splits.requests
            ),
        ]
        return dg.SensorResult(
            run_requests=run_requests,
            skip_reason=None if run_requests else "manifest, test sets and splits are up to date",
            cursor=encode_cursor(splits.requested),
        )

    return refresh_on_new_cohort


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
