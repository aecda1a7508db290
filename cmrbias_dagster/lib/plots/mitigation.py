"""Figure of mitigated experiments beside the experiment they vary: the gap and the skewed error
ratio against the training ratio, and the mean DSC against the gap (the fairness-accuracy
trade-off)."""

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cmrbias_dagster.lib.plots.dsc import training_ratio_label
from cmrbias_dagster.lib.plots.fairness import RATIO_TICKS
from cmrbias_dagster.lib.plots.panels import SMALL_FONT, panel_grid

BASELINE_STYLE = {"color": "black", "linestyle": "--"}


def mitigation_figure(comparison: pl.DataFrame) -> Figure:
    """A row per baseline of the `mitigation_comparison` table, a line per experiment of its
    family (dashed black: the baseline): gap (median DSC, first group minus second) and SER
    against the ratio; mean DSC against |gap|, each point labelled with its ratio. Infinite SERs
    leave a gap in the line."""
    table = comparison.with_columns(family=pl.coalesce("varies", "experiment"))
    families = table["family"].unique(maintain_order=True).to_list()
    figure, axes = panel_grid(len(families), 3)
    for (gap_axis, ser_axis, trade_axis), family in zip(axes, families, strict=True):
        part = table.filter(pl.col("family") == family)
        for experiment in part["experiment"].unique(maintain_order=True):
            _draw_experiment(gap_axis, ser_axis, trade_axis, part, experiment)
        groups = part.row(0, named=True)
        gap_axis.axhline(0, color="grey", linewidth=0.8)
        gap_axis.set_title(f"{family}: gap, median {groups['group_a']} - {groups['group_b']}")
        gap_axis.set_ylabel("DSC gap")
        ser_axis.axhline(1, color="grey", linewidth=0.8)
        ser_axis.set_title(f"{family}: skewed error ratio")
        for axis in (gap_axis, ser_axis):
            axis.set_xticks(RATIO_TICKS)
            axis.set_xlim(RATIO_TICKS[0] - 5, RATIO_TICKS[-1] + 5)
            axis.set_xlabel(training_ratio_label((groups["group_a"], groups["group_b"])))
        trade_axis.set_title(f"{family}: accuracy vs gap")
        trade_axis.set_xlabel("|DSC gap|")
        trade_axis.set_ylabel("mean DSC, all test subjects")
        for axis in (gap_axis, ser_axis, trade_axis):
            axis.grid(alpha=0.3)
        gap_axis.legend(fontsize=SMALL_FONT, loc="best", framealpha=0.8)
    return figure


def _draw_experiment(
    gap_axis: Axes, ser_axis: Axes, trade_axis: Axes, family: pl.DataFrame, experiment: str
) -> None:
    rows = family.filter(pl.col("experiment") == experiment).sort("ratio")
    first = rows.row(0, named=True)
    baseline = first["varies"] is None
    style = BASELINE_STYLE if baseline else {}
    label = f"{experiment} ({first['strategy']}{', baseline' if baseline else ''})"
    ratios, gaps = rows["ratio"].to_numpy(), rows["gap"].to_numpy()
    ser = rows["skewed_error_ratio"].to_numpy().copy()
    ser[~np.isfinite(ser)] = np.nan
    (line,) = gap_axis.plot(ratios, gaps, marker="o", markersize=4, label=label, **style)
    colour, linestyle = line.get_color(), line.get_linestyle()
    ser_axis.plot(ratios, ser, marker="o", markersize=4, color=colour, linestyle=linestyle)
    trade_axis.plot(
        np.abs(gaps),
        rows["mean_dsc"].to_numpy(),
        marker="o",
        markersize=4,
        linestyle="none",
        color=colour,
    )
    for ratio, gap, dsc in zip(ratios, np.abs(gaps), rows["mean_dsc"], strict=True):
        trade_axis.annotate(
            f"{ratio}",
            (gap, dsc),
            fontsize=SMALL_FONT - 1,
            xytext=(3, 3),
            textcoords="offset points",
            color=colour,
        )
