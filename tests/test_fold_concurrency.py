"""Fold steps of several partitions train at once through Dagster's pool, never more than the
training resource's slots: `partition_job` runs of the tiny study (2 folds per partition)."""

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from cmrbias_dagster.definitions import build_definitions
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, TrainingResource, build_resources
from cmrbias_dagster.run_execution import execute_runs, runs_at_once
from cmrbias_dagster.training_pool import (
    TRAINING_POOL,
    free_slots_of_ended_runs,
    pool_steps,
    set_training_pool_limit,
)
from tests.conftest import PLANNED_PARTITION

SECOND_PARTITION = "race_black|75"
STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}


@pytest.mark.parametrize(
    ("parallel_runs", "slots", "folds", "expected"),
    [(1, 1, 5, 2), (1, 5, 5, 2), (1, 40, 5, 9), (4, 2, 2, 4), (1, 2, 2, 2)],
)
def test_runs_at_once_fill_the_slots_and_one_more(
    parallel_runs: int, slots: int, folds: int, expected: int
) -> None:
    assert runs_at_once(parallel_runs, slots, folds) == expected


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        (TrainingResource(device="cpu", cpu_slots=3), 3),
        (TrainingResource(device="auto", gpus=["0", "1"], folds_per_gpu=5), 10),
    ],
)
def test_slots_are_gpus_times_folds_or_cpu_slots(training: TrainingResource, expected: int) -> None:
    assert training.slots() == expected


@pytest.fixture
def two_slot_study(planned_study, tiny_cohort: Path, tmp_path: Path, monkeypatch):
    """The planned tiny study copied, a second partition planned, with 2 CPU slots, as the
    environment describes it."""
    design = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())
    design["profiles"]["tiny"]["parallel_runs"] = 2  # cpu_slots follow parallel_runs
    design["profiles"]["tiny"]["training"]["final_validation"] = False  # half a fold's time here
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(design))
    work = tmp_path / "work"
    shutil.copytree(planned_study.work, work)
    variables = {
        "CMRBIAS_PROFILE": "tiny",
        "CMRBIAS_STUDY_FILE": str(study_file),
        "CMRBIAS_WORK_DIR": str(work),
        "CMRBIAS_COHORT_ROOT": str(tiny_cohort),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "home").mkdir()
    resources = build_resources(
        profile="tiny", work_dir=work, cohort_root=tiny_cohort, study_file=study_file, device="cpu"
    )
    dg.materialize(
        planned_study.assets,
        selection=["training_split", "cv_folds", "nnunet_dataset", "nnunet_plans"],
        partition_key=SECOND_PARTITION,
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    return build_definitions(resources, n_folds=2)


def test_fold_steps_of_two_partitions_share_the_pool(two_slot_study) -> None:
    job = two_slot_study.resolve_job_def("partition_job")
    keys = [PLANNED_PARTITION, SECOND_PARTITION]
    folds = [dg.AssetKey(f"fold_{fold}_checkpoint") for fold in (0, 1)]
    with dg.DagsterInstance.get() as instance:
        slots = set_training_pool_limit(instance, two_slot_study.resources["training"])
        results = list(execute_runs(job, keys, instance, slots=slots, assets=folds))
        runs = instance.get_runs()
        events = [event for run in runs for event in instance.all_logs(run.run_id, STEP_EVENTS)]
        held = instance.event_log_storage.get_concurrency_info(TRAINING_POOL).claimed_slots
    assert slots == 2 and pool_steps(job) == 2
    assert [success for *_, success, _ in results] == [True, True] and len(runs) == 2
    intervals = fold_step_intervals(events)
    assert len(intervals) == 4  # two folds of each partition
    assert most_at_once(intervals) == 2  # overlapping, and never more than the pool's slots
    assert held == []


def test_slots_of_ended_runs_are_freed(tmp_path: Path) -> None:
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots(TRAINING_POOL, 2)
        ended, running = (
            instance.add_run(dg.DagsterRun(job_name="partition_job", status=status))
            for status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.STARTED)
        )
        for run in (ended, running):
            instance.event_log_storage.claim_concurrency_slot(TRAINING_POOL, run.run_id, "fold_0")
        freed = free_slots_of_ended_runs(instance)
        held = instance.event_log_storage.get_concurrency_info(TRAINING_POOL).claimed_slots
    assert freed == [ended.run_id] and [slot.run_id for slot in held] == [running.run_id]


def fold_step_intervals(events: list[dg.EventLogEntry]) -> list[tuple[float, float]]:
    """(start, end) of every fold step, from its STEP_START and STEP_SUCCESS events."""
    times: dict[tuple[str, str], list[float]] = {}
    for event in sorted(events, key=lambda e: e.timestamp):
        if event.step_key and event.step_key.startswith("fold_"):
            times.setdefault((event.run_id, event.step_key), []).append(event.timestamp)
    return [(start, end) for start, end in times.values()]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one moment (an end before a start at a tie)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now, most = 0, 0
    for _, change in edges:
        open_now += change
        most = max(most, open_now)
    return most
