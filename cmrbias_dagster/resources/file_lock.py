"""An exclusive lock on a file, for the writers of the DuckDB file to take turns."""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an flock on `lock_file`; each call opens its own descriptor, so threads of one process
    exclude each other as processes do, and a killed holder's lock is dropped by the kernel."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
