"""Reliability diagrams of the ensemble's probabilities by group: one figure per experiment, one
panel per training ratio (docs/study.md, "Calibration and uncertainty")."""

from collections.abc import Sequence

import polars as pl
from matplotlib.figure import Figure

from cmrbias_dagster.lib.analysis.calibration import reliability_curve
from cmrbias_dagster.lib.evaluation.calibration import OVERALL
from cmrbias_dagster.lib.plots.panels import SMALL_FONT, group_colour, panel_grid


def reliability_figure(cases: pl.DataFrame, groups: Sequence[str]) -> Figure:
    """One experiment's `overall` (top-label) reliability diagram at each evaluated ratio: per
    group, mean outcome against mean confidence in each bin pooled over its test cases, the
    pooled ECE in the legend; the diagonal is perfect calibration."""
    overall = cases.filter(pl.col("class") == OVERALL)
    ratios = sorted(overall["ratio"].unique().to_list())
    if not ratios:
        raise ValueError("no calibration rows of class 'overall' to draw")
    figure, axes = panel_grid(1, len(ratios))
    for axis, ratio in zip(axes[0], ratios, strict=True):
        axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        for index, group in enumerate(groups):
            part = overall.filter((pl.col("ratio") == ratio) & (pl.col("group") == group))
            if part.is_empty():
                continue
            curve = reliability_curve(part)
            gaps = (curve["outcome"] - curve["confidence"]).abs() * curve["voxels"]
            ece = gaps.sum() / curve["voxels"].sum()
            axis.plot(
                curve["confidence"].to_numpy(),
                curve["outcome"].to_numpy(),
                marker="o",
                markersize=3,
                color=group_colour(index),
                label=f"{group} (ECE {ece:.3f})",
            )
        axis.set_title(f"{ratio} % {groups[0]} in training")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("confidence (band around the heart)")
        axis.set_ylabel("accuracy")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=SMALL_FONT, loc="upper left")
    return figure
