"""The analysis assets on a real evaluated partition, read back from the DuckDB file."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from cmrbias_dagster.assets import analysis
from cmrbias_dagster.assets.evaluation import evaluation_assets
from tests.conftest import FOLD_ASSETS

TABLES = [
    "median_dsc_table",
    "intersectional_dsc_table",
    "dsc_by_class_and_phase",
    "clinical_difference_table",
    "group_comparisons",
    "ratio_comparisons",
    "fairness_table",
]


@pytest.fixture(scope="module")
def analysed(planned_study, evaluated):
    return dg.materialize(
        [
            *planned_study.assets,
            *FOLD_ASSETS,
            *evaluation_assets(2),
            *dg.load_assets_from_modules([analysis]),
        ],
        selection=["subject_scores", *TABLES],
        resources=planned_study.resources,
        instance=planned_study.instance,
    )


def test_scores_cover_the_evaluated_partition(analysed, evaluated) -> None:
    scores = analysed.output_for_node("subject_scores")
    metrics = evaluated.output_for_node("segmentation_metrics")
    assert scores.height == metrics["subject_id"].n_unique() * 4
    metadata = analysed.asset_materializations_for_node("subject_scores")[0].metadata
    assert metadata["partitions_evaluated"].value == 1


def test_tables_are_exported_and_shown(analysed, planned_study) -> None:
    for name in TABLES:
        metadata = analysed.asset_materializations_for_node(name)[0].metadata
        csv = metadata["csv"].value
        assert pl.read_csv(csv).height == analysed.output_for_node(name).height, name
        assert Path(metadata["latex"].value).read_text().startswith(r"\begin{tabular}")
    table2 = analysed.asset_materializations_for_node("median_dsc_table")[0].metadata
    assert table2["table2_race_black"].value.startswith("| ratio | black | white | all |")
    assert analysed.output_for_node("ratio_comparisons").height == 0  # one ratio evaluated
    comparison = analysed.output_for_node("group_comparisons").row(0, named=True)
    assert (comparison["group_a"], comparison["n_a"], comparison["n_b"]) == ("black", 4, 4)


def test_tables_land_in_the_duckdb_file(analysed, planned_study) -> None:
    import duckdb

    database = planned_study.resources["io_manager"].database
    with duckdb.connect(database, read_only=True) as connection:
        count = connection.execute("select count(*) from cmrbias.fairness_table").fetchone()[0]
    assert count == analysed.output_for_node("fairness_table").height == 1
