"""How many partitions `make study` runs at once: a profile's `parallel_runs`, a number or `auto`
(from the cores this process may use and the memory the machine has available)."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

AUTO: Literal["auto"] = "auto"

# Resident memory one partition run needs: its runner worker (Dagster and the code location loaded,
# 0.60 GB) plus its quick nnU-Net training process at its peak (0.71 GB), 1.3 GB, rounded up for
# prediction and evaluation. RSS sampled from /proc every 2 s during a quick `make study` on the
# 2-core CI machine (BENCHMARKS.md, "Parallel runs").
MEMORY_PER_RUN_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class ParallelRuns:
    """The partitions to run at once and, for the start of the study, why."""

    runs: int
    reason: str


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container or taskset limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def available_memory_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The kernel's MemAvailable estimate, or None where /proc/meminfo does not say."""
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def runs_for_machine(cores: int, available_bytes: int | None, bytes_per_run: int) -> int:
    """One run per usable core, fewer when the available memory holds fewer runs; at least one."""
    by_memory = cores if available_bytes is None else available_bytes // bytes_per_run
    return max(1, min(cores, by_memory))


def resolve_parallel_runs(
    setting: int | str,
    cores: int | None = None,
    available_bytes: int | None = None,
    bytes_per_run: int = MEMORY_PER_RUN_BYTES,
) -> ParallelRuns:
    """The profile's `parallel_runs` (or its override, a string): a number as it is, `auto` from
    this machine (or from `cores` and `available_bytes` when given)."""
    if setting != AUTO:
        runs = int(setting)
        if runs < 1:
            raise ValueError(f"parallel_runs must be at least 1 or {AUTO!r}, got {setting!r}")
        return ParallelRuns(runs, f"parallel_runs: {runs} (set, not auto)")
    cores = usable_cores() if cores is None else cores
    if available_bytes is None:
        available_bytes = available_memory_bytes()
    runs = runs_for_machine(cores, available_bytes, bytes_per_run)
    memory = "unknown" if available_bytes is None else f"{available_bytes / 1024**3:.1f} GiB"
    return ParallelRuns(
        runs,
        f"parallel_runs: auto -> {runs} ({cores} usable cores, {memory} available memory, "
        f"{bytes_per_run / 1024**3:.1f} GiB per run)",
    )
