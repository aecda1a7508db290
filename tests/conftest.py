"""Shared fixtures: the `tiny` profile's real synthetic cohort, generated once per test session."""

from pathlib import Path
from typing import NamedTuple

import pytest

from cmrbias_dagster.lib.cohort.synthetic import CohortSpec, write_cohort
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.fold_records import trainer_folder
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """36 synthetic subjects (6 per race x sex) at 48x48x8 in the UK Biobank layout."""
    design = load_study_design(DEFAULT_STUDY_FILE)
    spec = CohortSpec.from_mapping(design.profile("tiny").synthetic_cohort, seed=design.seed)
    return write_cohort(spec, tmp_path_factory.mktemp("tiny") / "synthetic_tiny")


@pytest.fixture(scope="session")
def planned_study(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny study with one partition (race_black|25) split, planned and preprocessed."""
    import dagster as dg

    from cmrbias_dagster.assets import cohort, nnunet, splits
    from cmrbias_dagster.resources import build_resources
    from tests.materialize import materialize_manifest

    assets = dg.load_assets_from_modules([cohort, splits, nnunet])
    work = tmp_path_factory.mktemp("work")
    resources = build_resources(
        profile="tiny", work_dir=work, cohort_root=tiny_cohort, device="cpu"
    )
    instance = dg.DagsterInstance.ephemeral()
    materialize_manifest(assets, resources, instance)
    dg.materialize(
        assets,
        selection=["test_set"],
        partition_key="race_black",
        resources=resources,
        instance=instance,
    )
    result = dg.materialize(
        assets,
        selection=["training_split", "cv_folds", "nnunet_dataset", "nnunet_plans"],
        partition_key=PLANNED_PARTITION,
        resources=resources,
        instance=instance,
    )
    return PlannedStudy(assets, resources, instance, work, result)


PLANNED_PARTITION = "race_black|25"
# The trainer folder of the tiny profile's models (its recipe's: nnUNetTrainerCmrbias_3x2__...).
TINY_TRAINER = trainer_folder(load_study_design(DEFAULT_STUDY_FILE).profile("tiny").training)


class PlannedStudy(NamedTuple):
    assets: list
    resources: dict
    instance: object
    work: Path
    result: object


@pytest.fixture(scope="session")
def trained_study(planned_study) -> list:
    """Both folds of the planned partition trained with the tiny schedule (CPU, ~30 s)."""
    import dagster as dg

    return [
        dg.materialize(
            [*planned_study.assets, *FOLD_ASSETS],
            selection=[f"fold_{fold}_checkpoint"],
            partition_key=PLANNED_PARTITION,
            resources=planned_study.resources,
            instance=planned_study.instance,
        )
        for fold in (0, 1)
    ]


@pytest.fixture(scope="session")
def evaluated(planned_study, trained_study):
    """The planned partition's fold ensemble on its test set, metrics and clinical measures."""
    import dagster as dg

    from cmrbias_dagster.assets.evaluation import evaluation_assets

    return dg.materialize(
        [*planned_study.assets, *FOLD_ASSETS, *evaluation_assets(2)],
        selection=["ensemble_prediction", "segmentation_metrics", "clinical_measures"],
        partition_key=PLANNED_PARTITION,
        resources=planned_study.resources,
        instance=planned_study.instance,
    )


def _fold_assets() -> list:
    from cmrbias_dagster.assets.training import fold_checkpoints

    return fold_checkpoints(2)


FOLD_ASSETS = _fold_assets()


@pytest.fixture(scope="session")
def variant_design(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny design plus race_black's oversampling and cropping variants, materialised once
    (tests/variant_designs.py)."""
    from tests.variant_designs import run_variant_design

    return run_variant_design(tiny_cohort, tmp_path_factory.mktemp("variants"))
