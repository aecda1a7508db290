"""The report's "External test cohorts" section: the study's own test set and each external
cohort (the design's `external_test`) side by side."""

import polars as pl

from cmrbias_dagster.lib.design.external import INTERNAL_COHORT
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.plots.figure_names import DSC_BY_TEST_COHORT
from cmrbias_dagster.lib.report.html import Section

TEXT = (
    "The experiments' models, trained on the study cohort only, also segmented {cohorts}. "
    "test_cohort `{internal}` is the study's own test set. A group row exists only where a "
    "cohort records the group's attribute, a gap only where it holds both groups (at least two "
    "subjects each); a class its truth does not label (Sunnybrook: the RV) has no DSC, and its "
    "`overall` averages the classes it labels, so it is not comparable with another cohort's "
    '(docs/study.md, "External test cohorts").'
)
GAP_COLUMNS = ("test_cohort", "experiment", "ratio", "median_a", "median_b", "estimate")
GAP_COLUMNS += ("ci_low", "ci_high", "p_holm", "verdict")


def external_cohorts_section(
    design: StudyDesign,
    median_dsc: pl.DataFrame,
    gap_verdicts: pl.DataFrame,
    figure: bytes | None = None,
) -> Section | None:
    """Median overall DSC per test cohort, ratio and group (one column per cohort) and the
    overall gap verdicts per cohort; None when the design names no external cohort."""
    if not design.external_test:
        return None
    names = ", ".join(cohort.name for cohort in design.external_test)
    tables = []
    if not median_dsc.is_empty():
        overall = median_dsc.filter(pl.col("class") == "overall").pivot(
            on="test_cohort", index=["experiment", "ratio", "group"], values="median_dsc"
        )
        tables.append(("Median overall DSC per test cohort", overall.sort("experiment", "ratio")))
    if not gap_verdicts.is_empty():
        gaps = gap_verdicts.filter(pl.col("class") == "overall").select(GAP_COLUMNS)
        tables.append(("Overall gap per test cohort", gaps))
    return Section(
        "External test cohorts",
        TEXT.format(cohorts=names, internal=INTERNAL_COHORT),
        tables=tables,
        figures=[(DSC_BY_TEST_COHORT, figure)] if figure is not None else [],
    )
