"""The report's "Bias mitigation" section: each mitigated experiment beside the one it varies."""

import polars as pl

from cmrbias_dagster.lib.analysis.mitigation import SUMMARY, mitigation_families, side_by_side
from cmrbias_dagster.lib.analysis.strategy_effects import SUMMARY as EFFECTS
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.report.html import Section

TEXT = (
    "Each mitigated experiment beside the experiment it varies, trained on the same subjects at "
    "each ratio (docs/mitigation.md). Gap: the first group's median overall DSC minus the "
    "second's; gap_closed: how much the strategy narrowed it against the baseline at that ratio; "
    "dsc_change: what it cost (or gained) in mean DSC. Tested effects: the paired change, "
    "variant minus baseline on the same test subjects, of each group's median DSC and of the "
    "gap, with 95 % CIs over training draws and test subjects; a strategy narrows the gap only "
    "where that change is established."
)


def mitigation_section(
    comparison: pl.DataFrame,
    effects: pl.DataFrame,
    design: StudyDesign,
    figure: bytes | None = None,
) -> Section | None:
    """The section from `mitigation_comparison` and `mitigation_effects`: per baseline of the
    design with rows, its gap side by side, the summary, the tested effects and the figure; None
    when no family of the design has rows."""
    families = [base.name for base, _ in mitigation_families(design)]
    table = comparison.filter(pl.coalesce("varies", "experiment").is_in(families))
    if table.is_empty():
        return None
    shown = set(table["experiment"])
    return Section(
        "Bias mitigation",
        TEXT,
        tables=[
            *(
                (f"Gap, median DSC first - second group: {name}", side_by_side(table, name))
                for name in families
                if name in shown
            ),
            ("Summary", table.select(SUMMARY)),
            ("Tested effects", effects.filter(pl.col("varies").is_in(families)).select(EFFECTS)),
        ],
        figures=[("mitigation", figure)] if figure is not None else [],
    )
