"""`make study`: run the whole study on the active profile, job after job, without a daemon.

Each job runs once per partition key and is recorded in DAGSTER_HOME, so `dagster dev` shows every
materialisation afterwards. No daemon is needed. A profile's `parallel_runs` partitions run at once,
in worker processes: Dagster configures Python logging at the start of every run, which can
deadlock against another run logging in a thread of the same process.

A job with several fold steps per run (`partition_job` when a profile trains more than one fold)
runs each step in its own process (Dagster's multiprocess executor), enough runs at once to fill
the training pool's slots (training_pool.py): fold steps of different partitions and folds
train side by side and a step beyond the limit waits for a pool slot. Other jobs, and every job
of a profile with one fold per partition (quick), run each partition's steps in its run's process,
as step processes would only add their start-up time.
"""

import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import partial

import dagster as dg

from cmrbias_dagster.training_pool import (
    free_slots_of_ended_runs,
    pool_steps,
    set_training_pool_limit,
)

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
    a time in worker processes, and a job with several fold steps per run as many as
    `runs_at_once` gives; the workers load the code location and the instance from the
    environment (CMRBIAS_PROFILE and the other CMRBIAS_ variables, DAGSTER_HOME): `defs` and
    `instance` must be those."""
    slots = set_training_pool_limit(instance, defs.resources["training"])
    free_slots_of_ended_runs(instance)
    for name in jobs:
        job = defs.resolve_job_def(name)
        keys = job.partitions_def.get_partition_keys() if job.partitions_def else [None]
        results = execute_runs(job, keys, instance, parallel_runs, slots)
        for index, key, success, seconds in results:
            where = f" partition {key} ({index}/{len(keys)})" if key else ""
            if not success:
                raise SystemExit(f"[study] {name}{where} failed; see the run in the UI (make ui)")
            log(f"[study] {name}{where} done in {seconds:.1f} s")


def execute_runs(
    job: dg.JobDefinition,
    keys: Sequence[str | None],
    instance: dg.DagsterInstance,
    parallel_runs: int = 1,
    slots: int = 0,
    assets: Sequence[dg.AssetKey] | None = None,
) -> Iterator[tuple[int, str | None, bool, float]]:
    """Yield (index, key, success, seconds) for a run of `job` (only `assets` of it, if given) per
    key, as they finish. A job with several fold steps per run runs its steps in processes,
    `runs_at_once` runs at a time; others run in process, `parallel_runs` at a time. `slots` is
    the training pool's limit."""
    folds = pool_steps(job)
    if folds > 1:
        execute = partial(_execute_named, job.name, True, assets)
        return _in_worker_processes(execute, keys, runs_at_once(parallel_runs, slots, folds))
    if parallel_runs > 1 and len(keys) > 1:
        execute = partial(_execute_named, job.name, False, assets)
        return _in_worker_processes(execute, keys, parallel_runs)
    return (
        (index, key, *_execute(job, instance, assets, key))
        for index, key in enumerate(keys, start=1)
    )


def runs_at_once(parallel_runs: int, slots: int, folds_per_run: int) -> int:
    """Runs of a job with `folds_per_run` fold steps per run to execute at once: enough to fill
    the pool's `slots` with fold steps, plus one that prepares or evaluates its partition
    meanwhile; never fewer than the profile's `parallel_runs`."""
    return max(parallel_runs, -(-slots // folds_per_run) + 1)


def job_from_environment(job_name: str) -> dg.JobDefinition:
    """The job of the code location the environment describes; step processes rebuild it."""
    from cmrbias_dagster.definitions import defs

    return defs.resolve_job_def(job_name)


def _execute(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    assets: Sequence[dg.AssetKey] | None,
    key: str | None,
) -> tuple[bool, float]:
    started = time.monotonic()
    result = job.execute_in_process(
        instance=instance, partition_key=key, asset_selection=assets, raise_on_error=False
    )
    return result.success, time.monotonic() - started


def _execute_in_step_processes(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    assets: Sequence[dg.AssetKey] | None,
    key: str | None,
) -> tuple[bool, float]:
    started = time.monotonic()
    # By module name: in a worker of `python -m ...study_runner` this module is `__mp_main__`.
    target = dg.build_reconstructable_job(
        "cmrbias_dagster.study_runner", "job_from_environment", (job.name,)
    )
    tags = job.get_tags_for_partition_key(key, None) if key else {}
    with dg.execute_job(target, instance, tags=tags, asset_selection=assets) as result:
        return result.success, time.monotonic() - started


def _execute_named(
    job_name: str, step_processes: bool, assets: Sequence[dg.AssetKey] | None, key: str | None
) -> tuple[bool, float]:
    job = job_from_environment(job_name)
    execute = _execute_in_step_processes if step_processes else _execute
    with dg.DagsterInstance.get() as instance:
        return execute(job, instance, assets, key)


def _in_worker_processes(execute: Callable, keys: Sequence, workers: int) -> Iterator[tuple]:
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
