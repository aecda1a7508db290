"""Figure of the cohort's body measures by race and by sex (the distributions behind Table 1)."""

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cmrbias_dagster.lib.plots.panels import group_colour, panel_grid

BODY_MEASURES = {
    "age": "Age (years)",
    "height_cm": "Height (cm)",
    "weight_kg": "Weight (kg)",
    "bmi": "BMI (kg/m²)",
}
ATTRIBUTES = ("race", "sex")


def cohort_distributions_figure(manifest: pl.DataFrame) -> Figure:
    """Violin plots of age, height, weight and BMI (columns) by race and by sex (rows), with
    each group's subject count under its name."""
    figure, axes = panel_grid(len(ATTRIBUTES), len(BODY_MEASURES), (3.2, 2.8))
    for row, attribute in enumerate(ATTRIBUTES):
        groups = sorted(manifest[attribute].drop_nulls().unique().to_list())
        for column, (measure, label) in enumerate(BODY_MEASURES.items()):
            axis = axes[row][column]
            _violins(axis, manifest, attribute, groups, measure)
            axis.set_title(f"{label} by {attribute}", fontsize=10)
    return figure


def _violins(
    axis: Axes, manifest: pl.DataFrame, attribute: str, groups: list[str], measure: str
) -> None:
    tick_labels = []
    for index, group in enumerate(groups):
        values = manifest.filter(pl.col(attribute) == group)[measure].cast(pl.Float64).to_numpy()
        values = values[np.isfinite(values)]
        tick_labels.append(f"{group}\n(n={values.size})")
        if np.unique(values).size >= 2:
            parts = axis.violinplot(values, positions=[index], widths=0.8, showmedians=True)
            for body in parts["bodies"]:
                body.set_facecolor(group_colour(index))
                body.set_alpha(0.6)
            for name in ("cbars", "cmins", "cmaxes", "cmedians"):
                parts[name].set_color("black")
                parts[name].set_linewidth(0.8)
        elif values.size:
            axis.plot(np.full(values.size, index), values, "o", color=group_colour(index))
    axis.set_xticks(range(len(groups)), tick_labels)
    axis.set_xlim(-0.6, max(len(groups), 1) - 0.4)
