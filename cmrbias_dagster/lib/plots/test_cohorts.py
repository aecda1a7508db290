"""The median overall DSC by training ratio for every test cohort: the study's own test set and
each external cohort, one line each (bootstrap 95 % CI as bars), one panel per experiment."""

from collections.abc import Mapping, Sequence

import polars as pl
from matplotlib.figure import Figure

from cmrbias_dagster.lib.plots.dsc import training_ratio_label
from cmrbias_dagster.lib.plots.panels import SMALL_FONT, group_colour, panel_grid


def dsc_by_test_cohort_figure(
    median_table: pl.DataFrame, group_order: Mapping[str, Sequence[str]]
) -> Figure:
    """One panel per experiment: the median overall DSC of every test subject (group `all`) at
    each training ratio, one line per test cohort (`test_cohort_median_dsc`'s rows)."""
    shown = median_table.filter((pl.col("class") == "overall") & (pl.col("group") == "all"))
    cohorts = shown["test_cohort"].unique(maintain_order=True).to_list()
    figure, axes = panel_grid(1, len(group_order))
    for axis, (experiment, groups) in zip(axes[0], group_order.items(), strict=True):
        for index, cohort in enumerate(cohorts):
            line = shown.filter(
                (pl.col("experiment") == experiment) & (pl.col("test_cohort") == cohort)
            ).sort("ratio")
            if line.is_empty():
                continue
            median = line["median_dsc"].to_numpy()
            low = median - line["ci_low"].to_numpy()
            high = line["ci_high"].to_numpy() - median
            axis.errorbar(
                line["ratio"].to_numpy(),
                median,
                yerr=[low, high],
                marker="o",
                capsize=3,
                color=group_colour(index),
                label=cohort,
            )
        axis.set_title(experiment)
        axis.set_ylabel("median overall DSC")
        axis.set_xlabel(training_ratio_label(groups))
        if axis.get_lines():
            axis.legend(fontsize=SMALL_FONT, title="test cohort", title_fontsize=SMALL_FONT)
    return figure
