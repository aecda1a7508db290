"""Where and how fold training runs: the device, and how many folds share one GPU."""

import os
from pathlib import Path

import dagster as dg

from cmrbias_dagster.lib.gpu_lease import visible_gpus


class TrainingResource(dg.ConfigurableResource):
    """`device`: "auto" (CUDA when present, else CPU), "cpu" or "cuda". On CUDA each fold step
    leases a GPU slot (file locks under `lock_dir`), at most `folds_per_gpu` per GPU; five packed
    folds gave 2.24x the throughput of one on an H100 (shared/ANCHORS.md), hence the default."""

    device: str = "auto"
    folds_per_gpu: int = 5
    gpus: list[str] = []  # empty: every GPU CUDA can see
    lock_dir: str = ""  # empty: $DAGSTER_HOME/gpu_leases

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
        return Path(os.environ.get("DAGSTER_HOME", ".dagster_home")) / "gpu_leases"
