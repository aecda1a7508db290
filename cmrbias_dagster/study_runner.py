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

With a log folder (`make study`) each run's own output, Dagster's events and nnU-Net's epochs,
goes to `<log folder>/<job>[-<partition>].log`; the terminal shows study_display's lines.
"""

import argparse
import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import partial
from pathlib import Path

import dagster as dg

from cmrbias_dagster.lib.design.partition import file_name_of_key
from cmrbias_dagster.resources import PARALLEL_RUNS_VARIABLE
from cmrbias_dagster.study_display import partition_summary
from cmrbias_dagster.training_pool import (
    RUNNER_PROCESS_TAG,
    pool_steps,
    prepare_instance,
    process_identity,
)

# In dependency order; later stages of the study append their jobs here.
STUDY_JOBS: tuple[str, ...] = (
    "observe_cohort_job",
    "cohort_job",
    "experiment_job",
    "partition_job",
    "analysis_job",
)
# The job whose runs train, one per partition: they take nearly all of a study's time, so the
# progress bar counts them (and its ETA follows them).
TRAINING_JOB = "partition_job"


def run_study(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    jobs: Sequence[str] = STUDY_JOBS,
    log: Callable[[str], None] = print,
    parallel_runs: int = 1,
    log_dir: Path | None = None,
    on_start: Callable[[str], None] | None = None,
    on_finish: Callable[[str], None] | None = None,
) -> None:
    """Execute each job for every one of its partitions; after the first failed run start no other
    and raise SystemExit. `log` hears a line per finished run, `on_start` the pool's line and one
    per started run, `on_finish` the job's name of each run that succeeded; `log_dir` takes each
    run's output (None: it stays on this process's). With `parallel_runs` > 1 a partitioned
    job's runs execute that many at a time in worker processes, and a job with several fold steps
    per run as many as `runs_at_once` gives; the workers load the code location and the instance
    from the environment (CMRBIAS_PROFILE and the other CMRBIAS_ variables, DAGSTER_HOME):
    `defs` and `instance` must be those."""
    slots = defs.resources["training"].slots()
    prepared = prepare_instance(instance, defs.resources["training"])
    if on_start is not None:
        on_start(f"[study] {prepared}")
    for name in jobs:
        job = defs.resolve_job_def(name)
        keys = job.partitions_def.get_partition_keys() if job.partitions_def else [None]

        def started(index: int, key: str | None, name: str = name, total: int = len(keys)) -> None:
            if on_start is not None:
                on_start(f"[study] {name}{_where(index, key, total)} started")

        results = execute_runs(job, keys, instance, parallel_runs, slots, None, log_dir, started)
        for index, key, run_id, success, seconds in results:
            where = _where(index, key, len(keys))
            if not success:
                logged = f"; its output: {log_file(log_dir, name, key)}" if log_dir else ""
                raise SystemExit(
                    f"[study] {name}{where} failed{logged}; see the run in the UI (make ui)"
                )
            summary = partition_summary(instance, run_id) if key else ""
            line = f"[study] {name}{where} done in {seconds:.1f} s"
            log(f"{line}: {summary}" if summary else line)
            if on_finish is not None:
                on_finish(name)


def _where(index: int, key: str | None, total: int) -> str:
    return f" partition {key} ({index}/{total})" if key else ""


def log_file(log_dir: Path, job_name: str, key: str | None) -> Path:
    """Where a run of `job_name` for partition `key` writes its output."""
    suffix = f"-{file_name_of_key(key)}" if key else ""
    return log_dir / f"{job_name}{suffix}.log"


@contextlib.contextmanager
def output_to(path: Path | None) -> Iterator[None]:
    """This process's stdout and stderr (file descriptors 1 and 2, so child processes' too) go
    to `path` meanwhile; None leaves them."""
    if path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "a") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


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
    # By module name: in a worker of `python -m ...study_runner` this module is `__mp_main__`.
    target = dg.build_reconstructable_job(
        "cmrbias_dagster.study_runner", "job_from_environment", (job.name,)
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


DESCRIPTION = (
    "Run the whole study on the profile CMRBIAS_PROFILE names (default quick): every job for "
    "every partition, recorded in DAGSTER_HOME for the UI, with a progress display."
)


def add_study_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`cmrbias study`'s options (also `python -m cmrbias_dagster.study_runner`'s)."""
    parser.add_argument(
        "--parallel-runs",
        help="partitions at once: a number, or auto (from the usable cores and memory); "
        "default: the profile's parallel_runs",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        help="folder for each run's output (default: <work dir>/<profile>/logs/<start time>/)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (--help prints the options and starts nothing) and run the study."""
    parser = argparse.ArgumentParser(prog="cmrbias study", description=DESCRIPTION)
    return run(add_study_options(parser).parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the study with a progress display; returns the exit status."""
    from cmrbias_dagster.lib.design.parallelism import resolve_parallel_runs
    from cmrbias_dagster.partitions import STUDY_DESIGN

    profile = os.environ.get("CMRBIAS_PROFILE", "quick")
    setting = args.parallel_runs or os.environ.get(PARALLEL_RUNS_VARIABLE)
    setting = setting or STUDY_DESIGN.profile(profile).parallel_runs
    choice = resolve_parallel_runs(setting)
    # Before the code location loads: the training resource's CPU slots follow it, here and in
    # the workers, whatever memory the runs take meanwhile.
    os.environ[PARALLEL_RUNS_VARIABLE] = str(choice.runs)
    from cmrbias_dagster.definitions import PROFILE, defs
    from cmrbias_dagster.study_display import StudyDisplay, headline_table

    study = defs.resources["study"]
    log_dir = args.log_dir or study.output_dir("logs", time.strftime("study-%Y%m%d-%H%M%S"))
    log_dir.mkdir(parents=True, exist_ok=True)
    runs = {
        name: len(job.partitions_def.get_partition_keys()) if job.partitions_def else 1
        for name, job in zip(STUDY_JOBS, map(defs.resolve_job_def, STUDY_JOBS), strict=True)
    }
    partitions = runs[TRAINING_JOB]
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance, StudyDisplay(partitions) as display:
        display.line(
            f"[study] profile {PROFILE}: {sum(runs.values())} runs, {partitions} of them "
            f"trainings ({TRAINING_JOB}); {choice.reason}"
        )
        display.line(f"[study] each run's full output (Dagster, nnU-Net): {log_dir}/")
        try:
            run_study(
                defs,
                instance,
                log=display.line,
                on_finish=lambda job: display.advance() if job == TRAINING_JOB else None,
                parallel_runs=choice.runs,
                log_dir=log_dir,
                on_start=display.line,
            )
        except SystemExit as failure:
            display.line(str(failure))
            return 1
        display.finish()
        minutes = (time.monotonic() - started) / 60
        display.line(f"[study] profile {PROFILE} done in {minutes:.1f} min")
        display.line(headline_table(study.tables_folder()))
        display.line(f"[study] report: {study.report_file()}")
        display.line("[study] browse every run and asset: make ui (or cmrbias ui), then open")
        display.line("        http://127.0.0.1:3000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
