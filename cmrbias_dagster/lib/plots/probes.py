"""The image probe's saliency: per experiment, each group's mean Grad-CAM map over its held-out
slices, with the outline of where its slices' hearts lie (half of them labelled)."""

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from cmrbias_dagster.lib.plots.panels import SMALL_FONT, panel_grid
from cmrbias_dagster.lib.probes.saliency import GroupSaliency


def saliency_figure(by_experiment: Mapping[str, Sequence[GroupSaliency]]) -> Figure:
    """One row per experiment, one panel per group: the mean saliency (one colour scale per
    row) and the mean heart mask's 0.5 contour."""
    if not by_experiment:
        raise ValueError("no experiment's saliency to draw")
    figure, axes = panel_grid(len(by_experiment), 2, (3.2, 3.0))
    for row, (experiment, groups) in zip(axes, by_experiment.items(), strict=True):
        top = max(float(group.saliency.max()) for group in groups) or 1.0
        for axis, group in zip(row, groups, strict=True):
            shown = axis.imshow(group.saliency.T, cmap="magma", vmin=0, vmax=top, origin="lower")
            axis.contour(group.heart.T, levels=[0.5], colors="cyan", linewidths=1.0)
            axis.set_title(f"{experiment}: {group.group} ({group.slices} slices)", fontsize=9)
            axis.set_xticks([])
            axis.set_yticks([])
        figure.colorbar(shown, ax=row, shrink=0.8).ax.tick_params(labelsize=SMALL_FONT)
    return figure
