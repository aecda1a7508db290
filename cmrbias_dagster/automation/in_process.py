"""The automation evaluated and carried out in-process, tick by tick, as the daemon would: for the
tests, the incremental benchmark, and a user checking what would be requested without a daemon."""

from collections import defaultdict
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb

from cmrbias_dagster.automation.cohort_observation import cohort_observation_sensor
from cmrbias_dagster.lib.design.partition import partition_key


class AutomationReplay:
    """Evaluates one automation sensor's conditions from its own cursor, and runs what they
    request."""

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        sensor: dg.AutomationConditionSensorDefinition,
        run_config: dict | None = None,
    ):
        self.defs, self.instance, self.sensor = defs, instance, sensor
        self.run_config = run_config or {}
        self.cursor = None

    def tick(self, at: datetime | None = None) -> dict[str, set[str | None]]:
        """One evaluation at `at` (now if None); returns the requested partitions per asset."""
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            asset_selection=self.sensor.asset_selection,
            evaluation_time=at,
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return {
            key.to_user_string(): set(result.get_requested_partitions(key))
            for key in self.defs.resolve_asset_graph().toposorted_asset_keys
            if result.get_num_requested(key)
        }

    def run(self, requested: dict[str, set[str | None]]) -> None:
        """One run per partition key, upstream assets first; RuntimeError if one fails."""
        keys_by_partition: dict[str | None, list[str]] = defaultdict(list)
        for key, partitions in requested.items():  # already in dependency order
            for partition in partitions:
                keys_by_partition[partition].append(key)
        job = self.defs.resolve_implicit_global_asset_job_def()
        for partition, keys in keys_by_partition.items():
            result = job.execute_in_process(
                instance=self.instance,
                partition_key=partition,
                asset_selection=[dg.AssetKey(key) for key in keys],
                run_config=self.run_config,
            )
            if not result.success:
                raise RuntimeError(f"{keys} {partition} failed")

    def until_quiet(self) -> list[dict[str, set[str | None]]]:
        """Tick and run the requests until a tick requests nothing; returns each tick's requests."""
        waves = []
        while requested := self.tick():
            waves.append(requested)
            self.run(requested)
        return waves


def observe_cohort(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Observe the raw cohort now, as a tick of `cohort_observation_sensor` does (recorded even
    when the listing is unchanged: an observation with the same data version updates nothing)."""
    context = dg.build_sensor_context(instance=instance, resources=defs.resources)
    result = cohort_observation_sensor(context)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)


def training_split_members(database: Path) -> dict[str, list[str]]:
    """Each training split's sorted subject ids by partition key, from the DuckDB file."""
    with duckdb.connect(str(database), read_only=True) as db:
        rows = db.sql(
            "select experiment, ratio, list(subject_id order by subject_id) "
            "from cmrbias.training_split group by all"
        ).fetchall()
    return {partition_key(experiment, ratio): members for experiment, ratio, members in rows}
