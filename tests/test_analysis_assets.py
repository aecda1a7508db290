"""The analysis assets on a real evaluated partition, read back from the DuckDB file."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from cmrbias_dagster.assets import analysis, beyond_the_paper, figures, report
from cmrbias_dagster.assets.evaluation import evaluation_assets
from cmrbias_dagster.assets.training import model_convergence
from cmrbias_dagster.lib.analysis.result_tables import subject_scores
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, StudyResource
from cmrbias_dagster.resources.duckdb_tables import DuckDBPolarsTables
from tests.conftest import FOLD_ASSETS
from tests.test_mitigation_comparison import BASELINE, OVERSAMPLED, SEX, planted_metrics

TABLES = [
    "median_dsc_table",
    "intersectional_dsc_table",
    "dsc_by_class_and_phase",
    "clinical_difference_table",
    "group_comparisons",
    "ratio_comparisons",
    "fairness_table",
    "ratio_dependence_table",
    "gap_verdicts",
    "mitigation_comparison",
    "mitigation_effects",
    "repeat_summary",
    "model_convergence",
    "boundary_metric_table",
    "boundary_comparisons",
    "boundary_verdicts",
    "boundary_ratio_dependence",
    "confounder_adjusted_gaps",
]

FIGURES = [*report.FIGURE_ASSETS, "boundary_figure"]


@pytest.fixture(scope="module")
def analysed(planned_study, evaluated):
    return dg.materialize(
        [
            *planned_study.assets,
            *FOLD_ASSETS,
            *evaluation_assets(2),
            model_convergence(2),
            *dg.load_assets_from_modules([analysis, beyond_the_paper, figures]),
            report.study_report_asset(external_cohorts=False),
        ],
        selection=[
            "subject_scores",
            "boundary_scores",
            "cohort_characteristics",
            *TABLES,
            *FIGURES,
            "study_report",
        ],
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
    markdown = metadata["report_markdown"].value
    assert markdown.startswith("# Demographic bias") and "data:image/png;base64," in markdown
    assert "file://" not in markdown  # browsers do not open file links from the web UI
    headings = ("Headline", "Findings", "Median DSC (Table 2)", "Intersectional", "Fairness")
    for heading in (*headings, "Provenance"):
        assert f"<h2>{heading}" in page
    assert page.count("data:image/png;base64,") >= len(FIGURES)
    assert "nnunetv2" in page and "training_split" in page and "race_black|25" in page
    assert 'src="http' not in page  # nothing fetched from elsewhere
    findings = metadata["findings"].value
    assert r"race\_black: black median DSC" in findings
    # Tiny models (3 epochs) never converge, and one ratio cannot show a trend: both are said.
    assert "2 of 2 models' curves had not reached a plateau" in findings
    assert "may reflect under-training" in findings
    assert "needs at least two evaluated ratios" in findings
    for heading in (
        "Does the gap move with the training share?",
        "Model convergence",
        "Boundary metrics (HD95, ASSD)",
        "Confounders: gaps adjusted for age and BMI",
    ):
        assert f"<h2>{heading}" in page
    # One draw per experiment (repeats: 1): every verdict and the headline say so.
    assert "<h2>Repeated draws" in page
    assert "(one training draw: training noise not included)</td>" in page
    assert "One training draw per model: one training draw" in page


def test_analysis_without_evaluated_partitions_says_what_to_do() -> None:
    with pytest.raises(dg.Failure, match="no partition has been evaluated yet"):
        analysis.subject_scores(pl.DataFrame({"dice": []}))


def materialize_mitigation(tmp_path: Path, variants: dict) -> dg.ExecuteInProcessResult:
    """mitigation_comparison and mitigation_figure on planted scores of race_black and its
    oversampled variant, with `variants` added to the study's experiments."""
    design = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())
    design["experiments"] |= variants
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(design, sort_keys=False))

    @dg.asset(name="subject_scores", group_name="analysis")
    def planted_scores() -> pl.DataFrame:
        return subject_scores(planted_metrics((SEX, BASELINE, OVERSAMPLED)))

    return dg.materialize(
        [planted_scores, beyond_the_paper.mitigation_comparison, figures.mitigation_figure],
        resources={
            "study": StudyResource(study_file=str(study_file), work_dir=str(tmp_path)),
            "io_manager": DuckDBPolarsTables(
                database=str(tmp_path / "study.duckdb"), schema="cmrbias"
            ),
        },
    )


def test_mitigation_comparison_is_exported_shown_and_drawn(tmp_path) -> None:
    race = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())["experiments"]["race_black"]
    variant = {**race, "mitigation": "oversampling", "varies": "race_black"}
    result = materialize_mitigation(tmp_path, {"race_black_oversampled": variant})
    table = result.output_for_node("mitigation_comparison")
    assert table.select("experiment", "strategy").unique(maintain_order=True).rows() == [
        ("race_black", "none"),
        ("race_black_oversampled", "oversampling"),
    ]
    metadata = result.asset_materializations_for_node("mitigation_comparison")[0].metadata
    assert pl.read_csv(metadata["csv"].value).height == table.height == 10
    assert metadata["gap_race_black"].value.startswith(
        r"| ratio | race\_black (none) | race\_black\_oversampled (oversampling) |"
    )
    drawn = result.asset_materializations_for_node("mitigation_figure")[0].metadata
    assert Path(drawn["mitigation_path"].value).read_bytes().startswith(b"\x89PNG")


def test_mitigation_comparison_without_variants_is_empty_and_says_why(tmp_path) -> None:
    result = materialize_mitigation(tmp_path, {})
    assert result.output_for_node("mitigation_comparison").is_empty()
    metadata = result.asset_materializations_for_node("mitigation_comparison")[0].metadata
    assert "no mitigated experiment" in metadata["note"].value
    assert pl.read_csv(metadata["csv"].value).columns[:3] == ["experiment", "varies", "strategy"]
    drawn = result.asset_materializations_for_node("mitigation_figure")[0].metadata
    assert "nothing to draw" in drawn["note"].value
