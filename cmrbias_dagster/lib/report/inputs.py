"""What the report is built from: the analysis tables (`ReportTables`), the figures drawn so far,
the design and the profile (`ReportInputs`), and the findings' bullets."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from cmrbias_dagster.lib.analysis import boundary, confounders
from cmrbias_dagster.lib.analysis.findings import study_findings
from cmrbias_dagster.lib.design.profile import Profile
from cmrbias_dagster.lib.design.study import StudyDesign


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
