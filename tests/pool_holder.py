"""`python -m tests.pool_holder`: a run of the study runner whose one step claims the training
pool and holds it for ten minutes, in the instance DAGSTER_HOME names (tests/test_killed_runs.py).
It loads the code location first, as the runner's processes do (pool_wait.install)."""

import time

import dagster as dg

import cmrbias_dagster.definitions  # noqa: F401  (installs pool_wait, as in every runner process)
from cmrbias_dagster.run_execution import execute_runs
from cmrbias_dagster.training_pool import TRAINING_POOL


@dg.op(pool=TRAINING_POOL)
def hold_a_training_slot() -> None:
    print("holding", flush=True)
    time.sleep(600)


@dg.job
def holding_job() -> None:
    hold_a_training_slot()


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        list(execute_runs(holding_job, [None], instance))
