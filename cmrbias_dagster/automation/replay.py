"""Sensor ticks evaluated and carried out in-process, as the daemon would: for tests, benchmarks
and a user checking what the automation would request without starting a daemon."""

from pathlib import Path

import dagster as dg
import duckdb


class SensorReplay:
    """Evaluates a sensor's tick, records its asset events and runs its requests in `instance`."""

    def __init__(
        self,
        defs: dg.Definitions,
        resources: dict[str, object],
        instance: dg.DagsterInstance,
        run_config: dict | None = None,
    ):
        self.defs, self.resources, self.instance = defs, resources, instance
        self.run_config = run_config or {}

    def tick(self, sensor: str, cursor: str | None) -> dg.SensorResult:
        """One evaluation of `sensor` from `cursor`; nothing is run yet."""
        context = dg.build_sensor_context(
            instance=self.instance, cursor=cursor, definitions=self.defs, resources=self.resources
        )
        data = self.defs.resolve_sensor_def(sensor).evaluate_tick(context)
        return dg.SensorResult(
            data.run_requests, cursor=data.cursor, asset_events=data.asset_events
        )

    def run(self, tick: dg.SensorResult) -> None:
        """Record the tick's asset events, then run each request; RuntimeError if one fails."""
        for event in tick.asset_events:
            self.instance.report_runless_asset_event(event)
        for request in tick.run_requests or []:
            result = self.defs.resolve_job_def(request.job_name).execute_in_process(
                instance=self.instance,
                partition_key=request.partition_key,
                asset_selection=request.asset_selection,
                run_config=self.run_config,
            )
            if not result.success:
                raise RuntimeError(f"{request.job_name} {request.partition_key} failed")

    def until_quiet(self, sensor: str, cursor: str | None) -> tuple[list[list[str]], str | None]:
        """Tick `sensor` and run its requests until it requests nothing; returns each tick's
        requests as `job:partition` and the final cursor."""
        waves = []
        while (tick := self.tick(sensor, cursor)).run_requests:
            waves.append([f"{r.job_name}:{r.partition_key}" for r in tick.run_requests])
            self.run(tick)
            cursor = tick.cursor
        return waves, tick.cursor


def training_split_members(database: Path) -> dict[str, list[str]]:
    """Each training split's sorted subject ids, keyed "experiment|ratio", from the DuckDB file."""
    with duckdb.connect(str(database), read_only=True) as db:
        rows = db.sql(
            "select experiment || '|' || ratio, list(subject_id order by subject_id) "
            "from cmrbias.training_split group by all"
        ).fetchall()
    return dict(rows)
