"""Box plots of a value per group at each training ratio, and significance brackets."""

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from matplotlib.axes import Axes

from cmrbias_dagster.lib.plots.panels import SMALL_FONT, group_colour

BOX_WIDTH = 0.34
BOX_SPACING = 0.4


def ratio_boxes(
    axis: Axes, frame: pl.DataFrame, value: str, groups: Sequence[str]
) -> dict[int, tuple[float, float, float]]:
    """One box per group at each ratio in `frame` (x ticks = ratios); returns, for each ratio where
    the first and last group both have values, (x of first box, x of last box, highest value)."""
    ratios = sorted(frame["ratio"].unique().to_list())
    offsets = [(i - (len(groups) - 1) / 2) * BOX_SPACING for i in range(len(groups))]
    tops: dict[int, dict[int, float]] = {ratio: {} for ratio in ratios}
    for index, group in enumerate(groups):
        values, positions = [], []
        for x, ratio in enumerate(ratios):
            cell = frame.filter((pl.col("ratio") == ratio) & (pl.col("group") == group))
            finite = _finite(cell[value])
            if finite.size:
                values.append(finite)
                positions.append(x + offsets[index])
                tops[ratio][index] = float(finite.max())
        if values:
            _draw_boxes(axis, values, positions, group_colour(index))
    axis.set_xticks(range(len(ratios)), [str(ratio) for ratio in ratios])
    axis.set_xlim(-0.6, max(len(ratios), 1) - 0.4)
    last = len(groups) - 1
    return {
        ratio: (x + offsets[0], x + offsets[last], max(top.values()))
        for x, (ratio, top) in enumerate(tops.items())
        if 0 in top and last in top
    }


def significance_brackets(
    axis: Axes, spans: Mapping[int, tuple[float, float, float]], stars: Mapping[int, str]
) -> None:
    """A bracket labelled with `stars[ratio]` above each ratio's boxes; ratios without stars or
    without both boxes get none. Raises the y limit so every label fits."""
    low, high = axis.get_ylim()
    step = 0.04 * (high - low)
    ceiling = high
    for ratio, (left, right, top) in spans.items():
        if not stars.get(ratio):
            continue
        base, arm = top + step, top + 1.5 * step
        axis.plot([left, left, right, right], [base, arm, arm, base], color="black", lw=0.8)
        axis.text(
            (left + right) / 2, arm, stars[ratio], ha="center", va="bottom", fontsize=SMALL_FONT
        )
        ceiling = max(ceiling, top + 4 * step)
    axis.set_ylim(low, ceiling)


def _draw_boxes(axis: Axes, values: list[np.ndarray], positions: list[float], colour: str) -> None:
    axis.boxplot(
        values,
        positions=positions,
        widths=BOX_WIDTH,
        patch_artist=True,
        manage_ticks=False,
        boxprops={"facecolor": colour, "linewidth": 0.8},
        medianprops={"color": "black", "linewidth": 1.0},
        whiskerprops={"linewidth": 0.8},
        capprops={"linewidth": 0.8},
        flierprops={"marker": ".", "markersize": 3, "markeredgecolor": colour},
    )


def _finite(values: pl.Series) -> np.ndarray:
    array = values.cast(pl.Float64).to_numpy()
    return array[np.isfinite(array)]
