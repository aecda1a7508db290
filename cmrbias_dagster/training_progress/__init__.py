"""A fold's epochs reported live over Dagster Pipes, from the fresh training process to the step
that started it: `step_end` opens the session in the step (Dagster); `process_end` reports each
epoch from the fresh process (dagster_pipes only). This file imports neither, so the fresh process,
which imports `process_end`, never loads Dagster."""
