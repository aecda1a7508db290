"""A mitigated experiment through Dagster: the tiny design plus `race_black_oversampled` (the
race_black comparison trained with group-balanced oversampling), its fold and the unmitigated
`race_black` fold at 25 %, which draw the same training subjects (the session's variant design,
tests/variant_designs.py: materialised in a fresh interpreter started with CMRBIAS_STUDY_FILE, as
`make ui` is, since partitions follow the study file the code location loads)."""

import json
import pickle
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.fold_records import (
    RESULT_FILE,
    RunConditions,
    fold_folder,
    trainer_folder,
    training_stamp,
)
from cmrbias_dagster.lib.nnunet.mitigation import case_groups, mitigation_stamp
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE
from tests.variant_designs import BASELINE
from tests.variant_designs import OVERSAMPLED as VARIANT

# The tiny profile's folds train in fp32 on the CPU, augmenting in-process.
TINY_ON_CPU = RunConditions("fp32", "cpu", 0)


@pytest.fixture(scope="module")
def mitigated(variant_design):
    """The variant design's study and each partition's fold-0 metadata (mitigation, retrained,
    trained_by, data version), the baseline trained first (so that a mitigated fold could only
    skip training by adopting it)."""
    folds = {
        key: variant_design.metadata[f"{key} fold_0_checkpoint"] for key in (BASELINE, VARIANT)
    }
    return variant_design.study, folds


def test_the_mitigated_fold_trains_with_its_strategy_not_as_the_baselines_twin(mitigated) -> None:
    study, folds = mitigated
    assert folds[BASELINE]["mitigation"] == "none"
    assert folds[VARIANT]["mitigation"] == "oversampling"
    assert folds[VARIANT]["retrained"] is True
    assert folds[VARIANT]["trained_by"] == ""
    assert folds[VARIANT]["data_version"] != folds[BASELINE]["data_version"]
    variant = study.partition(VARIANT)
    stored = fold_folder(
        study.nnunet_environment(), variant.dataset, 0, trainer_folder(variant.training)
    )
    assert json.loads((stored / RESULT_FILE).read_text())["mitigation"] == "oversampling"


def test_both_draw_the_same_subjects_and_the_stamps_differ_by_the_mitigation(mitigated) -> None:
    study, folds = mitigated
    with duckdb.connect(str(Path(study.work_dir) / "cmrbias_tiny.duckdb"), read_only=True) as db:
        split = db.sql("select * from cmrbias.training_split").pl()
    baseline = split.filter(experiment="race_black", ratio=25)
    variant = split.filter(experiment="race_black_oversampled", ratio=25)
    assert sorted(baseline["subject_id"]) == sorted(variant["subject_id"])
    env, settings = study.nnunet_environment(), study.training_settings()
    dataset = study.partition(VARIANT).dataset
    groups = case_groups(variant)
    assert set(groups.values()) == {"black", "white"}
    expected = training_stamp(
        env, dataset, settings, TINY_ON_CPU, mitigation_stamp(Mitigation("oversampling"), groups)
    )
    assert folds[VARIANT]["data_version"] == expected
    assert training_stamp(env, dataset, settings, TINY_ON_CPU) == folds[BASELINE]["data_version"]


def test_an_unmitigated_folds_stamp_is_the_stamp_it_had_before_mitigation(mitigated) -> None:
    """The stamp of an unmitigated fold is training_stamp without a mitigation argument, so
    folds trained before mitigation existed are neither retrained nor orphaned as twins."""
    study, folds = mitigated
    env, settings = study.nnunet_environment(), study.training_settings()
    dataset = study.partition(BASELINE).dataset
    plain = training_stamp(env, dataset, settings, TINY_ON_CPU)
    assert folds[BASELINE]["data_version"] == plain
    assert training_stamp(env, dataset, settings, TINY_ON_CPU, "") == plain
    assert mitigation_stamp(Mitigation(), {"a": "black"}) == ""


def test_protected_models_train_per_group_and_plain_experiments_train_as_before() -> None:
    import polars as pl

    from cmrbias_dagster.assets.training import fold_trainer
    from cmrbias_dagster.lib.nnunet.cropping_cascade import train_cropping_cascade
    from cmrbias_dagster.lib.nnunet.training import train_fold, train_group_models

    race = load_study_design(DEFAULT_STUDY_FILE).experiment("race_black")
    split = pl.DataFrame({"subject_id": ["s1", "s2"], "group": ["black", "white"]})
    assert fold_trainer(race, split) is train_fold
    protected = fold_trainer(replace(race, mitigation=Mitigation("protected_models")), split)
    assert protected.func is train_group_models
    assert protected.keywords["case_groups"] == case_groups(split)
    dro = fold_trainer(replace(race, mitigation=Mitigation("group_dro", 0.05)), split)
    assert dro.func is train_fold
    assert dro.keywords["mitigation"] == Mitigation("group_dro", 0.05)
    assert dro.keywords["case_groups"] == case_groups(split)
    cropping = fold_trainer(replace(race, mitigation=Mitigation("cropping")), split)
    assert cropping.func is train_cropping_cascade
    assert cropping.keywords["mitigation"] == Mitigation("cropping")
    for trainer in (protected, dro, cropping):
        pickle.loads(pickle.dumps(trainer))  # it crosses into the fresh training process


def test_a_mitigated_training_without_groups_is_refused(tmp_path: Path) -> None:
    from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
    from cmrbias_dagster.lib.nnunet.training import train_fold

    env = NnunetEnvironment(tmp_path / "raw", tmp_path / "preprocessed", tmp_path / "results")
    settings = load_study_design(DEFAULT_STUDY_FILE).profile("tiny").training
    with pytest.raises(ValueError, match="Dataset511_x fold 0: mitigation 'reweighting' needs"):
        train_fold(env, "Dataset511_x", 0, settings, "cpu", mitigation=Mitigation("reweighting"))
