"""From a synthetic cohort to a planned, preprocessed nnU-Net dataset, through Dagster."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from cmrbias_dagster.assets import cohort, nnunet, splits
from cmrbias_dagster.resources import build_resources
from tests.materialize import materialize_manifest
from tests.toy_cohort import demographics_rows, write_toy_cohort

ASSETS = dg.load_assets_from_modules([cohort, splits, nnunet])


@pytest.fixture(scope="module")
def planned(planned_study):
    return planned_study.result, planned_study.work


def test_raw_dataset_holds_both_phases_of_each_training_subject(planned) -> None:
    result, work = planned
    split = result.output_for_node("training_split")
    raw = work / "tiny" / "nnunet" / "raw" / "Dataset511_race_black_25"
    cases = sorted(p.name.removesuffix(".nii.gz") for p in (raw / "labelsTr").iterdir())
    assert cases == sorted(f"{s}_{p}" for s in split["subject_id"] for p in ("ED", "ES"))
    dataset = json.loads((raw / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "LVBP": 1, "LVM": 2, "RVBP": 3}
    assert dataset["numTraining"] == 16
    assert split.filter(pl.col("group") == "black").height == 2


def test_plans_carry_profile_edits_and_grouped_splits(planned) -> None:
    result, work = planned
    folder = work / "tiny" / "nnunet" / "preprocessed" / "Dataset511_race_black_25"
    plans = json.loads((folder / "nnUNetPlans.json").read_text())["configurations"]["2d"]
    assert plans["batch_size"] == 2
    assert plans["architecture"]["arch_kwargs"]["features_per_stage"] == [4, 8, 16]
    folds = result.output_for_node("cv_folds")
    splits_final = json.loads((folder / "splits_final.json").read_text())
    assert len(splits_final) == 2
    for fold, entry in enumerate(splits_final):
        subjects = set(folds.filter(pl.col("fold") == fold)["subject_id"])
        assert {case.rsplit("_", 1)[0] for case in entry["val"]} == subjects
        assert len(entry["val"]) == 2 * len(subjects)
    assert len(list((folder / "nnUNetPlans_2d").glob("*_seg.b2nd"))) == 16
    metadata = result.asset_materializations_for_node("nnunet_plans")[0].metadata
    assert metadata["batch_size"].value == 2
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "ratio_and_balance_exact": True,
        "disjoint_from_test_set": True,
        "folds_grouped_by_subject": True,
        "case_files_present": True,
    }


def test_infeasible_design_fails_before_writing(tmp_path: Path) -> None:
    root = write_toy_cohort(tmp_path / "raw", demographics_rows(1))
    resources = build_resources(profile="tiny", work_dir=tmp_path / "work", cohort_root=root)
    instance = dg.DagsterInstance.ephemeral()
    materialize_manifest(ASSETS, resources, instance)
    result = dg.materialize(
        ASSETS,
        selection=["test_set"],
        partition_key="race_asian",
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    assert "experiment 'race_asian', test set: too few subjects in" in message
    assert "race=asian, sex=female: needed 2, available 1" in message
