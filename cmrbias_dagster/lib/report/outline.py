"""The study report's outline: which sections, in which order, with which prose, tables and
figures. Each section is built by one small function of the report's inputs; `OUTLINE` lists them
in page order, so a new section is one function and one entry."""

from collections.abc import Callable

from cmrbias_dagster.lib.plots import figure_names
from cmrbias_dagster.lib.report.beyond_the_gap import (
    boundary_section,
    confounder_section,
    probes_section,
)
from cmrbias_dagster.lib.report.calibration import calibration_section
from cmrbias_dagster.lib.report.external_cohorts import external_cohorts_section
from cmrbias_dagster.lib.report.html import Section, study_report_html
from cmrbias_dagster.lib.report.inputs import ReportInputs, ReportTables, report_findings
from cmrbias_dagster.lib.report.markdown import study_report_markdown
from cmrbias_dagster.lib.report.mitigation import mitigation_section
from cmrbias_dagster.lib.report.paper_sections import (
    clinical_section,
    cohort_section,
    convergence_section,
    fairness_section,
    intersectional_section,
    median_dsc_section,
    qualitative_section,
    ratio_dependence_section,
    statistics_section,
)
from cmrbias_dagster.lib.report.repeats import repeats_section
from cmrbias_dagster.lib.report.study_sections import (
    design_section,
    findings_section,
    headline_section,
    provenance_section,
)

TITLE = "Demographic bias in nnU-Net CMR segmentation"
# Re-exported: the report's package and assets build their inputs from here.
__all__ = ["OUTLINE", "ReportInputs", "ReportTables", "report_findings", "study_report_pages"]


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


def attribute_probes_section(inputs: ReportInputs) -> Section | None:
    """The attribute probes (lib/report/beyond_the_gap.py)."""
    figures = inputs.figures_named(figure_names.PROBE_SALIENCY)
    return probes_section(inputs.tables.attribute_probes, figures)


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
