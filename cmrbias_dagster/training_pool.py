"""The Dagster pool `nnunet_training`, claimed by every step that uses a training device (the fold
steps and `ensemble_prediction`) and limited to the training resource's slots: the one gate of
the device. A step beyond the limit shows in the UI as waiting for a pool slot, and a step that
runs finds its device lease free.

`make study` and `make ui` set the limit with Dagster's command `dagster instance concurrency set`
(`set_training_pool_limit`): the figure is the machine's (`parallel_runs: auto`, the GPUs), which
the fixed `concurrency: pools:` block of dagster.yaml cannot follow; that block keeps one step at
a time until they have. A run the study runner starts carries the tag `RUNNER_PROCESS_TAG` (host,
pid and start time of the process that executes it); a run still recorded as going on whose
process is gone (SIGKILL, Ctrl-C, a crash, a machine that slept) is marked failed by
`fail_runs_of_dead_processes` at the start of both, and `free_slots_of_ended_runs` frees the pool
slots still held by finished runs, as the daemon's run monitoring does (.dagster_home/dagster.yaml)
for runs launched from the UI while it runs: `make study` starts no daemon.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg

from cmrbias_dagster.executors import TRAINING_POOL
from cmrbias_dagster.resources import TrainingResource


def set_training_pool_limit(instance: dg.DagsterInstance, training: TrainingResource) -> int:
    """Limit the training pool to the training resource's slots with Dagster's own command,
    `dagster instance concurrency set`, on the instance's folder; returns the limit (0 for an
    ephemeral instance, which keeps no pools)."""
    if instance.is_ephemeral:
        return 0
    limit = training.slots()
    command = [sys.executable, "-m", "dagster", "instance", "concurrency", "set"]
    environment = {**os.environ, "DAGSTER_HOME": instance.root_directory}
    done = subprocess.run(
        [*command, TRAINING_POOL, str(limit)], env=environment, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"could not set the {TRAINING_POOL} pool's limit to {limit} in "
            f"{instance.root_directory}: {done.stderr.strip() or done.stdout.strip()}"
        )
    return limit


def free_slots_of_ended_runs(instance: dg.DagsterInstance) -> list[str]:
    """Free the pool slots still held by finished runs; returns those runs' ids."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    held = {slot.run_id for slot in storage.get_concurrency_info(TRAINING_POOL).claimed_slots}
    ended = [run_id for run_id in sorted(held) if _has_ended(instance, run_id)]
    for run_id in ended:
        storage.free_concurrency_slots_for_run(run_id)
    return ended


RUNNER_PROCESS_TAG = "cmrbias/runner_process"
# A run recorded as going on: its process may have died without telling the instance.
GOING_ON = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def process_identity(pid: int | None = None) -> str:
    """`host:pid:start` of a process (this one by default); the start time tells a reused pid
    from the process that had it."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def process_is_gone(identity: str) -> bool:
    """Whether the process `process_identity` described has ended; a process of another host is
    never called gone (this one cannot see it)."""
    host, pid, start = identity.rsplit(":", 2)
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # another user's process: alive, unless the pid was reused
    return _start_time(int(pid)) != start


def fail_runs_of_dead_processes(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every run the study runner started that is recorded as going on but whose
    process is gone, and free its pool slots; returns those runs' ids."""
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=GOING_ON)):
        identity = run.tags.get(RUNNER_PROCESS_TAG)
        if identity and process_is_gone(identity):
            message = f"the process that executed this run ({identity}) is gone"
            instance.report_run_failed(run, message)
            failed.append(run.run_id)
    free_slots_of_ended_runs(instance)
    return failed


def pool_steps(job: dg.JobDefinition) -> int:
    """How many of a job's training-pool steps may run side by side in one run: those that wait
    for no other pool step (a partition run's fold steps, not the ensemble that follows them)."""
    dependencies = job.graph.dependency_structure
    pooled = {node.name for node in job.graph.nodes if node.definition.pool == TRAINING_POOL}
    return sum(
        1
        for name in pooled
        if not {o.node_name for o in dependencies.all_upstream_outputs_from_node(name)} & pooled
    )


def _has_ended(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is None or run.is_finished


def _start_time(pid: int) -> str:
    """The process's start in clock ticks since boot (/proc), or "" where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def prepare_instance(instance: dg.DagsterInstance, training: TrainingResource) -> str:
    """Fail the runs of dead processes, free ended runs' slots and set the pool's limit; returns
    a line that says what was done."""
    failed = fail_runs_of_dead_processes(instance)
    limit = set_training_pool_limit(instance, training)
    dead = f"; marked {len(failed)} runs of dead processes failed" if failed else ""
    steps = "step" if limit == 1 else "steps"
    return f"pool {TRAINING_POOL}: {limit} training or ensemble {steps} at once{dead}"


def main() -> None:
    from cmrbias_dagster.definitions import defs

    with dg.DagsterInstance.get() as instance:
        print(f"[pool] {prepare_instance(instance, defs.resources['training'])}")


if __name__ == "__main__":
    main()
