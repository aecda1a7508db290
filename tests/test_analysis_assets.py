"""The analysis assets on a real evaluated partition, read back from the DuckDB file."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from cmrbias_dagster.assets import analysis, figures, report
from cmrbias_dagster.assets.evaluation import evaluation_assets
from cmrbias_dagster.assets.training import model_convergence
from tests.conftest import FOLD_ASSETS

TABLES = [
    "median_dsc_table",
    "intersectional_dsc_table",
    "dsc_by_class_and_phase",
    "clinical_difference_table",
    "group_comparisons",
    "ratio_comparisons",
    "fairness_table",
    "ratio_dependence_table",
    "model_convergence",
]

FIGURES = list(report.FIGURE_ASSETS)


@pytest.fixture(scope="module")
def analysed(planned_study, evaluated):
    return dg.materialize(
        [
            *planned_study.assets,
            *FOLD_ASSETS,
            *evaluation_assets(2),
            model_convergence(2),
            *dg.load_assets_from_modules([analysis, figures, report]),
        ],
        selection=["subject_scores", "cohort_characteristics", *TABLES, *FIGURES, "study_report"],
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


def test_figures_are_written_and_shown(analysed) -> None:
    import matplotlib.image

    for name in FIGURES:
        metadata = analysed.asset_materializations_for_node(name)[0].metadata
        images = [key for key in metadata if key.endswith("_path")]
        assert images, name
        for key in images:
            picture = matplotlib.image.imread(metadata[key].value)
            assert picture.shape[0] > 200 and picture.shape[1] > 200 and picture.std() > 0.01
            assert metadata[key.removesuffix("_path")].value.startswith("![")
    qualitative = analysed.asset_materializations_for_node("qualitative_figure")[0].metadata
    assert "qualitative_race_black" in qualitative


def test_report_is_one_self_contained_page(analysed) -> None:
    metadata = analysed.asset_materializations_for_node("study_report")[0].metadata
    page = Path(metadata["path"].value).read_text()
    assert metadata["report"].value.startswith("file://")
    for heading in ("Findings", "Median DSC (Table 2)", "Intersectional", "Fairness", "Provenance"):
        assert f"<h2>{heading}" in page
    assert page.count("data:image/png;base64,") >= len(FIGURES)
    assert "nnunetv2" in page and "training_split" in page and "race_black|25" in page
    assert 'src="http' not in page  # nothing fetched from elsewhere
    findings = metadata["findings"].value
    assert r"race\_black: black median DSC" in findings
    # Tiny models (3 epochs) never converge, and one ratio cannot show a trend: both are said.
    assert "2 of 2 models did not pass the convergence check" in findings
    assert "may reflect under-training" in findings
    assert "needs at least two evaluated ratios" in findings
    for heading in ("Does the gap move with the training share?", "Model convergence"):
        assert f"<h2>{heading}" in page


def test_analysis_without_evaluated_partitions_says_what_to_do() -> None:
    with pytest.raises(dg.Failure, match="no partition has been evaluated yet"):
        analysis.subject_scores(pl.DataFrame({"dice": []}))
