"""Shared figure plumbing: a grid of panels sized to stay legible, group colours, PNG output."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

GROUP_COLOURS = ("#e08a2c", "#3a7dc9", "#5aa55a", "#a05ab4")
SMALL_FONT = 8
PANEL_SIZE = (4.2, 3.4)


def panel_grid(
    rows: int, columns: int, panel_size: tuple[float, float] = PANEL_SIZE
) -> tuple[Figure, list[list[Axes]]]:
    """A figure of rows x columns panels, each `panel_size` inches, laid out without overlaps."""
    if rows < 1 or columns < 1:
        raise ValueError(f"a figure needs at least one panel, got {rows} x {columns}")
    figure = Figure(figsize=(panel_size[0] * columns, panel_size[1] * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, [list(row) for row in axes]


def group_colour(index: int) -> str:
    """Colour of the `index`-th group of an experiment, the same in every figure."""
    return GROUP_COLOURS[index % len(GROUP_COLOURS)]


def add_group_legend(axis: Axes, groups: list[str]) -> None:
    """Legend naming each group by its box colour."""
    handles = [Patch(facecolor=group_colour(i), label=group) for i, group in enumerate(groups)]
    axis.legend(handles=handles, fontsize=SMALL_FONT, loc="best", framealpha=0.8)


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes at `dpi`; the figure is closed afterwards."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()
