"""Figure of predicted-minus-truth clinical measures by training ratio and group (Fig. 4)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl
from matplotlib.figure import Figure

from cmrbias_dagster.lib.plots.boxes import ratio_boxes
from cmrbias_dagster.lib.plots.dsc import training_ratio_label
from cmrbias_dagster.lib.plots.panels import add_group_legend, panel_grid


@dataclass(frozen=True)
class ClinicalMeasure:
    """A predicted-minus-truth column, its axis label, and the factor into the label's unit."""

    column: str
    label: str
    scale: float = 1.0


CLINICAL_MEASURES = (
    ClinicalMeasure("lv_esv_ml_diff", "LV ESV error (mL)"),
    ClinicalMeasure("lv_ef_diff", "LV EF error (%-points)", 100.0),
    ClinicalMeasure("rv_esv_ml_diff", "RV ESV error (mL)"),
    ClinicalMeasure("rv_ef_diff", "RV EF error (%-points)", 100.0),
)


def clinical_differences_figure(
    clinical: pl.DataFrame, group_order: Mapping[str, Sequence[str]]
) -> Figure:
    """Fig. 4: rows = measures, columns = experiments; box plots of predicted minus truth per
    group at every training ratio, with a dashed line at zero error."""
    figure, axes = panel_grid(len(CLINICAL_MEASURES), len(group_order))
    for row, measure in enumerate(CLINICAL_MEASURES):
        for column, (experiment, groups) in enumerate(group_order.items()):
            axis = axes[row][column]
            cell = clinical.filter(pl.col("experiment") == experiment).with_columns(
                error=pl.col(measure.column) * measure.scale
            )
            axis.axhline(0.0, color="grey", linestyle="--", linewidth=0.8, zorder=0)
            ratio_boxes(axis, cell, "error", groups)
            axis.set_ylabel(measure.label)
            if row == 0:
                axis.set_title(experiment)
                add_group_legend(axis, list(groups))
            if row == len(CLINICAL_MEASURES) - 1:
                axis.set_xlabel(training_ratio_label(groups))
    return figure
