"""The fresh training process's end of the Dagster Pipes channel (the step's end is
`step_end`): each epoch's line goes to the run's event log while the fold trains.

It imports dagster_pipes only, never dagster, so the fresh process stays light; and it lives outside
`lib`, which knows nothing of Dagster.
"""

from collections.abc import Callable
from typing import Any

from dagster_pipes import open_dagster_pipes

from cmrbias_dagster.lib.nnunet.epoch_reports import epoch_line


def train_reporting_epochs(train: Callable[..., Any], *args: Any) -> Any:
    """`train(*args, on_epoch=...)` with each EpochReport logged to the Dagster step that opened
    the Pipes session; call in a process started with that session's environment."""
    with open_dagster_pipes() as pipes:
        return train(*args, on_epoch=lambda report: pipes.log.info(epoch_line(report)))
