"""The step's end of the Dagster Pipes channel from a fresh training process (whose end is
`process_end`): what the child logs appears in the run's event log as it comes."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import dagster as dg


@contextmanager
def training_progress_channel(context: dg.AssetExecutionContext) -> Iterator[Mapping[str, str]]:
    """Open a Pipes session for the step; yields the environment variables the fresh process
    needs to reach it. Messages are read from a temporary file as the process writes them, and
    the rest when the block ends."""
    # The op context: Dagster reads `run_id` from the one given, deprecated on the asset context.
    with dg.open_pipes_session(
        context=context.op_execution_context,
        context_injector=dg.PipesEnvContextInjector(),
        message_reader=dg.PipesTempFileMessageReader(),
    ) as session:
        yield session.get_bootstrap_env_vars()
