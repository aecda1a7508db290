"""The training pool is the one gate of the device: every step that leases a device slot (the fold
steps and the ensemble) claims it, so the ensemble cannot run beyond the pool's limit alongside
fold steps; the limit is set with Dagster's own command; the shipped instance configures pools."""

import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from cmrbias_dagster.definitions import build_definitions
from cmrbias_dagster.resources import TrainingResource, build_resources
from cmrbias_dagster.training_pool import TRAINING_POOL, pool_steps, set_training_pool_limit
from tests.conftest import PLANNED_PARTITION

ROOT = Path(__file__).resolve().parents[1]
ENSEMBLE = "ensemble_prediction"


@pytest.fixture
def tiny_definitions(tmp_path: Path) -> dg.Definitions:
    resources = build_resources(
        profile="tiny", work_dir=tmp_path / "work", cohort_root=tmp_path / "cohort", device="cpu"
    )
    return build_definitions(resources, n_folds=2)


def test_every_step_that_leases_a_device_claims_the_pool(tiny_definitions) -> None:
    for name in ("partition_job", "experiment_job", "analysis_job", "cohort_job"):
        job = tiny_definitions.resolve_job_def(name)
        nodes = job.graph.nodes
        leasing = {n.name for n in nodes if "training" in n.definition.required_resource_keys}
        pooled = {n.name for n in nodes if n.definition.pool == TRAINING_POOL}
        assert leasing == pooled, name
    partition_job = tiny_definitions.resolve_job_def("partition_job")
    pooled = {n.name for n in partition_job.graph.nodes if n.definition.pool == TRAINING_POOL}
    assert pooled == {"fold_0_checkpoint", "fold_1_checkpoint", ENSEMBLE}
    # The ensemble waits for the folds: a run fills at most two slots at once.
    assert pool_steps(partition_job) == 2


def test_the_ensemble_waits_while_a_fold_step_holds_the_only_slot(
    tiny_definitions, tmp_path: Path
) -> None:
    job = tiny_definitions.resolve_job_def("partition_job")
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        assert set_training_pool_limit(instance, TrainingResource(device="cpu")) == 1
        fold_run = instance.add_run(
            dg.DagsterRun(job_name="partition_job", status=dg.DagsterRunStatus.STARTED)
        )
        storage = instance.event_log_storage
        storage.claim_concurrency_slot(TRAINING_POOL, fold_run.run_id, "fold_0_checkpoint")
        seen: dict[str, object] = {}
        finished = threading.Event()

        def free_the_fold_slot_once_the_ensemble_waits() -> None:
            while storage.get_concurrency_info(TRAINING_POOL).pending_step_count < 1:
                if finished.wait(0.5):
                    return  # the run ended without waiting for the pool
            time.sleep(3)  # several claim checks while the slot is held
            seen["started_while_held"] = ensemble_started(instance, exclude=fold_run.run_id)
            seen["freed_at"] = time.time()
            storage.free_concurrency_slots_for_run(fold_run.run_id)

        freer = threading.Thread(target=free_the_fold_slot_once_the_ensemble_waits)
        freer.start()
        # The step fails once it starts (nothing upstream is stored): only when it starts matters.
        result = job.execute_in_process(
            instance=instance,
            partition_key=PLANNED_PARTITION,
            asset_selection=[dg.AssetKey(ENSEMBLE)],
            raise_on_error=False,
        )
        finished.set()
        freer.join()
        started = ensemble_started(instance, exclude=fold_run.run_id)
    assert seen.get("started_while_held") == []
    assert len(started) == 1 and started[0] >= seen["freed_at"]
    assert not result.success


def ensemble_started(instance: dg.DagsterInstance, exclude: str) -> list[float]:
    """When the ensemble step started in every run but `exclude`."""
    return [
        event.timestamp
        for run in instance.get_runs()
        if run.run_id != exclude
        for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
        if event.step_key == ENSEMBLE
    ]


def test_the_shipped_instance_configures_the_pools(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shipped = yaml.safe_load((ROOT / ".dagster_home" / "dagster.yaml").read_text())
    (home / "dagster.yaml").write_text(yaml.safe_dump(shipped))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        pools = instance.get_concurrency_config().pool_config
        monitoring = instance.run_monitoring_settings
    # One fold step at a time until `make study` / `make ui` set the machine's limit.
    assert pools.default_pool_limit == 1
    assert pools.pool_granularity.value == "op"
    assert monitoring["enabled"] and monitoring["free_slots_after_run_end_seconds"] > 0
