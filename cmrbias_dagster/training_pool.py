"""The Dagster pool that every fold step claims (`nnunet_training`), limited to the training
resource's slots, so that a fold step waiting for a device shows in the UI as waiting for a pool
slot instead of running while it waits for a device lease.

`make study` sets the limit before its runs; `make ui` sets it before starting the UI
(`python -m cmrbias_dagster.training_pool`). Without a daemon nothing frees the slots of a run
that ended without freeing them (a killed process): `free_slots_of_ended_runs` does, for runs
the instance records as finished.
"""

import dagster as dg

from cmrbias_dagster.executors import TRAINING_POOL
from cmrbias_dagster.resources import TrainingResource


def set_training_pool_limit(instance: dg.DagsterInstance, training: TrainingResource) -> int:
    """Limit the fold steps' pool to the training resource's slots; returns the limit (0 when the
    instance keeps no pools, as an ephemeral one)."""
    if not instance.event_log_storage.supports_global_concurrency_limits:
        return 0
    limit = training.slots()
    instance.event_log_storage.set_concurrency_slots(TRAINING_POOL, limit)
    return limit


def free_slots_of_ended_runs(instance: dg.DagsterInstance) -> list[str]:
    """Free the pool slots still held by finished runs; returns those runs' ids."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    held = {slot.run_id for slot in storage.get_concurrency_info(TRAINING_POOL).claimed_slots}
    ended = [run_id for run_id in sorted(held) if _has_ended(instance, run_id)]
    for run_id in ended:
        storage.free_concurrency_slots_for_run(run_id)
    return ended


def pool_steps(job: dg.JobDefinition) -> int:
    """How many of a job's steps claim the training pool (a partition run's fold steps)."""
    return sum(1 for node in job.graph.nodes if node.definition.pool == TRAINING_POOL)


def _has_ended(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is None or run.is_finished


def main() -> None:
    from cmrbias_dagster.definitions import defs

    with dg.DagsterInstance.get() as instance:
        limit = set_training_pool_limit(instance, defs.resources["training"])
        freed = free_slots_of_ended_runs(instance)
    print(f"[pool] {TRAINING_POOL}: {limit} fold steps at once; freed slots of {len(freed)} runs")


if __name__ == "__main__":
    main()
