"""Figures of per-subject DSC by training ratio and group (the paper's Fig. 2 and Fig. 3)."""

from collections.abc import Mapping, Sequence

import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cmrbias_dagster.lib.cohort.clinical import STRUCTURES
from cmrbias_dagster.lib.plots.boxes import ratio_boxes, significance_brackets
from cmrbias_dagster.lib.plots.panels import add_group_legend, panel_grid


def dsc_by_ratio_figure(
    subject_scores: pl.DataFrame,
    comparisons: pl.DataFrame,
    group_order: Mapping[str, Sequence[str]],
    class_name: str = "overall",
) -> Figure:
    """Fig. 2: one panel per experiment, box plots of each group's DSC at every training ratio
    with the group comparison's stars above each pair."""
    figure, axes = panel_grid(1, len(group_order))
    for axis, (experiment, groups) in zip(axes[0], group_order.items(), strict=True):
        _dsc_panel(axis, subject_scores, comparisons, experiment, groups, class_name)
        axis.set_title(experiment)
        axis.set_ylabel("DSC")
        axis.set_xlabel(training_ratio_label(groups))
        add_group_legend(axis, list(groups))
    return figure


def dsc_by_class_figure(
    subject_scores: pl.DataFrame,
    comparisons: pl.DataFrame,
    group_order: Mapping[str, Sequence[str]],
) -> Figure:
    """Fig. 3: rows = LVBP, LVM, RVBP; columns = experiments; box plots and stars as in Fig. 2."""
    figure, axes = panel_grid(len(STRUCTURES), len(group_order))
    for row, class_name in enumerate(STRUCTURES):
        for column, (experiment, groups) in enumerate(group_order.items()):
            axis = axes[row][column]
            _dsc_panel(axis, subject_scores, comparisons, experiment, groups, class_name)
            axis.set_ylabel(f"{class_name} DSC")
            if row == 0:
                axis.set_title(experiment)
                add_group_legend(axis, list(groups))
            if row == len(STRUCTURES) - 1:
                axis.set_xlabel(training_ratio_label(groups))
    return figure


def training_ratio_label(groups: Sequence[str]) -> str:
    """X axis label naming the group whose share of the training set the ratio is."""
    return f"% {groups[0]} in training"


def _dsc_panel(
    axis: Axes,
    scores: pl.DataFrame,
    comparisons: pl.DataFrame,
    experiment: str,
    groups: Sequence[str],
    class_name: str,
) -> None:
    cell = scores.filter((pl.col("experiment") == experiment) & (pl.col("class") == class_name))
    spans = ratio_boxes(axis, cell, "dsc", groups)
    tests = comparisons.filter(
        (pl.col("experiment") == experiment) & (pl.col("class") == class_name)
    )
    significance_brackets(axis, spans, dict(zip(tests["ratio"], tests["stars"], strict=True)))
