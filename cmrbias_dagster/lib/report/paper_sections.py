"""The report's sections that reproduce the paper: Table 1, Table 2 with Figs. 2-3, Table 3, the
statistics, the share dependence, convergence, clinical measures (Fig. 4), fairness and the
qualitative figures. Each is one small function of the report's inputs (lib/report/inputs.py)."""

import polars as pl

from cmrbias_dagster.lib.analysis import result_tables
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.plots import figure_names
from cmrbias_dagster.lib.report.html import Section
from cmrbias_dagster.lib.report.inputs import ReportInputs


def table3_note(design: StudyDesign) -> str:
    """Which experiments Table 3 leaves out because they hold no attribute 50/50."""
    unheld = [e.name for e in design.experiments if not e.held_attribute]
    return f"No held attribute, so no rows: {', '.join(unheld)}." if unheld else ""


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


def qualitative_section(inputs: ReportInputs) -> Section:
    """Each experiment's best, median and worst test subjects."""
    names = [figure_names.qualitative(e) for e in inputs.design.experiment_names]
    return Section("Qualitative", figures=inputs.figures_named(*names))
