"""The training's Pipes channel: what a fresh process logs reaches the run's event log, and the
channel raises no Dagster deprecation, beta or preview warning beyond Dagster's own (pyproject)."""

import os
import subprocess
import sys
import warnings

import dagster as dg

from cmrbias_dagster.training_progress.step_end import training_progress_channel

CHILD = """from dagster_pipes import open_dagster_pipes
with open_dagster_pipes() as pipes:
    pipes.log.info("epoch 1 of 1")
"""


@dg.asset
def trained(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    with training_progress_channel(context) as environment:
        subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, **environment}, check=True)
    return dg.MaterializeResult()


def test_the_child_process_log_reaches_the_event_log_without_dagster_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught, dg.DagsterInstance.ephemeral() as instance:
        warnings.simplefilter("always")
        result = dg.materialize([trained], instance=instance)
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert result.success and "epoch 1 of 1" in messages
    dagster_warnings = [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if issubclass(w.category, (DeprecationWarning, dg.BetaWarning, dg.PreviewWarning))
        and "expected_writer_count" not in str(w.message)
    ]
    assert dagster_warnings == []
