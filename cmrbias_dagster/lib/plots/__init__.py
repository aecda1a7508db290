"""Stage 6, plots: the paper's figures and supplementary ones as matplotlib Figures and PNG bytes,
pictures of subjects (slices with label overlays), and `figure_names`, the one table of the
figures' file names. May import `design`, `cohort`, `nnunet` (case paths), `evaluation` and
`analysis`.
"""

from cmrbias_dagster.lib.plots import figure_names
from cmrbias_dagster.lib.plots.boundary import boundary_by_ratio_figure
from cmrbias_dagster.lib.plots.calibration import reliability_figure
from cmrbias_dagster.lib.plots.characteristics import cohort_distributions_figure
from cmrbias_dagster.lib.plots.clinical import clinical_differences_figure
from cmrbias_dagster.lib.plots.dsc import dsc_by_class_figure, dsc_by_ratio_figure
from cmrbias_dagster.lib.plots.fairness import fairness_figure
from cmrbias_dagster.lib.plots.mitigation import mitigation_figure
from cmrbias_dagster.lib.plots.panels import figure_png
from cmrbias_dagster.lib.plots.qualitative import (
    QualitativeCase,
    pick_best_median_worst,
    qualitative_figure,
)
from cmrbias_dagster.lib.plots.repeats import repeat_figure

__all__ = [
    "QualitativeCase",
    "boundary_by_ratio_figure",
    "clinical_differences_figure",
    "cohort_distributions_figure",
    "dsc_by_class_figure",
    "dsc_by_ratio_figure",
    "fairness_figure",
    "figure_names",
    "figure_png",
    "mitigation_figure",
    "pick_best_median_worst",
    "qualitative_figure",
    "repeat_figure",
    "reliability_figure",
]
