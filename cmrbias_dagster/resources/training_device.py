"""Where and how fold training runs: the device, and how many folds share one GPU."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from cmrbias_dagster.lib.nnunet.device_leases import lease_gpu, visible_gpus
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process


class TrainingResource(dg.ConfigurableResource):
    """`device`: "auto" (CUDA when present, else CPU), "cpu" or "cuda". Each nnU-Net step leases a
    slot (file locks under `lock_dir`, freed even when a process is killed): at most
    `folds_per_gpu` per GPU (five packed folds saturate an H100, BENCHMARKS.md), or `cpu_slots`
    steps at once on a machine without CUDA."""

    device: str = "auto"
    folds_per_gpu: int = 5
    cpu_slots: int = 1  # nnU-Net steps at once on a CPU-only machine (a profile's parallel_runs)
    gpus: list[str] = []  # empty: every GPU CUDA can see
    lock_dir: str = ""  # empty: $DAGSTER_HOME/device_leases

    def cuda_gpus(self) -> list[str]:
        """The GPUs to lease from, or [] when training runs on the CPU."""
        if self.device == "cpu":
            return []
        gpus = list(self.gpus) or visible_gpus()
        if self.device == "cuda" and not gpus:
            raise RuntimeError("device 'cuda' was asked for, but no CUDA GPU is visible")
        return gpus

    def lock_path(self) -> Path:
        if self.lock_dir:
            return Path(self.lock_dir)
        return Path(os.environ.get("DAGSTER_HOME", ".dagster_home")) / "device_leases"

    def run(self, function: Callable[..., Any], *args: Any) -> tuple[Any, str]:
        """`function(*args, device)` in a fresh process, on a leased GPU slot when CUDA is used;
        returns its result and a description of the device."""
        gpus = self.cuda_gpus()
        if not gpus:
            with lease_gpu(self.lock_path(), ["cpu"], self.cpu_slots):
                return run_in_fresh_process(function, *args, "cpu"), "cpu"
        with lease_gpu(self.lock_path(), gpus, self.folds_per_gpu) as slot:
            result = run_in_fresh_process(function, *args, "cuda", environment=slot.environment())
        return result, f"cuda (GPU {slot.gpu}, slot {slot.slot})"
