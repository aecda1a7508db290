"""Where a run's steps execute: Dagster's default (processes on this machine) or, on a cluster,
one Kubernetes pod per step (`CMRBIAS_EXECUTOR=k8s`, deploy/k8s/).

On Kubernetes each fold-checkpoint step asks for one whole GPU through the `dagster-k8s/config` op
tag that `gpu_pod_tags` builds; every other step runs in a CPU pod sized by `CPU_STEP_RESOURCES`.
Every fold step claims the `TRAINING_POOL` pool, whatever the executor.
"""

import os
from collections.abc import Mapping

import dagster as dg

EXECUTOR_VARIABLE = "CMRBIAS_EXECUTOR"
# The Dagster pool every fold step claims; training_pool.py limits it to the training slots.
TRAINING_POOL = "nnunet_training"
K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_RESOURCE = "nvidia.com/gpu"
# Every step pod: planning and evaluation use a few cores; a fold pod adds its GPU to this.
CPU_STEP_RESOURCES = {
    "requests": {"cpu": "2", "memory": "8Gi"},
    "limits": {"memory": "32Gi"},
}
K8S_EXECUTOR_CONFIG = {"step_k8s_config": {"container_config": {"resources": CPU_STEP_RESOURCES}}}


def gpu_pod_tags(gpus: int = 1) -> dict[str, object]:
    """Op tags that make the Kubernetes executor give a step's pod `gpus` whole GPUs (ignored by
    the local executors)."""
    limits = {GPU_RESOURCE: str(gpus)}
    return {K8S_CONFIG_TAG: {"container_config": {"resources": {"limits": limits}}}}


def k8s_executor() -> dg.ExecutorDefinition:
    """dagster-k8s's `k8s_job_executor`: one Kubernetes Job per step, CPU pods by default."""
    from dagster_k8s import k8s_job_executor  # the optional `cluster` extra

    return k8s_job_executor.configured(K8S_EXECUTOR_CONFIG, name="cmrbias_k8s_job_executor")


def executor_named(name: str) -> dg.ExecutorDefinition | None:
    """The executor for `CMRBIAS_EXECUTOR`: None (Dagster's default) for "" or "local"."""
    if name in ("", "local"):
        return None
    if name == "k8s":
        return k8s_executor()
    raise ValueError(f"{EXECUTOR_VARIABLE}={name!r}: expected 'local' (the default) or 'k8s'")


def executor_from_environment(
    environ: Mapping[str, str] = os.environ,
) -> dg.ExecutorDefinition | None:
    """The executor named by CMRBIAS_EXECUTOR (unset: Dagster's default)."""
    return executor_named(environ.get(EXECUTOR_VARIABLE, "").strip().lower())
