"""`cohort_observation_sensor`: records a `raw_cohort` observation when the cohort folder's listing
changes. Hand-written because Declarative Automation can only observe a source asset by launching
a run; a sensor records the observation without one (a run every few minutes would fill the UI's
run list), and `cohort_sensor`'s eager conditions react to the new data version."""

import dagster as dg

from cmrbias_dagster.lib.cohort.manifest import cohort_listing_version
from cmrbias_dagster.resources import CohortResource

RAW_COHORT = dg.AssetKey("raw_cohort")
DATA_VERSION_TAG = "dagster/data_version"


def cohort_observation(listing: str) -> dg.AssetObservation:
    """An observation of `raw_cohort` with `listing` as its data version."""
    return dg.AssetObservation(RAW_COHORT, tags={DATA_VERSION_TAG: listing})


@dg.sensor(
    name="cohort_observation_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s, hashes the cohort folder's listing as raw_cohort does; when it "
    "changed, records a raw_cohort observation (no run) with the new data version, which "
    "cohort_sensor's conditions then act on.",
)
def cohort_observation_sensor(
    context: dg.SensorEvaluationContext, cohort: CohortResource
) -> dg.SensorResult:
    if not cohort.root_path.is_dir():
        return dg.SensorResult(skip_reason=f"cohort folder {cohort.root_path} does not exist")
    listing = cohort_listing_version(cohort.root_path)
    if listing == context.cursor:
        return dg.SensorResult(skip_reason=f"cohort listing unchanged ({listing})")
    return dg.SensorResult(asset_events=[cohort_observation(listing)], cursor=listing)
