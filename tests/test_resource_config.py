"""Configuration mistakes are refused with the allowed values, not silently run on the CPU."""

import dagster as dg
import pytest
from pydantic import ValidationError

from cmrbias_dagster.executors import executor_from_environment
from cmrbias_dagster.resources import CohortResource, TrainingResource, build_resources
from cmrbias_dagster.resources.training_device import CpuTrainingRefused, refuse_cpu_training


@pytest.mark.parametrize("device", ["gpu", "GPU", "cuda:1", "Cuda"])
def test_training_device_names_the_allowed_values(device: str) -> None:
    with pytest.raises(ValidationError, match="'auto', 'cpu' or 'cuda'"):
        TrainingResource(device=device)


@pytest.mark.parametrize("field", ["cpu_slots", "folds_per_gpu"])
def test_slot_counts_must_be_positive(field: str) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        TrainingResource(**{field: 0})


def test_cohort_layout_and_format_name_the_allowed_values() -> None:
    with pytest.raises(ValidationError, match="'ukbb', 'mnms1', 'mnms2' or 'acdc'"):
        CohortResource(root="/cohort", layout="UKBB")
    with pytest.raises(ValidationError, match="'table' or 'ukbb_export'"):
        CohortResource(root="/cohort", demographics_format="csv")


@dg.asset
def device_in_use(training: TrainingResource) -> str:
    return training.device


def test_a_launch_with_a_bad_device_is_refused_by_dagster() -> None:
    config = {"resources": {"training": {"config": {"device": "gpu"}}}}
    with pytest.raises(dg.DagsterInvalidConfigError, match="'auto', 'cpu', 'cuda'"):
        dg.materialize(
            [device_in_use],
            resources={"training": TrainingResource.configure_at_launch()},
            run_config=config,
        )


def test_a_launch_with_no_cpu_slots_fails_before_any_step() -> None:
    config = {"resources": {"training": {"config": {"cpu_slots": 0}}}}
    with pytest.raises(dg.DagsterResourceFunctionError) as refused:
        dg.materialize(
            [device_in_use],
            resources={"training": TrainingResource.configure_at_launch()},
            run_config=config,
        )
    assert "cpu_slots" in str(refused.value.__cause__)
    assert "greater than or equal to 1" in str(refused.value.__cause__)


def test_an_unknown_executor_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="CMRBIAS_EXECUTOR='celery': expected 'local'.*'k8s'"):
        executor_from_environment({"CMRBIAS_EXECUTOR": "celery"})


@pytest.mark.parametrize("profile", ["quick", "tiny", ""])
def test_small_profiles_may_train_on_the_cpu(profile: str) -> None:
    refuse_cpu_training(profile, allow_cpu_for_paper=False)


def test_the_paper_profile_refuses_the_cpu_unless_allowed() -> None:
    with pytest.raises(CpuTrainingRefused, match="CMRBIAS_ALLOW_CPU_TRAINING=1"):
        refuse_cpu_training("paper", allow_cpu_for_paper=False)
    refuse_cpu_training("paper", allow_cpu_for_paper=True)


def test_the_paper_run_refuses_the_cpu_before_leasing_or_training(tmp_path) -> None:
    training = TrainingResource(device="cpu", profile="paper", lock_dir=str(tmp_path))
    with pytest.raises(CpuTrainingRefused, match="allow_cpu_for_paper"):
        training.run(pytest.fail)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("variable", "allowed"), [("1", True), ("", False), ("yes", False)])
def test_build_resources_reads_the_override_and_the_profile(
    tmp_path, monkeypatch: pytest.MonkeyPatch, variable: str, allowed: bool
) -> None:
    monkeypatch.setenv("CMRBIAS_ALLOW_CPU_TRAINING", variable)
    training = build_resources(profile="paper", work_dir=tmp_path)["training"]
    assert training.profile == "paper" and training.allow_cpu_for_paper is allowed
