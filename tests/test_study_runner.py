"""`make study`'s runner: every job for every partition, recorded in the Dagster instance."""

from pathlib import Path

import dagster as dg
import pytest

from cmrbias_dagster.definitions import build_definitions
from cmrbias_dagster.resources import build_resources
from cmrbias_dagster.study_runner import STUDY_JOBS, run_study
from cmrbias_dagster.training_pool import TRAINING_POOL


def test_runner_executes_each_job_per_partition(tiny_cohort: Path, tmp_path: Path) -> None:
    resources = build_resources(profile="tiny", work_dir=tmp_path, cohort_root=tiny_cohort)
    defs = build_definitions(resources, n_folds=2)
    lines: list[str] = []
    finished: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        run_study(defs, instance, jobs=STUDY_JOBS[:3], log=lines.append, on_finish=finished.append)
        observed = instance.get_latest_data_version_record(dg.AssetKey("raw_cohort"))
        tested = instance.get_materialized_partitions(dg.AssetKey("test_set"))
        manifest = instance.get_latest_materialization_event(dg.AssetKey("subject_manifest"))
    assert [line.split(" done")[0] for line in lines] == [
        "[study] observe_cohort_job",
        "[study] cohort_job",
        "[study] experiment_job partition sex (1/3)",
        "[study] experiment_job partition race_black (2/3)",
        "[study] experiment_job partition race_asian (3/3)",
    ]
    assert finished == ["observe_cohort_job", "cohort_job", *["experiment_job"] * 3]
    assert observed is not None and tested == {"sex", "race_black", "race_asian"}
    assert manifest.asset_materialization.metadata["subjects"].value == 36  # 6 per race x sex


def test_every_job_resolves_for_the_active_profile() -> None:
    from cmrbias_dagster.definitions import PROFILE, STUDY_DESIGN, defs

    names = {job.name for job in defs.resolve_all_job_defs()}
    assert set(STUDY_JOBS) <= names
    folds = STUDY_DESIGN.profile(PROFILE).trained_folds
    partition_assets = {
        key.to_user_string()
        for key in defs.resolve_job_def("partition_job").asset_layer.executable_asset_keys
    }
    last_fold = f"fold_{folds - 1}_checkpoint"
    assert {"training_split", "nnunet_plans", last_fold, "segmentation_metrics"} <= partition_assets
    assert f"fold_{folds}_checkpoint" not in partition_assets
    analysis_assets = {
        key.to_user_string()
        for key in defs.resolve_job_def("analysis_job").asset_layer.executable_asset_keys
    }
    expected = {"median_dsc_table", "model_convergence", "dsc_figure", "study_report"}
    assert expected <= analysis_assets


def test_runner_stops_at_the_first_failed_run(tmp_path: Path) -> None:
    resources = build_resources(profile="tiny", work_dir=tmp_path, cohort_root=tmp_path / "none")
    lines: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance, pytest.raises(SystemExit, match="cohort_job"):
        run_study(build_definitions(resources, n_folds=2), instance, log=lines.append)
    assert lines == [lines[0]] and lines[0].startswith("[study] observe_cohort_job done")


@pytest.fixture
def environment_study(tiny_cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The tiny profile as the environment describes it, which parallel runs' workers load."""
    variables = {
        "CMRBIAS_PROFILE": "tiny",
        "CMRBIAS_WORK_DIR": str(tmp_path / "work"),
        "CMRBIAS_COHORT_ROOT": str(tiny_cohort),
        "DAGSTER_HOME": str(tmp_path),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    resources = build_resources(profile="tiny", work_dir=tmp_path / "work", cohort_root=tiny_cohort)
    return build_definitions(resources, n_folds=2)


def test_parallel_runs_materialise_every_partition(environment_study) -> None:
    lines: list[str] = []
    with dg.DagsterInstance.get() as instance:
        run_study(environment_study, instance, jobs=STUDY_JOBS[:2], log=lines.append)
        run_study(
            environment_study, instance, ["experiment_job"], log=lines.append, parallel_runs=2
        )
        tested = instance.get_materialized_partitions(dg.AssetKey("test_set"))
        runs = instance.get_runs()
        pool = instance.event_log_storage.get_concurrency_info(TRAINING_POOL)
    assert pool.slot_count == environment_study.resources["training"].slots()
    finished = sorted(line.split(" (")[0] for line in lines[2:])
    assert finished == [
        f"[study] experiment_job partition {key}" for key in ("race_asian", "race_black", "sex")
    ]
    assert tested == {"sex", "race_black", "race_asian"} and len(runs) == 5


def test_parallel_runs_start_no_run_after_a_failure(environment_study) -> None:
    with (
        dg.DagsterInstance.get() as instance,
        pytest.raises(SystemExit, match="experiment_job partition"),
    ):
        # No subject manifest: every test_set run fails; the third never starts.
        run_study(environment_study, instance, ["experiment_job"], parallel_runs=2)
    assert len(instance.get_runs()) == 2
