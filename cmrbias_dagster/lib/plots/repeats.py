"""Figure of repeated draws (`repeat_summary`): per base experiment, each group's median DSC over
the repeats against the training ratio, the between-repeat range as error bars, and the verdict."""

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cmrbias_dagster.lib.analysis.two_level import ONE_DRAW
from cmrbias_dagster.lib.plots.dsc import training_ratio_label
from cmrbias_dagster.lib.plots.fairness import RATIO_TICKS
from cmrbias_dagster.lib.plots.panels import SMALL_FONT, group_colour, panel_grid

COLUMNS = 3
# Each group's points are shifted this far along the ratio axis so their bars do not overlap.
DODGE = 1.5
VERDICT_COLOURS = {"established": "black", "not established": "#b03030"}


def repeat_figure(summary: pl.DataFrame, repeats: int) -> Figure:
    """A panel per base experiment of the `repeat_summary` table: each group's median over the
    `repeats` draws of the per-repeat median overall DSC against the ratio, min-max error bars,
    and each ratio's verdict above its points. With one draw: no bars, no verdicts, and the
    title says so."""
    bases = summary["experiment"].unique(maintain_order=True).to_list()
    rows = -(-len(bases) // COLUMNS)
    figure, axes = panel_grid(rows, min(len(bases), COLUMNS))
    panels = [axis for row in axes for axis in row]
    for axis, base in zip(panels, bases, strict=False):
        _draw_experiment(axis, summary.filter(pl.col("experiment") == base).sort("ratio"))
    for axis in panels[len(bases) :]:
        axis.set_visible(False)
    figure.suptitle(
        f"Median over {repeats} draws of each draw's median overall DSC; bars: min-max over draws"
        if repeats > 1
        else "One draw per experiment: no spread over draws to show (repeats: 1)",
        fontsize=SMALL_FONT + 2,
    )
    return figure


def error_bars(rows: pl.DataFrame, side: str) -> np.ndarray | None:
    """The (below, above) distances from the median to the min and max over repeats, for
    `errorbar`'s yerr; None when no ratio has a spread (one repeat)."""
    low, high = rows[f"min_{side}"], rows[f"max_{side}"]
    if low.is_null().all():
        return None
    median = rows[f"median_{side}"].to_numpy()
    below = median - low.cast(pl.Float64).fill_null(np.nan).to_numpy()
    above = high.cast(pl.Float64).fill_null(np.nan).to_numpy() - median
    return np.vstack([below, above])


def _draw_experiment(axis: Axes, rows: pl.DataFrame) -> None:
    first = rows.row(0, named=True)
    groups = (first["group_a"], first["group_b"])
    ratios = rows["ratio"].to_numpy()
    for index, (side, group) in enumerate(zip("ab", groups, strict=True)):
        axis.errorbar(
            ratios + (index - 0.5) * 2 * DODGE,
            rows[f"median_{side}"].to_numpy(),
            yerr=error_bars(rows, side),
            marker="o",
            markersize=4,
            capsize=3,
            color=group_colour(index),
            label=group,
        )
    tops = np.fmax(
        rows["max_a"].fill_null(rows["median_a"]).to_numpy(),
        rows["max_b"].fill_null(rows["median_b"]).to_numpy(),
    )
    for ratio, top, verdict in zip(ratios, tops, rows["verdict"], strict=True):
        if ONE_DRAW in verdict:
            continue
        axis.annotate(
            verdict.replace(" ", "\n", 1),
            (ratio, top),
            xytext=(0, 6),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=SMALL_FONT - 1,
            color=VERDICT_COLOURS.get(verdict, "#3060b0"),
        )
    axis.margins(y=0.3)
    axis.set_title(f"{first['experiment']}: {groups[0]} vs {groups[1]}")
    axis.set_xticks(RATIO_TICKS)
    axis.set_xlim(RATIO_TICKS[0] - 8, RATIO_TICKS[-1] + 8)
    axis.set_xlabel(training_ratio_label(groups))
    axis.set_ylabel("median overall DSC")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=SMALL_FONT, loc="best", framealpha=0.8)
