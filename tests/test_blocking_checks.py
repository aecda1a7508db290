"""Each blocking check fails on bad input, and the steps downstream of it do not run.

Bad input is made by replacing, inside the asset module, the library function that draws or
writes it (a test double of a faulty draw or a lost file): the check must catch what the asset
would otherwise pass on.
"""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from cmrbias_dagster.assets import cohort, evaluation, nnunet, splits
from cmrbias_dagster.assets.support import ensemble_routes
from cmrbias_dagster.resources import build_resources
from tests.conftest import FOLD_ASSETS
from tests.lost_prediction import predict_all_but_last
from tests.materialize import materialize_manifest

ASSETS = dg.load_assets_from_modules([cohort, splits, nnunet])
CHAIN = ["training_split", "cv_folds", "nnunet_dataset", "nnunet_plans"]
PARTITION = "race_black|50"


@pytest.fixture
def study(tiny_cohort: Path, tmp_path: Path) -> tuple[dict, dg.DagsterInstance]:
    """A fresh tiny study with its manifest and the race_black test set."""
    resources = build_resources(
        profile="tiny", work_dir=tmp_path, cohort_root=tiny_cohort, device="cpu"
    )
    instance = dg.DagsterInstance.ephemeral()
    materialize_manifest(ASSETS, resources, instance)
    dg.materialize(
        ASSETS,
        selection=["test_set"],
        partition_key="race_black",
        resources=resources,
        instance=instance,
    )
    return resources, instance


def run_chain(study, partition: str = PARTITION) -> dg.ExecuteInProcessResult:
    resources, instance = study
    return dg.materialize(
        ASSETS,
        selection=CHAIN,
        partition_key=partition,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def failed_check(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    evaluation = {e.check_name: e for e in result.get_asset_check_evaluations()}[name]
    assert not evaluation.passed
    return evaluation


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def test_an_unbalanced_test_set_fails_its_check(study, monkeypatch) -> None:
    real = splits.draw_test_set
    monkeypatch.setattr(splits, "draw_test_set", lambda *args: real(*args).slice(1))
    resources, instance = study
    result = dg.materialize(
        ASSETS,
        selection=["test_set"],
        partition_key="sex",
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    failed_check(result, "test_set_balanced")
    assert not result.success


def test_a_split_overlapping_the_test_set_stops_the_chain(study, monkeypatch) -> None:
    real = splits.draw_training_split

    def overlapping(manifest: pl.DataFrame, test_ids, *args) -> pl.DataFrame:
        drawn = real(manifest, test_ids, *args)
        return drawn.with_columns(
            subject_id=pl.when(pl.int_range(pl.len()) == 0)
            .then(pl.lit(test_ids[0]))
            .otherwise(pl.col("subject_id"))
        )

    monkeypatch.setattr(splits, "draw_training_split", overlapping)
    result = run_chain(study)
    evaluation = failed_check(result, "disjoint_from_test_set")
    assert evaluation.metadata["shared_subjects"].value != "none"
    assert materialized(result) == {"training_split"}


def test_a_split_off_its_ratio_stops_the_chain(study, monkeypatch) -> None:
    real = splits.draw_training_split
    monkeypatch.setattr(splits, "draw_training_split", lambda *args: real(*args).slice(1))
    result = run_chain(study)
    failed_check(result, "ratio_and_balance_exact")
    assert materialized(result) == {"training_split"}


def test_folds_that_split_a_subject_stop_the_chain(study, monkeypatch) -> None:
    real = splits.nnunet_splits

    def split_subject(folds: pl.DataFrame) -> list[dict[str, list[str]]]:
        folded = real(folds)
        moved = folded[0]["val"].pop()  # one case of a fold-0 subject now validates in fold 1
        folded[1]["val"].append(moved)
        return folded

    monkeypatch.setattr(splits, "nnunet_splits", split_subject)
    result = run_chain(study)
    failed_check(result, "folds_grouped_by_subject")
    # nnunet_dataset reads the split, not the folds; planning needs the folds and does not run.
    assert materialized(result) == {"training_split", "cv_folds", "nnunet_dataset"}


def test_a_lost_case_file_stops_planning(study, monkeypatch) -> None:
    real = nnunet.write_raw_dataset

    def losing_one(cases, name, env) -> Path:
        folder = real(cases, name, env)
        (folder / "imagesTr" / f"{cases[0].case_id}_0000.nii.gz").unlink()
        return folder

    monkeypatch.setattr(nnunet, "write_raw_dataset", losing_one)
    result = run_chain(study)
    evaluation = failed_check(result, "case_files_present")
    assert evaluation.metadata["missing"].value != "none"
    assert materialized(result) == {"training_split", "cv_folds", "nnunet_dataset"}


def test_a_lost_prediction_stops_the_metrics(study, monkeypatch) -> None:
    # Evaluation reads only the test set and the predictions, so no model needs training here.
    monkeypatch.setattr(ensemble_routes, "predict_ensemble", predict_all_but_last)
    resources, instance = study
    result = dg.materialize(
        [*ASSETS, *FOLD_ASSETS, *evaluation.evaluation_assets(2)],
        selection=["ensemble_prediction", "segmentation_metrics", "clinical_measures"],
        partition_key=PARTITION,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    evaluation_result = failed_check(result, "prediction_per_test_case")
    problems = evaluation_result.metadata["problems"].value
    assert problems.endswith("_ED.nii.gz: missing") and ";" not in problems  # only the lost one
    assert materialized(result) == {"ensemble_prediction"}
