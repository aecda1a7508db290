"""A killed study never blocks the next: runs of dead processes are failed and their pool slots
freed at the start of `make study` / `make ui`, and a step waiting for a slot sleeps."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from cmrbias_dagster.run_execution import execute_runs
from cmrbias_dagster.training_pool import (
    RUNNER_PROCESS_TAG,
    TRAINING_POOL,
    fail_runs_of_dead_processes,
    process_identity,
    process_is_gone,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path, tiny_cohort: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME whose training pool has one slot; the tiny profile for the code location."""
    variables = {
        "DAGSTER_HOME": str(tmp_path / "home"),
        "CMRBIAS_PROFILE": "tiny",
        "CMRBIAS_WORK_DIR": str(tmp_path / "work"),
        "CMRBIAS_COHORT_ROOT": str(tiny_cohort),
        "PYTHONPATH": str(ROOT),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(TRAINING_POOL, 1)
    return tmp_path / "home"


def start_holder() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.pool_holder"], cwd=ROOT)


def wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def pool(instance: dg.DagsterInstance):
    return instance.event_log_storage.get_concurrency_info(TRAINING_POOL)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_this_process_is_alive_and_a_finished_one_gone() -> None:
    assert not process_is_gone(process_identity())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    child.wait()
    assert process_is_gone(identity)


@pytest.mark.parametrize("sent", [signal.SIGKILL, signal.SIGINT])
def test_a_killed_run_holding_a_slot_does_not_block_the_next(home: Path, sent: int) -> None:
    holder = start_holder()
    with dg.DagsterInstance.get() as instance:
        wait_for(lambda: len(pool(instance).claimed_slots) == 1)
        [held] = pool(instance).claimed_slots
        identity = instance.get_run_by_id(held.run_id).tags[RUNNER_PROCESS_TAG]
        holder.send_signal(sent)
        holder.wait(timeout=60)
        fail_runs_of_dead_processes(instance)
        assert pool(instance).claimed_slots == []
        assert instance.get_run_by_id(held.run_id).is_finished
        assert identity.split(":")[1] == str(holder.pid)
        # The next run's step gets the slot at once (it would wait forever for a held one).
        started = time.monotonic()
        results = list(execute_runs(_instant_job(), [None], instance))
    assert [success for *_, success, _ in results] == [True]
    assert time.monotonic() - started < 60


def test_a_run_of_a_live_process_is_left_alone(home: Path) -> None:
    holder = start_holder()
    try:
        with dg.DagsterInstance.get() as instance:
            wait_for(lambda: len(pool(instance).claimed_slots) == 1)
            assert fail_runs_of_dead_processes(instance) == []
            assert len(pool(instance).claimed_slots) == 1
    finally:
        holder.kill()
        holder.wait()


def test_a_step_waiting_for_a_slot_uses_little_cpu(home: Path) -> None:
    holder = start_holder()
    with dg.DagsterInstance.get() as instance:
        wait_for(lambda: len(pool(instance).claimed_slots) == 1)
        waiter = start_holder()
        try:
            wait_for(lambda: pool(instance).pending_step_count >= 1)
            time.sleep(2)  # past the waiter's start-up
            before = cpu_seconds(waiter.pid)
            time.sleep(6)
            used = (cpu_seconds(waiter.pid) - before) / 6
        finally:
            for process in (holder, waiter):
                process.kill()
                process.wait()
    assert used < 0.15  # without pool_wait: 0.31 of a core on the busy 2-core CI machine


def _instant_job() -> dg.JobDefinition:
    @dg.op(pool=TRAINING_POOL)
    def claim_a_training_slot() -> None:
        pass

    @dg.job
    def instant_job() -> None:
        claim_a_training_slot()

    return instant_job
