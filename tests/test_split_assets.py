"""Test sets, training splits and folds through Dagster for every partition, into DuckDB."""

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from cmrbias_dagster.assets import cohort, splits
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import build_resources
from tests.materialize import materialize_manifest
from tests.toy_cohort import demographics_rows, write_toy_cohort

ASSETS = [*dg.load_assets_from_modules([cohort, splits])]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dg.DagsterInstance, Path]:
    tmp = tmp_path_factory.mktemp("splits")
    root = write_toy_cohort(tmp / "raw", demographics_rows(7))
    resources = build_resources(profile="tiny", work_dir=tmp / "work", cohort_root=root)
    instance = dg.DagsterInstance.ephemeral()
    materialize_manifest(ASSETS, resources, instance)
    for experiment in ("sex", "race_black", "race_asian"):
        dg.materialize(
            ASSETS,
            selection=["test_set"],
            partition_key=experiment,
            resources=resources,
            instance=instance,
        )
    for key in study_partitions.get_partition_keys():
        result = dg.materialize(
            ASSETS,
            selection=["training_split", "cv_folds"],
            partition_key=key,
            resources=resources,
            instance=instance,
        )
        assert all(check.passed for check in result.get_asset_check_evaluations())
    return resources, instance, tmp / "work" / "cmrbias_tiny.duckdb"


def table(database: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as db:
        return db.sql(f"select * from cmrbias.{name}").pl()


def test_every_partition_is_stored_exactly(study) -> None:
    _, _, database = study
    training = table(database, "training_split")
    assert training.height == 15 * 8
    counts = training.group_by("experiment", "ratio", "group").len().sort("experiment", "ratio")
    black = counts.filter((pl.col("experiment") == "race_black") & (pl.col("group") == "black"))
    assert dict(zip(black["ratio"], black["len"], strict=True)) == {25: 2, 50: 4, 75: 6, 100: 8}
    tests = table(database, "test_set")
    assert tests.group_by("experiment").len().sort("experiment")["len"].to_list() == [8, 8, 8]
    joined = training.join(tests, on=["experiment", "subject_id"])
    assert joined.height == 0


def test_sex_and_race_black_share_a_test_set(study) -> None:
    tests = table(study[2], "test_set")
    ids = {
        name: set(tests.filter(pl.col("experiment") == name)["subject_id"])
        for name in ("sex", "race_black", "race_asian")
    }
    assert ids["sex"] == ids["race_black"] != ids["race_asian"]


def test_folds_keep_subjects_whole(study) -> None:
    folds = table(study[2], "cv_folds")
    assert folds.height == 15 * 8
    assert folds.group_by("experiment", "ratio", "fold").len()["len"].unique().to_list() == [4]


def test_rematerialising_keeps_rows_and_data_version(study) -> None:
    resources, instance, database = study
    versions = []
    for _ in range(2):
        result = dg.materialize(
            ASSETS,
            selection=["training_split"],
            partition_key="race_asian|25",
            resources=resources,
            instance=instance,
        )
        event = result.asset_materializations_for_node("training_split")[0]
        versions.append(event.tags["dagster/data_version"])
    assert table(database, "training_split").height == 15 * 8
    assert versions[0] == versions[1]
