"""How the study runner executes a job's runs, one per partition key.

A job with several fold steps per run (`partition_job` when a profile trains more than one fold)
runs each step in its own process (Dagster's multiprocess executor), enough runs at once to fill
the training pool's slots (training_pool.py): fold steps of different partitions and folds
train side by side and a step beyond the limit waits for a pool slot. Other jobs, and every job
of a profile with one fold per partition (quick), run each partition's steps in its run's process,
as step processes would only add their start-up time. With `parallel_runs` > 1 runs execute in
worker processes: Dagster configures Python logging at the start of every run, which can deadlock
against another run logging in a thread of the same process.
"""

import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import partial
from pathlib import Path

import dagster as dg

from cmrbias_dagster.run_output import log_file, output_to
from cmrbias_dagster.training_pool import RUNNER_PROCESS_TAG, pool_steps, process_identity


def execute_runs(
    job: dg.JobDefinition,
    keys: Sequence[str | None],
    instance: dg.DagsterInstance,
    parallel_runs: int = 1,
    slots: int = 0,
    assets: Sequence[dg.AssetKey] | None = None,
    log_dir: Path | None = None,
    on_start: Callable[[int, str | None], None] | None = None,
) -> Iterator[tuple[int, str | None, str, bool, float]]:
    """Yield (index, key, run id, success, seconds) for a run of `job` (only `assets` of it, if
    given) per key, as they finish. A job with several fold steps per run runs its steps in
    processes, `runs_at_once` runs at a time; others run in process, `parallel_runs` at a time.
    `slots` is the training pool's limit; `on_start` hears (index, key) as a run starts."""
    folds = pool_steps(job)
    if folds > 1:
        execute = partial(_execute_named, job.name, True, assets, log_dir)
        workers = runs_at_once(parallel_runs, slots, folds)
        return _in_worker_processes(execute, keys, workers, on_start)
    if parallel_runs > 1 and len(keys) > 1:
        execute = partial(_execute_named, job.name, False, assets, log_dir)
        return _in_worker_processes(execute, keys, parallel_runs, on_start)
    return _in_this_process(job, instance, assets, log_dir, keys, on_start)


def _in_this_process(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    assets: Sequence[dg.AssetKey] | None,
    log_dir: Path | None,
    keys: Sequence[str | None],
    on_start: Callable[[int, str | None], None] | None,
) -> Iterator[tuple[int, str | None, str, bool, float]]:
    for index, key in enumerate(keys, start=1):
        if on_start is not None:
            on_start(index, key)
        with output_to(log_file(log_dir, job.name, key) if log_dir else None):
            outcome = _execute(job, instance, assets, key)
        yield index, key, *outcome


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
) -> tuple[str, bool, float]:
    started = time.monotonic()
    result = job.execute_in_process(
        instance=instance,
        partition_key=key,
        asset_selection=assets,
        raise_on_error=False,
        tags={RUNNER_PROCESS_TAG: process_identity()},
    )
    return result.run_id, result.success, time.monotonic() - started


def _execute_in_step_processes(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    assets: Sequence[dg.AssetKey] | None,
    key: str | None,
) -> tuple[str, bool, float]:
    started = time.monotonic()
    target = dg.build_reconstructable_job(
        "cmrbias_dagster.run_execution", "job_from_environment", (job.name,)
    )
    tags = job.get_tags_for_partition_key(key, None) if key else {}
    tags = {**tags, RUNNER_PROCESS_TAG: process_identity()}
    with dg.execute_job(target, instance, tags=tags, asset_selection=assets) as result:
        return result.run_id, result.success, time.monotonic() - started


def _execute_named(
    job_name: str,
    step_processes: bool,
    assets: Sequence[dg.AssetKey] | None,
    log_dir: Path | None,
    key: str | None,
) -> tuple[str, bool, float]:
    with output_to(log_file(log_dir, job_name, key) if log_dir else None):
        job = job_from_environment(job_name)
        execute = _execute_in_step_processes if step_processes else _execute
        with dg.DagsterInstance.get() as instance:
            return execute(job, instance, assets, key)


def _in_worker_processes(
    execute: Callable,
    keys: Sequence,
    workers: int,
    on_start: Callable[[int, str | None], None] | None = None,
) -> Iterator[tuple]:
    """Yield (index, key, *execute(key)) as runs finish, at most `workers` running at once. A run
    starts only when the caller asks for the next result, so none starts after a failed one."""
    waiting = iter(enumerate(keys, start=1))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running: dict[Future, tuple[int, object]] = {}

        def start_next() -> None:
            for index, key in waiting:
                if on_start is not None:
                    on_start(index, key)
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
