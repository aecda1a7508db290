"""What a benchmark's processes use while it runs: the machine's busy cores, each descendant
process's cores, and, where `nvidia-smi` answers, the GPU's utilisation and memory per process.

A thread samples once a second (Linux /proc, no extra packages, so it runs on a bare GPU machine).
bench/train_throughput.py wraps each packed run in it: the training processes are this process's
children, their augmentation workers its grandchildren, so "CPU use per worker" and "GPU
utilisation" sit beside the iterations/s they explain.
Run alone: python -m bench.resource_sampler [--seconds 10]   (samples this machine, prints JSON)
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def parent_and_cpu_seconds(stat: str) -> tuple[int, float]:
    """A /proc/<pid>/stat line's parent pid and user + system CPU seconds."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    return parent_and_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())[1]


def process_table() -> dict[int, tuple[int, float]]:
    """Every process's parent and CPU seconds so far."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            table[int(stat.parent.name)] = parent_and_cpu_seconds(stat.read_text())
        except OSError:  # gone while read
            continue
    return table


def descendant_depths(table: dict[int, tuple[int, float]], root: int) -> dict[int, int]:
    """Each descendant of `root` with its depth (children 1, grandchildren 2, ...)."""
    children = defaultdict(list)
    for pid, (parent, _) in table.items():
        children[parent].append(pid)
    depths, frontier = {}, [(root, 0)]
    while frontier:
        pid, depth = frontier.pop()
        for child in children[pid]:
            depths[child] = depth + 1
            frontier.append((child, depth + 1))
    return depths


def busy_and_total_ticks() -> tuple[int, int]:
    """The machine's busy and total CPU ticks so far (/proc/stat's first line)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def gpu_sample() -> dict | None:
    """GPU utilisation (%), memory used (MiB) and memory per process, or None without a GPU."""
    if not shutil.which("nvidia-smi"):
        return None
    query = [
        "nvidia-smi",
        "--query-gpu=utilization.gpu,memory.used",
        "--format=csv,noheader,nounits",
    ]
    apps = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    try:
        utilisation, memory = (
            subprocess.run(query, capture_output=True, text=True, timeout=5)
            .stdout.split("\n")[0]
            .split(",")
        )
        rows = subprocess.run(apps, capture_output=True, text=True, timeout=5).stdout.splitlines()
    except (subprocess.SubprocessError, ValueError):
        return None
    per_process = {
        int(pid): float(mib) for pid, mib in (row.split(",") for row in rows if row.strip())
    }
    return {"utilisation": float(utilisation), "memory": float(memory), "per_process": per_process}


class ResourceSampler:
    """`with ResourceSampler() as sampler: ...` then `sampler.summary()`."""

    def __init__(self, interval_s: float = 1.0, root: int | None = None) -> None:
        self.interval_s, self.root = interval_s, root or os.getpid()
        self.first_cpu: dict[int, float] = {}
        self.last_cpu: dict[int, float] = {}
        self.depth: dict[int, int] = {}
        self.gpu: list[dict] = []
        self._stop = threading.Event()

    def __enter__(self) -> "ResourceSampler":
        self.started, self.ticks = time.monotonic(), busy_and_total_ticks()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self.started
        busy, total = busy_and_total_ticks()
        self.busy_share = (busy - self.ticks[0]) / max(1, total - self.ticks[1])

    def _sample_until_stopped(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval_s):
                self.sample()
                return

    def sample(self) -> None:
        table = process_table()
        for pid, depth in descendant_depths(table, self.root).items():
            self.depth[pid] = depth
            self.first_cpu.setdefault(pid, table[pid][1])
            self.last_cpu[pid] = table[pid][1]
        if (gpu := gpu_sample()) is not None:
            self.gpu.append(gpu)

    def summary(self) -> dict:
        """Busy cores of the machine, cores used by each descendant by depth, GPU figures."""
        cores = {
            pid: (self.last_cpu[pid] - self.first_cpu[pid]) / self.seconds for pid in self.depth
        }
        by_depth: dict[int, list[float]] = defaultdict(list)
        for pid, used in cores.items():
            if used >= 0.01:  # idle helpers (resource trackers, finished validation workers)
                by_depth[self.depth[pid]].append(used)
        figures = {
            "seconds": round(self.seconds, 1),
            "machine_busy_cores": round(self.busy_share * (os.cpu_count() or 1), 2),
            "cores_per_process_by_depth": {
                depth: {
                    "processes": len(used),
                    "mean": round(statistics.mean(used), 3),
                    "max": round(max(used), 3),
                }
                for depth, used in sorted(by_depth.items())
            },
        }
        if self.gpu:
            peaks: dict[int, float] = defaultdict(float)
            for sample in self.gpu:
                for pid, mib in sample["per_process"].items():
                    peaks[pid] = max(peaks[pid], mib)
            figures["gpu_utilisation_mean_pct"] = round(
                statistics.mean(s["utilisation"] for s in self.gpu), 1
            )
            figures["gpu_memory_peak_mib"] = max(s["memory"] for s in self.gpu)
            figures["gpu_memory_per_process_peak_mib"] = sorted(peaks.values())
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--root", type=int, default=1, help="whose descendants: a pid (1: all)")
    args = parser.parse_args()
    with ResourceSampler(root=args.root) as sampler:
        time.sleep(args.seconds)
    print(json.dumps(sampler.summary(), indent=2))


if __name__ == "__main__":
    main()
