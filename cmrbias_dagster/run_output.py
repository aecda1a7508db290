"""Where a study run's own output goes: each run's log file, and this process's file descriptors
sent there while the run executes (so its child processes' output too)."""

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from cmrbias_dagster.lib.design.partition import file_name_of_key


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
