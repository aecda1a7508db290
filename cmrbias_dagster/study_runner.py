"""`make study`: run the whole study on the active profile, job after job, without a daemon.

Each job runs once per partition key and is recorded in DAGSTER_HOME, so `dagster dev` shows every
materialisation afterwards. No daemon is needed. A profile's `parallel_runs` partitions run at
once; how a job's runs execute (in this process, in worker processes, fold steps in step
processes) is run_execution.py's.

With a log folder (`make study`) each run's own output, Dagster's events and nnU-Net's epochs,
goes to `<log folder>/<job>[-<partition>].log`; the terminal shows study_display's lines.
"""

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg

from cmrbias_dagster.resources import PARALLEL_RUNS_VARIABLE
from cmrbias_dagster.run_execution import execute_runs
from cmrbias_dagster.run_output import log_file
from cmrbias_dagster.study_display import partition_summary
from cmrbias_dagster.training_pool import prepare_instance

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
