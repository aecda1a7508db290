"""The report's sections about the study itself: the headline (each gap with its two-level CI and
verdict), the findings, the design (profile, seed, draws, experiments) and the provenance (software
and data versions)."""

import polars as pl

from cmrbias_dagster.lib.analysis.findings import headline_table
from cmrbias_dagster.lib.analysis.two_level import ONE_DRAW
from cmrbias_dagster.lib.design.profile import Profile
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.report.html import Section, software_versions
from cmrbias_dagster.lib.report.inputs import ReportInputs


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


def provenance_section(inputs: ReportInputs) -> Section:
    """The software versions and the data versions the report was built from."""
    return Section(
        "Provenance",
        tables=[
            ("Software", software_versions()),
            ("Data versions", inputs.tables.data_versions),
        ],
    )
