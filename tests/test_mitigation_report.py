"""The report's "Bias mitigation" section: from the comparison table (lib), and as study_report
builds it from the exported CSV and figure (assets)."""

import io
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from cmrbias_dagster.lib import report
from cmrbias_dagster.lib.analysis import mitigation, strategy_effects
from cmrbias_dagster.lib.analysis.result_tables import subject_scores
from cmrbias_dagster.lib.outputs import export_table
from cmrbias_dagster.resources import StudyResource
from tests.test_mitigation_comparison import (
    BASELINE,
    DRO,
    OVERSAMPLED,
    SEX,
    planted_metrics,
    study_design,
)
from tests.test_report_outline import exported_mitigation_section

DESIGN = study_design(SEX, BASELINE, OVERSAMPLED, DRO)
GAP_CAPTION = "Gap, median DSC first - second group: race_black"


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 4), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def scores() -> pl.DataFrame:
    return subject_scores(planted_metrics((SEX, BASELINE, OVERSAMPLED, DRO)))


@pytest.fixture(scope="module")
def comparison(scores) -> pl.DataFrame:
    return mitigation.mitigation_comparison(scores, DESIGN)


@pytest.fixture(scope="module")
def effects(scores) -> pl.DataFrame:
    return strategy_effects.strategy_effect_table(scores, DESIGN, DESIGN.equivalence_margin)


def test_the_section_shows_each_familys_gap_the_summary_and_the_tests(comparison, effects) -> None:
    section = report.mitigation_section(comparison, effects, DESIGN, png())
    assert section is not None and section.heading == "Bias mitigation"
    captions = [caption for caption, _ in section.tables]
    assert captions == [GAP_CAPTION, "Summary", "Tested effects"]
    gaps, summary, tested = (frame for _, frame in section.tables)
    assert gaps.equals(mitigation.side_by_side(comparison, "race_black"))
    assert summary.columns == list(mitigation.SUMMARY) and summary.height == comparison.height
    assert tested.columns == list(strategy_effects.SUMMARY)
    # two strategies x the ratios evaluated x (each group, the gap)
    assert tested.height == 2 * comparison["ratio"].n_unique() * 3
    assert section.figures == [("mitigation", png())]
    markdown = report.study_report_markdown("t", "", [section])
    assert r"race\_black\_oversampled (oversampling)" in markdown
    assert "data:image/png;base64," in markdown


def test_no_section_without_rows_of_the_designs_mitigated_experiments(comparison, effects) -> None:
    empty = comparison.clear()
    assert report.mitigation_section(empty, effects, DESIGN) is None
    assert report.mitigation_section(comparison, effects, study_design(SEX, BASELINE)) is None


def study_of(tmp_path: Path) -> StudyResource:
    """A study resource whose design file holds race_black and its oversampled variant."""
    import yaml

    from cmrbias_dagster.resources import DEFAULT_STUDY_FILE

    design = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())
    race = design["experiments"]["race_black"]
    design["experiments"]["race_black_oversampled"] = {
        **race,
        "mitigation": "oversampling",
        "varies": "race_black",
    }
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(design, sort_keys=False))
    return StudyResource(study_file=str(study_file), profile="tiny", work_dir=str(tmp_path))


def test_the_report_reads_the_exported_table_and_figure(tmp_path: Path) -> None:
    study = study_of(tmp_path)
    assert exported_mitigation_section(study) == []  # neither asset materialised yet
    scores = subject_scores(planted_metrics((SEX, BASELINE, OVERSAMPLED)))
    table = mitigation.mitigation_comparison(scores, study.design())
    export_table(table, study.tables_folder(), "mitigation_comparison")
    (section,) = exported_mitigation_section(study)
    assert section.figures == []  # no figure file yet
    summary = dict(section.tables)["Summary"]
    assert summary.equals(table.select(mitigation.SUMMARY))  # nulls and types survive the CSV
    study.figure_file("mitigation").write_bytes(b"\x89PNG")
    (section,) = exported_mitigation_section(study)
    assert section.figures == [("mitigation", b"\x89PNG")]


def test_an_empty_exported_table_gives_no_section(tmp_path: Path) -> None:
    study = study_of(tmp_path)
    export_table(
        pl.DataFrame(schema=mitigation.SCHEMA), study.tables_folder(), "mitigation_comparison"
    )
    assert exported_mitigation_section(study) == []
