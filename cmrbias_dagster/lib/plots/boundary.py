"""Boundary distances (HD95, ASSD) per group across the training ratios: Fig. 2 in mm."""

from collections.abc import Mapping, Sequence

import polars as pl
from matplotlib.figure import Figure

from cmrbias_dagster.lib.plots.boxes import ratio_boxes, significance_brackets
from cmrbias_dagster.lib.plots.dsc import training_ratio_label
from cmrbias_dagster.lib.plots.panels import add_group_legend, panel_grid


def boundary_by_ratio_figure(
    scores: pl.DataFrame,
    comparisons: pl.DataFrame,
    group_order: Mapping[str, Sequence[str]],
    metrics: Mapping[str, str],
) -> Figure:
    """Rows = metrics (column name: label), columns = experiments: box plots of each group's
    overall distance (mm, lower is better) at every ratio, with the Mann-Whitney stars."""
    figure, axes = panel_grid(len(metrics), len(group_order))
    overall = scores.filter(pl.col("class") == "overall")
    tests = comparisons.filter(pl.col("class") == "overall")
    for row, (metric, label) in enumerate(metrics.items()):
        for column, (experiment, groups) in enumerate(group_order.items()):
            axis = axes[row][column]
            cell = overall.filter(pl.col("experiment") == experiment)
            spans = ratio_boxes(axis, cell, metric, groups)
            stars = tests.filter(
                (pl.col("experiment") == experiment) & (pl.col("metric") == metric)
            )
            significance_brackets(
                axis, spans, dict(zip(stars["ratio"], stars["stars"], strict=True))
            )
            axis.set_ylabel(f"{label} (mm)")
            if row == 0:
                axis.set_title(experiment)
                add_group_legend(axis, list(groups))
            if row == len(metrics) - 1:
                axis.set_xlabel(training_ratio_label(groups))
    return figure
