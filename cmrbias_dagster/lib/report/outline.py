"""The study report's outline: which sections, in which order, with which prose, tables and
figures. Each section is built by one small function of the report's inputs; `OUTLINE` lists them
in page order, so a new section is one function and one entry."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from cmrbias_dagster.lib.analysis import boundary, confounders, result_tables
from cmrbias_dagster.lib.analysis.findings import headline_table, study_findings
from cmrbias_dagster.lib.analysis.two_level import ONE_DRAW
from cmrbias_dagster.lib.design.profile import Profile
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.plots import figure_names
from cmrbias_dagster.lib.report.beyond_the_gap import (
    boundary_section,
    confounder_section,
    probes_section,
)
from cmrbias_dagster.lib.report.calibration import calibration_section
from cmrbias_dagster.lib.report.external_cohorts import external_cohorts_section
from cmrbias_dagster.lib.report.html import Section, software_versions, study_report_html
from cmrbias_dagster.lib.report.markdown import study_report_markdown
from cmrbias_dagster.lib.report.mitigation import mitigation_section
from cmrbias_dagster.lib.report.repeats import repeats_section

TITLE = "Demographic bias in nnU-Net CMR segmentation"


@dataclass(frozen=True)
class ReportTables:
    """The analysis tables the report shows; `mitigation_comparison`, `mitigation_effects` and
    `repeat_summary` are empty while not exported, `data_versions` is each input partition's
    latest data version; `calibration_by_group` is empty while not exported."""

    cohort_characteristics: pl.DataFrame
    median_dsc: pl.DataFrame
    intersectional_dsc: pl.DataFrame
    group_comparisons: pl.DataFrame
    ratio_comparisons: pl.DataFrame
    clinical_difference: pl.DataFrame
    fairness: pl.DataFrame
    ratio_dependence: pl.DataFrame
    gap_verdicts: pl.DataFrame
    model_convergence: pl.DataFrame
    mitigation_comparison: pl.DataFrame
    mitigation_effects: pl.DataFrame
    repeat_summary: pl.DataFrame
    data_versions: pl.DataFrame
    # Read from their exported files (empty until exported): HD95/ASSD by group, and the gaps
    # adjusted for age and BMI.
    boundary_metric_table: pl.DataFrame = field(default_factory=pl.DataFrame)
    boundary_verdicts: pl.DataFrame = field(default_factory=pl.DataFrame)
    boundary_ratio_dependence: pl.DataFrame = field(default_factory=pl.DataFrame)
    confounder_adjusted_gaps: pl.DataFrame = field(default_factory=pl.DataFrame)
    calibration_by_group: pl.DataFrame = field(default_factory=pl.DataFrame)
    # Every test cohort side by side (lib/external/tables.py); empty without external cohorts.
    test_cohort_median_dsc: pl.DataFrame = field(default_factory=pl.DataFrame)
    test_cohort_gap_verdicts: pl.DataFrame = field(default_factory=pl.DataFrame)
    # Empty while the probes have not been exported (or are off in the profile).
    attribute_probes: pl.DataFrame = field(default_factory=pl.DataFrame)


@dataclass(frozen=True)
class ReportInputs:
    """Everything a section may show: the tables, the figures drawn so far (PNG bytes by their
    `figure_names` name), the design, the profile's name and settings, and the findings."""

    tables: ReportTables
    figures: Mapping[str, bytes]
    design: StudyDesign
    profile: str
    settings: Profile
    findings: Sequence[str]

    def figures_named(self, *names: str) -> list[tuple[str, bytes]]:
        """The named figures that have been drawn, as (caption, PNG) in the given order."""
        return [(name, self.figures[name]) for name in names if name in self.figures]


def report_findings(tables: ReportTables, design: StudyDesign) -> list[str]:
    """The findings, one bullet per experiment: each gap by ratio with its two-level CI and
    verdict, its dependence on the share and its models' convergence records."""
    return study_findings(
        tables.gap_verdicts,
        design,
        ratio_dependence=tables.ratio_dependence,
        convergence=tables.model_convergence,
    ) + extra_findings(tables)


def extra_findings(tables: ReportTables) -> list[str]:
    """The bullets of the boundary metrics and of the confounder adjustment, once exported."""
    bullets = []
    if not tables.boundary_verdicts.is_empty():
        trends = tables.boundary_ratio_dependence
        bullets += boundary.boundary_findings(tables.boundary_verdicts, trends)
    if not tables.confounder_adjusted_gaps.is_empty():
        bullets += confounders.confounder_findings(tables.confounder_adjusted_gaps)
    return bullets


def design_table(design: StudyDesign, settings: Profile) -> pl.DataFrame:
    """One row per experiment: its groups, the attribute held 50/50, the ratios and sizes."""
    rows = [
        (
            e.name,
            f"{e.groups[0]} vs {e.groups[1]}",
            f"{e.held_attribute} {e.held_values}" if e.held_attribute else "none",
        )
        for e in design.experiments
    ]
    table = pl.DataFrame(rows, schema=["experiment", "groups", "held 50/50"], orient="row")
    return table.with_columns(
        ratios=pl.lit(str(list(design.ratios))),
        train=pl.lit(settings.train_size),
        test=pl.lit(settings.test_size),
        folds=pl.lit(settings.folds),
        trained_folds=pl.lit(settings.trained_folds),
    )


def draws_note(design: StudyDesign) -> str:
    """How often each experiment is drawn, when more than once (`repeats` in the design)."""
    note = f" Each experiment drawn {design.repeats} times (repeat r > 1: <experiment>_r<r>)."
    return note if design.repeats > 1 else ""


def table3_note(design: StudyDesign) -> str:
    """Which experiments Table 3 leaves out because they hold no attribute 50/50."""
    unheld = [e.name for e in design.experiments if not e.held_attribute]
    return f"No held attribute, so no rows: {', '.join(unheld)}." if unheld else ""


HEADLINE_TEXT = (
    "Median overall DSC of each group by the first group's share of the training set, and the "
    "gap (first group minus second, DSC points) with its 95 % CI over training draws and test "
    "subjects and the verdict: established (Holm-adjusted test rejects no gap), not established, "
    'or equivalent within the design\'s margin (docs/study.md, "Verdicts").'
)


def headline_section(inputs: ReportInputs) -> Section | None:
    """Each experiment's group medians by ratio, the gaps with CIs and verdicts, the trend."""
    tables = inputs.tables
    if tables.gap_verdicts.is_empty():
        return None
    text = HEADLINE_TEXT
    if inputs.design.repeats == 1:
        text += f" One training draw per model: {ONE_DRAW}."
    return Section(
        "Headline",
        text,
        tables=[("", headline_table(tables.gap_verdicts, tables.ratio_dependence))],
    )


def findings_section(inputs: ReportInputs) -> Section:
    """The findings, one bullet per experiment."""
    return Section("Findings", bullets=tuple(inputs.findings))


def design_section(inputs: ReportInputs) -> Section:
    """The profile, the seed, the draws and one row per experiment."""
    return Section(
        "Study design",
        f"Profile {inputs.profile}, seed {inputs.design.seed}.{draws_note(inputs.design)}",
        tables=[("Experiments", design_table(inputs.design, inputs.settings))],
    )


def cohort_section(inputs: ReportInputs) -> Section:
    """Table 1 and the cohort's distributions."""
    return Section(
        "Cohort (Table 1)",
        tables=[("Characteristics, Welch t-tests", inputs.tables.cohort_characteristics)],
        figures=inputs.figures_named(figure_names.COHORT_DISTRIBUTIONS),
    )


def median_dsc_section(inputs: ReportInputs) -> Section:
    """Table 2 per evaluated experiment, with Figs. 2 and 3."""
    medians = inputs.tables.median_dsc
    return Section(
        "Median DSC (Table 2)",
        tables=[
            (e, result_tables.table2_wide(medians, e))
            for e in inputs.design.experiment_names
            if e in set(medians["experiment"])
        ],
        figures=inputs.figures_named(figure_names.DSC_BY_RATIO, figure_names.DSC_BY_CLASS),
    )


def intersectional_section(inputs: ReportInputs) -> Section:
    """Table 3, naming the experiments it leaves out."""
    return Section(
        "Intersectional medians (Table 3)",
        table3_note(inputs.design),
        tables=[("", inputs.tables.intersectional_dsc)],
    )


def statistics_section(inputs: ReportInputs) -> Section:
    """The group tests on overall DSC and each ratio's test against 0 %."""
    tables = inputs.tables
    return Section(
        "Statistics",
        "Mann-Whitney U between groups; paired Wilcoxon between ratios; Holm per experiment.",
        tables=[
            ("Groups, overall DSC", tables.group_comparisons.filter(pl.col("class") == "overall")),
            ("Ratios vs 0 %", tables.ratio_comparisons.filter(pl.col("ratio_a") == 0)),
        ],
    )


def ratio_dependence_section(inputs: ReportInputs) -> Section:
    """Whether each gap moves with the first group's training share."""
    return Section(
        "Does the gap move with the training share?",
        "Per-subject DSC slopes over the ratios; the gap slope (estimate) is the first group's "
        "mean slope minus the second's within held strata (DSC per 100 % share), with a 95 % CI "
        "over training draws and test subjects (Holm per class). A gap that does not move with "
        "the share points to group difficulty or under-training rather than imbalance bias.",
        tables=[("", inputs.tables.ratio_dependence.drop("note"))],
    )


def convergence_section(inputs: ReportInputs) -> Section:
    """Each trained fold's convergence check."""
    return Section(
        "Model convergence",
        "Each trained fold's `converged` check: whether its curves reached a plateau under its "
        "schedule, the EMA pseudo-Dice and the training loss moving less than their thresholds, "
        "either way, over the last part of training (thresholds per profile in the study "
        "design). A pass says the curves flattened, not that the model is trained enough.",
        tables=[("", inputs.tables.model_convergence.drop("reason", strict=False))],
    )


def clinical_section(inputs: ReportInputs) -> Section:
    """Predicted minus true clinical measures, with Fig. 4."""
    return Section(
        "Clinical measures (predicted minus truth)",
        tables=[("", inputs.tables.clinical_difference)],
        figures=inputs.figures_named(figure_names.CLINICAL_DIFFERENCES),
    )


def fairness_section(inputs: ReportInputs) -> Section:
    """The fairness metrics by ratio, with their figure."""
    return Section(
        "Fairness",
        tables=[("", inputs.tables.fairness)],
        figures=inputs.figures_named(figure_names.FAIRNESS),
    )


def bias_mitigation_section(inputs: ReportInputs) -> Section | None:
    """The "Bias mitigation" section; none while the design's mitigated experiments have no
    rows in `mitigation_comparison`."""
    return mitigation_section(
        inputs.tables.mitigation_comparison,
        inputs.tables.mitigation_effects,
        inputs.design,
        inputs.figures.get(figure_names.MITIGATION),
    )


def repeated_draws_section(inputs: ReportInputs) -> Section | None:
    """The "Repeated draws" section; none before `repeat_summary` has rows."""
    return repeats_section(
        inputs.tables.repeat_summary, inputs.design, inputs.figures.get(figure_names.REPEATS)
    )


def boundary_metrics_section(inputs: ReportInputs) -> Section | None:
    """HD95 and ASSD by group (lib/report/beyond_the_gap.py)."""
    tables = inputs.tables
    return boundary_section(
        tables.boundary_metric_table,
        tables.boundary_verdicts,
        tables.boundary_ratio_dependence,
        inputs.design.experiment_names,
        inputs.figures_named(figure_names.BOUNDARY_BY_RATIO),
    )


def confounders_section(inputs: ReportInputs) -> Section | None:
    """The gaps adjusted for age and BMI (lib/report/beyond_the_gap.py)."""
    return confounder_section(inputs.tables.confounder_adjusted_gaps)


def calibration_by_group_section(inputs: ReportInputs) -> Section | None:
    """Calibration and uncertainty by group, the gaps beside the DSC gap, the reliability
    diagrams; none before `calibration_by_group` has rows."""
    names = [figure_names.reliability(e) for e in inputs.design.experiment_names]
    return calibration_section(
        inputs.tables.calibration_by_group,
        inputs.tables.gap_verdicts,
        inputs.figures_named(*names),
    )


def qualitative_section(inputs: ReportInputs) -> Section:
    """Each experiment's best, median and worst test subjects."""
    names = [figure_names.qualitative(e) for e in inputs.design.experiment_names]
    return Section("Qualitative", figures=inputs.figures_named(*names))


def attribute_probes_section(inputs: ReportInputs) -> Section | None:
    """The attribute probes (lib/report/beyond_the_gap.py)."""
    figures = inputs.figures_named(figure_names.PROBE_SALIENCY)
    return probes_section(inputs.tables.attribute_probes, figures)


def provenance_section(inputs: ReportInputs) -> Section:
    """The software versions and the data versions the report was built from."""
    return Section(
        "Provenance",
        tables=[
            ("Software", software_versions()),
            ("Data versions", inputs.tables.data_versions),
        ],
    )


def external_test_section(inputs: ReportInputs) -> Section | None:
    """The "External test cohorts" section: the study's own test set (`internal`) and each
    external cohort side by side; none when the design names no external cohort."""
    return external_cohorts_section(
        inputs.design,
        inputs.tables.test_cohort_median_dsc,
        inputs.tables.test_cohort_gap_verdicts,
        inputs.figures.get(figure_names.DSC_BY_TEST_COHORT),
    )


OUTLINE: tuple[Callable[[ReportInputs], Section | None], ...] = (
    headline_section,
    findings_section,
    design_section,
    cohort_section,
    median_dsc_section,
    intersectional_section,
    statistics_section,
    ratio_dependence_section,
    convergence_section,
    clinical_section,
    fairness_section,
    bias_mitigation_section,
    repeated_draws_section,
    boundary_metrics_section,
    confounders_section,
    calibration_by_group_section,
    external_test_section,
    attribute_probes_section,
    qualitative_section,
    provenance_section,
)


def study_report_sections(inputs: ReportInputs) -> list[Section]:
    """The report's sections in page order; a section with nothing to show yet is left out."""
    sections = (build(inputs) for build in OUTLINE)
    return [section for section in sections if section is not None]


def study_report_pages(inputs: ReportInputs) -> tuple[str, str]:
    """The report as one self-contained HTML page and as Markdown for the Dagster UI."""
    sections = study_report_sections(inputs)
    page = study_report_html(TITLE, f"Profile {inputs.profile}.", sections)
    summary = f"Profile {inputs.profile}. The full-size figures are in the HTML file."
    return page, study_report_markdown(TITLE, summary, sections)
