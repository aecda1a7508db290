"""Figure of the fairness metrics against the training ratio, one line per experiment."""

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from cmrbias_dagster.lib.plots.panels import SMALL_FONT, panel_grid

FAIRNESS_METRICS = {
    "sd_of_group_means": "SD of group mean DSC",
    "skewed_error_ratio": "Skewed error ratio",
    "es_dice": "ES-Dice",
    "parity_gap": "Parity gap (median DSC)",
}
RATIO_TICKS = (0, 25, 50, 75, 100)


def fairness_figure(fairness: pl.DataFrame, group_order: Mapping[str, Sequence[str]]) -> Figure:
    """Four panels, one per fairness metric, each with one line per experiment against the share
    of the experiment's first group in training. Infinite values leave a gap in the line."""
    figure, axes = panel_grid(2, 2)
    panels = [axis for row in axes for axis in row]
    for axis, (metric, title) in zip(panels, FAIRNESS_METRICS.items(), strict=True):
        for experiment, groups in group_order.items():
            part = fairness.filter(pl.col("experiment") == experiment).sort("ratio")
            values = part[metric].cast(pl.Float64).to_numpy().copy()
            values[~np.isfinite(values)] = np.nan
            label = f"{experiment} (% {groups[0]})"
            axis.plot(part["ratio"].to_numpy(), values, marker="o", markersize=4, label=label)
        axis.set_title(title)
        axis.set_xticks(RATIO_TICKS)
        axis.set_xlim(RATIO_TICKS[0] - 5, RATIO_TICKS[-1] + 5)
        axis.set_xlabel("% first group in training")
        axis.grid(alpha=0.3)
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=max(len(labels), 1),
        fontsize=SMALL_FONT + 1,
    )
    return figure
