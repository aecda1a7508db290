"""The report's "Repeated draws" section: whether each group gap holds across training draws."""

import polars as pl

from cmrbias_dagster.lib.analysis.repeats import SUMMARY
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.report.html import Section

TEXT = (
    "Each experiment drawn {repeats} time(s): the same test set, new training draws and a new "
    'training seed per repeat (docs/study.md, "Repeated draws"). median_a, median_b: the groups\' '
    "median over repeats of each repeat's median overall DSC; gaps: each repeat's gap, first group "
    "minus second; estimate, ci_low, ci_high: the gap's two-level estimate and 95 % CI, training "
    "draws and test subjects together, and the verdict from it (Holm within the experiment; "
    'docs/study.md, "Verdicts"). With one draw the interval covers the test subjects only.'
)
SPREAD = [f"{stat}_{side}" for side in "ab" for stat in ("min", "max", "sd")]


def repeats_section(
    summary: pl.DataFrame, design: StudyDesign, figure: bytes | None = None
) -> Section | None:
    """The section from `repeat_summary`, limited to the design's experiments: the reader's
    columns, then (with repeats) the spread over repeats, and `repeat_figure`'s PNG if given;
    None while no row is left."""
    bases = {experiment.base for experiment in design.experiments}
    table = summary.filter(pl.col("experiment").is_in(sorted(bases)))
    if table.is_empty():
        return None
    tables = [("Summary", table.select(SUMMARY))]
    if design.repeats > 1:
        spread = table.select("experiment", "ratio", *SPREAD, "p_value", "p_holm")
        tables.append(("Spread over repeats", spread))
    return Section(
        "Repeated draws",
        TEXT.format(repeats=design.repeats),
        tables=tables,
        figures=[("repeats", figure)] if figure is not None else [],
    )
