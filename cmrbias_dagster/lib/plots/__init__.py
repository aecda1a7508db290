"""Figures of the study's results as matplotlib Figures, and their PNG bytes."""

from cmrbias_dagster.lib.plots.clinical import clinical_differences_figure
from cmrbias_dagster.lib.plots.cohort import cohort_distributions_figure
from cmrbias_dagster.lib.plots.dsc import dsc_by_class_figure, dsc_by_ratio_figure
from cmrbias_dagster.lib.plots.fairness import fairness_figure
from cmrbias_dagster.lib.plots.panels import figure_png
from cmrbias_dagster.lib.plots.qualitative import (
    QualitativeCase,
    pick_best_median_worst,
    qualitative_figure,
)

__all__ = [
    "QualitativeCase",
    "clinical_differences_figure",
    "cohort_distributions_figure",
    "dsc_by_class_figure",
    "dsc_by_ratio_figure",
    "fairness_figure",
    "figure_png",
    "pick_best_median_worst",
    "qualitative_figure",
]
