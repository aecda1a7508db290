"""`make study`: run the whole study on the active profile, job after job, without a daemon.

Each job runs once per partition key and is recorded in DAGSTER_HOME, so `dagster dev` shows every
materialisation afterwards. No daemon is needed. A profile's `parallel_runs` partitions run at once,
in worker processes: Dagster configures Python logging at the start of every run, which can
deadlock against another run logging in a thread of the same process.
"""

import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import partial

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
    parallel_runs: int = 1,
) -> None:
    """Execute each job for every one of its partitions; after the first failed run start no other
    and raise SystemExit. With `parallel_runs` > 1 a partitioned job's runs execute that many at
    a time in worker processes, which load the code location and the instance from the
    environment (CMRBIAS_PROFILE and the other CMRBIAS_ variables, DAGSTER_HOME): `defs` and
    `instance` must be those."""
    for name in jobs:
        job = defs.resolve_job_def(name)
        keys = job.partitions_def.get_partition_keys() if job.partitions_def else [None]
        if parallel_runs > 1 and len(keys) > 1:
            results = _in_worker_processes(partial(_execute_named, name), keys, parallel_runs)
        else:
            results = (
                (index, key, *_execute(job, instance, key))
                for index, key in enumerate(keys, start=1)
            )
        for index, key, success, seconds in results:
            where = f" partition {key} ({index}/{len(keys)})" if key else ""
            if not success:
                raise SystemExit(f"[study] {name}{where} failed; see the run in the UI (make ui)")
            log(f"[study] {name}{where} done in {seconds:.1f} s")


def _execute(
    job: dg.JobDefinition, instance: dg.DagsterInstance, key: str | None
) -> tuple[bool, float]:
    started = time.monotonic()
    result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
    return result.success, time.monotonic() - started


def _execute_named(job_name: str, key: str | None) -> tuple[bool, float]:
    from cmrbias_dagster.definitions import defs

    with dg.DagsterInstance.get() as instance:
        return _execute(defs.resolve_job_def(job_name), instance, key)


def _in_worker_processes(execute: Callable, keys: list, workers: int) -> Iterator[tuple]:
    """Yield (index, key, *execute(key)) as runs finish, at most `workers` running at once. A run
    starts only when the caller asks for the next result, so none starts after a failed one."""
    waiting = iter(enumerate(keys, start=1))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running: dict[Future, tuple[int, object]] = {}

        def start_next() -> None:
            for index, key in waiting:
                running[pool.submit(execute, key)] = (index, key)
                return

        for _ in range(workers):
            start_next()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: running[f][0]):
                index, key = running.pop(future)
                yield index, key, *future.result()
                start_next()


def main() -> None:
    from cmrbias_dagster.definitions import PROFILE, STUDY_DESIGN, defs

    started = time.monotonic()
    parallel_runs = STUDY_DESIGN.profile(PROFILE).parallel_runs
    with dg.DagsterInstance.get() as instance:
        run_study(defs, instance, parallel_runs=parallel_runs)
    minutes = (time.monotonic() - started) / 60
    print(f"[study] profile {PROFILE} done in {minutes:.1f} min; browse it with `make ui`")
    print(f"[study] report: {defs.resources['study'].report_file()}")


if __name__ == "__main__":
    main()
