"""The report's sections on the gap beyond median DSC: boundary metrics (HD95, ASSD), the gaps
adjusted for age and BMI, and the attribute probes; each from its exported table, none before it
is exported."""

from collections.abc import Sequence

import polars as pl

from cmrbias_dagster.lib.analysis import boundary, confounders, result_tables
from cmrbias_dagster.lib.report.html import Section

Figures = list[tuple[str, bytes]]

BOUNDARY_TEXT = (
    "HD95 and ASSD (mm, lower is better) per subject, the mean over its cases; a subject with a "
    "case without a distance (a structure missing from prediction or truth) is undefined, left "
    "out and counted (n_undefined). Gaps are the first group's median minus the second's in mm "
    "(positive: the first group worse), with two-level 95 % CIs; established or not established "
    "only, since the design's equivalence margin is in DSC units "
    '(docs/study.md, "Boundary metrics").'
)

CONFOUNDER_TEXT = (
    "The gap in mean overall DSC (first group minus second, DSC) from a regression of subject "
    "DSC on group, ratio (categorical, pooled rows) and age and BMI, with cluster-robust (CR1, "
    "subjects) standard errors and, with repeats, the training draws' variance added as in the "
    "verdicts; beside it the same regression without age and BMI on the same subjects. "
    "verdict_changes says whether adjusting changes the verdict "
    '(docs/study.md, "Confounders").'
)

PROBES_TEXT = (
    "Can a classifier tell each experiment's groups apart (Lee et al. 2024)? Balanced accuracy "
    "and AUC with 95 % bootstrap CIs over the test subjects, out of fold (folds grouped by "
    "subject), from the images, the ground-truth masks and the encoder features of the models "
    "trained at the given ratio; `detected`: the AUC's CI lies above 0.5. The CIs cover the "
    "test subjects only: an encoder row describes fold 0 of one training draw, not the training "
    "recipe (with repeats, each draw's model has its own row). The saliency is the "
    "image probe's held-out Grad-CAM per group, the outline the groups' mean heart "
    "(docs/probes.md)."
)


def boundary_section(
    medians: pl.DataFrame,
    verdicts: pl.DataFrame,
    trends: pl.DataFrame,
    experiments: Sequence[str],
    figures: Figures,
) -> Section | None:
    """HD95 and ASSD: Table 2 in mm per experiment, the overall gaps' verdicts and trends, and
    the figure; none before `boundary_verdicts` is exported."""
    if verdicts.is_empty():
        return None
    shown = [
        (
            f"{experiment}, median {label} (mm)",
            result_tables.table2_wide(
                medians.filter(pl.col("metric") == metric), experiment, values="median_mm"
            ),
        )
        for metric, label in boundary.METRICS.items()
        for experiment in experiments
        if not medians.is_empty() and experiment in set(medians["experiment"])
    ]
    overall = pl.col("class") == "overall"
    shown.append(("Gaps (mm)", verdicts.filter(overall)))
    if not trends.is_empty():
        shown.append(("Share dependence (mm per 100 % share)", trends.filter(overall).drop("note")))
    return Section("Boundary metrics (HD95, ASSD)", BOUNDARY_TEXT, tables=shown, figures=figures)


def confounder_section(table: pl.DataFrame) -> Section | None:
    """The gaps before and after adjusting for age and BMI; none before it is exported."""
    if table.is_empty():
        return None
    return Section(
        "Confounders: gaps adjusted for age and BMI",
        CONFOUNDER_TEXT,
        tables=[("", table.select(confounders.SUMMARY))],
    )


def probes_section(table: pl.DataFrame, figures: Figures) -> Section | None:
    """The attribute probes' table and saliency figure; none before the probes are exported."""
    if table.is_empty():
        return None
    return Section("Attribute probes", PROBES_TEXT, tables=[("", table)], figures=figures)
