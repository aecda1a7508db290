"""Where and how fold training runs: the device, and how many folds share one GPU."""

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from cmrbias_dagster.lib.nnunet.device_leases import lease_gpu, visible_gpus
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process

# Profiles sized for a GPU: on a CPU their training would run for days.
GPU_PROFILES = ("paper",)
ALLOW_CPU_VARIABLE = "CMRBIAS_ALLOW_CPU_TRAINING"


class CpuTrainingRefused(RuntimeError):
    """A GPU-sized profile would train on the CPU and the user did not allow it."""


def refuse_cpu_training(profile: str, allow_cpu_for_paper: bool) -> None:
    """Raise CpuTrainingRefused when `profile` is sized for a GPU and no override allows the CPU."""
    if profile in GPU_PROFILES and not allow_cpu_for_paper:
        raise CpuTrainingRefused(
            f"profile {profile!r} would train on the CPU (no CUDA GPU visible, or device 'cpu'), "
            "which takes days; run it on a GPU, or allow it explicitly with "
            f"{ALLOW_CPU_VARIABLE}=1 (TrainingResource field allow_cpu_for_paper: true)"
        )


class TrainingResource(dg.ConfigurableResource):
    """`device`: "auto" (CUDA when present, else CPU), "cpu" or "cuda". At most `folds_per_gpu`
    nnU-Net steps per GPU (five packed folds saturate an H100, BENCHMARKS.md), or `cpu_slots` at
    once on a machine without CUDA: the Dagster pool every such step claims has `slots()` as its
    limit (training_pool.py), and each step leases its slot (file locks under `lock_dir`, freed
    even when a process is killed), which picks its GPU. A GPU-sized profile (`paper`) refuses the
    CPU unless `allow_cpu_for_paper` is set."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    folds_per_gpu: int = Field(default=5, ge=1)
    cpu_slots: int = Field(default=1, ge=1, description="nnU-Net steps at once without CUDA")
    gpus: list[str] = []  # empty: every GPU CUDA can see
    lock_dir: str = ""  # empty: $DAGSTER_HOME/device_leases
    profile: str = Field(default="", description="The study profile; `paper` refuses the CPU")
    allow_cpu_for_paper: bool = Field(
        default=False, description=f"Train a GPU-sized profile on the CPU ({ALLOW_CPU_VARIABLE}=1)"
    )

    def cuda_gpus(self) -> list[str]:
        """The GPUs to lease from, or [] when training runs on the CPU."""
        if self.device == "cpu":
            return []
        gpus = list(self.gpus) or visible_gpus()
        if self.device == "cuda" and not gpus:
            raise RuntimeError("device 'cuda' was asked for, but no CUDA GPU is visible")
        return gpus

    def slots(self) -> int:
        """How many nnU-Net steps may run at once: GPUs x `folds_per_gpu`, or `cpu_slots` without
        CUDA: the training pool's limit (training_pool.py)."""
        gpus = self.cuda_gpus()
        return len(gpus) * self.folds_per_gpu if gpus else self.cpu_slots

    def lock_path(self) -> Path:
        if self.lock_dir:
            return Path(self.lock_dir)
        return Path(os.environ.get("DAGSTER_HOME", ".dagster_home")) / "device_leases"

    def run(
        self,
        function: Callable[..., Any],
        *args: Any,
        log: Callable[[str], None] | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> tuple[Any, str]:
        """`function(*args, device)` in a fresh process, on a leased GPU slot when CUDA is used;
        returns its result and a description of the device. `log` hears when the step has to
        wait for a slot, and which slot it got; `environment` is added to the process's."""
        gpus = self.cuda_gpus()
        if not gpus:
            refuse_cpu_training(self.profile, self.allow_cpu_for_paper)
            with lease_gpu(self.lock_path(), ["cpu"], self.cpu_slots, on_wait=log) as slot:
                _tell(log, f"running on CPU slot {slot.slot} of {self.cpu_slots}")
                result = run_in_fresh_process(function, *args, "cpu", environment=environment)
                return result, "cpu"
        with lease_gpu(self.lock_path(), gpus, self.folds_per_gpu, on_wait=log) as slot:
            _tell(log, f"running on GPU {slot.gpu}, slot {slot.slot} of {self.folds_per_gpu}")
            gpu_environment = {**(environment or {}), **slot.environment()}
            result = run_in_fresh_process(function, *args, "cuda", environment=gpu_environment)
        return result, f"cuda (GPU {slot.gpu}, slot {slot.slot})"


def _tell(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)
