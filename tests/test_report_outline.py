"""The report's outline (lib/report/outline.py): its sections in order, from analysis tables of
planted scores, with every figure named from the one table (lib/plots/figure_names.py)."""

import dataclasses
import re
from pathlib import Path

import polars as pl
import pytest

from cmrbias_dagster.assets import report as report_assets
from cmrbias_dagster.lib import report
from cmrbias_dagster.lib.analysis import (
    boundary,
    calibration,
    comparisons,
    confounders,
    gaps,
    mitigation,
    ratio_dependence,
    repeats,
    result_tables,
    strategy_effects,
)
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.plots import figure_names
from cmrbias_dagster.lib.report import outline
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, StudyResource
from tests.test_calibration import toy_cases
from tests.test_mitigation_comparison import (
    BASELINE,
    OVERSAMPLED,
    SEX,
    planted_metrics,
    study_design,
)

DESIGN = study_design(SEX, BASELINE, OVERSAMPLED)
SETTINGS = load_study_design(DEFAULT_STUDY_FILE).profile("tiny")
HEADINGS = [
    "Headline",
    "Findings",
    "Study design",
    "Cohort (Table 1)",
    "Median DSC (Table 2)",
    "Intersectional medians (Table 3)",
    "Statistics",
    "Does the gap move with the training share?",
    "Model convergence",
    "Clinical measures (predicted minus truth)",
    "Fairness",
    "Bias mitigation",
    "Repeated draws",
    "Boundary metrics (HD95, ASSD)",
    "Confounders: gaps adjusted for age and BMI",
    "Calibration and uncertainty",
    "Attribute probes",
    "Qualitative",
    "Provenance",
]
ASSETS = Path(report_assets.__file__).parent


@pytest.fixture(scope="module")
def tables() -> report.ReportTables:
    metrics = planted_metrics((SEX, BASELINE, OVERSAMPLED))
    scores = result_tables.subject_scores(metrics)
    # Distances that grow as the DSC falls, and subjects' age and BMI, for the newer sections.
    distances = boundary.subject_boundary_scores(
        metrics.with_columns(hd95_mm=(1 - pl.col("dice")) * 50, assd_mm=(1 - pl.col("dice")) * 15)
    )
    ids = scores["subject_id"].unique().sort()
    manifest = pl.DataFrame(
        {
            "subject_id": ids,
            "age": [40.0 + i for i in range(ids.len())],
            "bmi": [20.0 + i % 7 for i in range(ids.len())],
        }
    )
    order = DESIGN.group_order()
    margin = DESIGN.equivalence_margin
    gap_verdicts = gaps.gap_table(scores, DESIGN, margin)
    return report.ReportTables(
        cohort_characteristics=pl.DataFrame({"measure": ["age"], "p": [0.5]}),
        median_dsc=result_tables.median_dsc_table(scores, seed=DESIGN.seed),
        intersectional_dsc=result_tables.intersectional_table(scores),
        group_comparisons=comparisons.group_comparisons(scores, order),
        ratio_comparisons=comparisons.ratio_comparisons(scores),
        clinical_difference=pl.DataFrame({"measure": ["lv_ef"], "difference": [-1.0]}),
        fairness=comparisons.fairness_table(scores),
        ratio_dependence=ratio_dependence.ratio_dependence_table(scores, DESIGN, margin),
        gap_verdicts=gap_verdicts,
        model_convergence=pl.DataFrame(
            {"experiment": ["sex"], "ratio": [0], "fold": [0], "passed": [True], "reason": ["ok"]}
        ),
        mitigation_comparison=mitigation.mitigation_comparison(scores, DESIGN),
        mitigation_effects=strategy_effects.strategy_effect_table(scores, DESIGN, margin),
        repeat_summary=repeats.repeat_summary(scores, gap_verdicts, DESIGN),
        data_versions=pl.DataFrame(schema=["asset", "partition", "data_version"]),
        boundary_metric_table=boundary.boundary_median_table(distances, seed=DESIGN.seed),
        boundary_verdicts=boundary.boundary_gap_table(distances, DESIGN),
        boundary_ratio_dependence=boundary.boundary_ratio_dependence(distances, DESIGN),
        confounder_adjusted_gaps=confounders.confounder_adjusted_gaps(scores, manifest, DESIGN),
        calibration_by_group=calibration.calibration_by_group(toy_cases(), order, DESIGN.seed, 50),
        attribute_probes=pl.DataFrame({"experiment": ["sex"], "probe": ["images"], "auc": [0.6]}),
    )


def every_figure() -> dict[str, bytes]:
    """A distinct stand-in PNG for each figure the study draws."""
    names = figure_names.all_figures(DESIGN.experiment_names)
    return {name: f"png of {name}".encode() for name in names}


def inputs_of(tables: report.ReportTables, figures: dict[str, bytes]) -> report.ReportInputs:
    findings = report.report_findings(tables, DESIGN)
    return report.ReportInputs(tables, figures, DESIGN, "tiny", SETTINGS, findings)


def test_the_sections_come_in_the_outlines_order(tables) -> None:
    sections = report.study_report_sections(inputs_of(tables, every_figure()))
    assert [section.heading for section in sections] == HEADINGS
    # Every section but "External test cohorts", which a design without external_test omits.
    assert len(report.OUTLINE) == len(HEADINGS) + 1
    headline = sections[0].tables[0][1]
    assert headline["experiment"].to_list()[::3] == ["race_black", "race_black_oversampled", "sex"]
    findings = list(sections[1].bullets)
    assert findings == report.report_findings(tables, DESIGN)
    assert findings[1].startswith("race_black: black median DSC")
    median = dict(sections[4].tables)
    assert list(median) == ["sex", "race_black", "race_black_oversampled"]
    assert median["race_black"].equals(result_tables.table2_wide(tables.median_dsc, "race_black"))
    design_table = dict(sections[2].tables)["Experiments"]
    assert design_table["train"].to_list() == [SETTINGS.train_size] * 3


def test_each_figure_is_shown_under_its_name_from_the_one_table(tables) -> None:
    figures = every_figure()
    sections = {s.heading: s for s in report.study_report_sections(inputs_of(tables, figures))}
    expected = {
        "Cohort (Table 1)": [figure_names.COHORT_DISTRIBUTIONS],
        "Median DSC (Table 2)": [figure_names.DSC_BY_RATIO, figure_names.DSC_BY_CLASS],
        "Clinical measures (predicted minus truth)": [figure_names.CLINICAL_DIFFERENCES],
        "Fairness": [figure_names.FAIRNESS],
        "Bias mitigation": [figure_names.MITIGATION],
        "Repeated draws": [figure_names.REPEATS],
        "Boundary metrics (HD95, ASSD)": [figure_names.BOUNDARY_BY_RATIO],
        "Calibration and uncertainty": [
            figure_names.reliability(e) for e in DESIGN.experiment_names
        ],
        "Qualitative": [figure_names.qualitative(e) for e in DESIGN.experiment_names],
        "Attribute probes": [figure_names.PROBE_SALIENCY],
    }
    shown = {h: [name for name, _ in s.figures] for h, s in sections.items() if s.figures}
    assert shown == expected
    for section in sections.values():
        assert all(png == figures[name] for name, png in section.figures)
    # Every figure but the test cohorts', which a design without external_test does not show.
    drawn = set(figures) - {figure_names.DSC_BY_TEST_COHORT}
    assert sorted(name for names in shown.values() for name in names) == sorted(drawn)


def test_figures_not_drawn_and_tables_not_exported_are_left_out(tables) -> None:
    unexported = dataclasses.replace(
        tables,
        mitigation_comparison=tables.mitigation_comparison.clear(),
        repeat_summary=tables.repeat_summary.clear(),
        calibration_by_group=tables.calibration_by_group.clear(),
        attribute_probes=tables.attribute_probes.clear(),
    )
    drawn = {figure_names.FAIRNESS: b"png"}
    sections = report.study_report_sections(inputs_of(unexported, drawn))
    headings = [section.heading for section in sections]
    left_out = (
        "Bias mitigation",
        "Repeated draws",
        "Calibration and uncertainty",
        "Attribute probes",
    )
    assert headings == [h for h in HEADINGS if h not in left_out]
    assert [name for s in sections for name, _ in s.figures] == [figure_names.FAIRNESS]


def test_the_pages_render_the_outline(tables) -> None:
    page, markdown = report.study_report_pages(inputs_of(tables, {}))
    assert re.findall(r"<h2>([^<]*)</h2>", page) == HEADINGS
    assert page.startswith("<!DOCTYPE html>") and "<p>Profile tiny.</p>" in page
    assert re.findall(r"^## (.*)$", markdown, re.MULTILINE)[:2] == ["Headline", "Findings"]
    assert "<ul><li>race\\_black" not in page and "<ul><li>sex: " in page
    assert markdown.startswith("# Demographic bias in nnU-Net CMR segmentation")
    assert "The full-size figures are in the HTML file." in markdown


@pytest.mark.parametrize("module", ["figures.py", "report.py"])
def test_the_assets_spell_no_figure_name(module: str) -> None:
    """The figure assets and the report take every figure's name from `figure_names`."""
    source = (ASSETS / module).read_text()
    for name in figure_names.all_figures(["race_black"]):
        assert f'"{name}"' not in source, name
    assert "qualitative_{" not in source


def exported_inputs(study: StudyResource) -> report.ReportInputs:
    """The report's inputs as `study_report` reads them from a study's files: the exported
    tables and the drawn figures; the tables it gets as asset inputs left empty."""
    empty = {field.name: pl.DataFrame() for field in dataclasses.fields(report.ReportTables)}
    tables = report.ReportTables(**{**empty, **report_assets.exported_tables(study)})
    design = study.design()
    figures = report_assets.drawn_figures(study)
    return report.ReportInputs(tables, figures, design, study.profile, study.settings(), ())


def exported_mitigation_section(study: StudyResource) -> list[report.Section]:
    """The "Bias mitigation" section as `study_report` builds it from the study's files."""
    section = outline.bias_mitigation_section(exported_inputs(study))
    return [] if section is None else [section]


def exported_repeats_section(study: StudyResource) -> list[report.Section]:
    """The "Repeated draws" section as `study_report` builds it from the study's files."""
    section = outline.repeated_draws_section(exported_inputs(study))
    return [] if section is None else [section]


def test_the_calibration_section_puts_each_gap_beside_the_dsc_gap(tables) -> None:
    section = outline.calibration_by_group_section(inputs_of(tables, {}))
    gaps = dict(section.tables)["Gaps between groups (overall)"]
    row = gaps.filter(pl.col("ratio") == 25).row(0, named=True)
    assert row["experiment"] == "race_black" and row["ece_gap"] == pytest.approx(-0.3)
    dsc = tables.gap_verdicts.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 25)
        & (pl.col("class") == "overall")
    )
    assert row["dsc_gap"] == pytest.approx(dsc["estimate"].item())
    by_group = dict(section.tables)["By group (overall)"]
    assert sorted(by_group["group"].to_list()) == ["black", "white"]
