"""`cohort_sensor`: refresh the manifest, test sets and splits when the raw cohort changes."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from cmrbias_dagster.assets.cohort import raw_cohort
from cmrbias_dagster.automation.events import (
    CV_FOLDS,
    DATA_VERSION_TAG,
    MANIFEST,
    MANIFEST_ITEM,
    TEST_SET,
    TRAINING_SPLIT,
    built_from,
    item,
    item_partition,
    latest_event,
    version_of,
)
from cmrbias_dagster.lib.cohort.manifest import cohort_listing_version
from cmrbias_dagster.lib.refresh_plan import (
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
