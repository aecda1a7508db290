"""`make study`: run the whole study on the active profile, in this process, one job at a time.

Each job runs once per partition key and is recorded in DAGSTER_HOME, so `dagster dev` shows every
materialisation afterwards. No daemon is needed.
"""

import time
from collections.abc import Callable, Sequence

import dagster as dg

# In dependency order; later stages of the study append their jobs here.
STUDY_JOBS: tuple[str, ...] = (
    "observe_cohort_job",
    "cohort_job",
    "experiment_job",
    "partition_job",
    "analysis_job",
)


def run_study(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    jobs: Sequence[str] = STUDY_JOBS,
    log: Callable[[str], None] = print,
) -> None:
    """Execute each job for every one of its partitions; stop at the first failed run."""
    for name in jobs:
        job = defs.resolve_job_def(name)
        keys = job.partitions_def.get_partition_keys() if job.partitions_def else [None]
        for index, key in enumerate(keys, start=1):
            started = time.monotonic()
            result = job.execute_in_process(
                instance=instance, partition_key=key, raise_on_error=False
            )
            where = f" partition {key} ({index}/{len(keys)})" if key else ""
            if not result.success:
                raise SystemExit(f"[study] {name}{where} failed; see the run in the UI (make ui)")
            log(f"[study] {name}{where} done in {time.monotonic() - started:.1f} s")


def main() -> None:
    from cmrbias_dagster.assets.report import report_file
    from cmrbias_dagster.definitions import PROFILE, defs

    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        run_study(defs, instance)
    minutes = (time.monotonic() - started) / 60
    print(f"[study] profile {PROFILE} done in {minutes:.1f} min; browse it with `make ui`")
    print(f"[study] report: {report_file(defs.resources['study'])}")


if __name__ == "__main__":
    main()
