"""Qualitative figure of segmentations, and the choice of which subjects it shows."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cmrbias_dagster.lib.plots.panels import panel_grid
from cmrbias_dagster.lib.plots.subjects import LABEL_COLOURS, mid_labelled_slice

QUALITATIVE_COLUMNS = ("image", "truth", "prediction")


@dataclass(frozen=True)
class QualitativeCase:
    """A row of the qualitative figure: a 3-D (x, y, z) image, its true and predicted labels."""

    title: str
    image: np.ndarray
    truth: np.ndarray
    prediction: np.ndarray


def qualitative_figure(rows: Sequence[QualitativeCase]) -> Figure:
    """One row per case: the image, the truth overlay and the prediction overlay, all on the
    middle slice among those the truth labels."""
    figure, axes = panel_grid(len(rows), len(QUALITATIVE_COLUMNS), (2.4, 2.4))
    for row, case in enumerate(rows):
        z = mid_labelled_slice(case.truth)
        for axis, labels in zip(axes[row], (None, case.truth, case.prediction), strict=True):
            _slice_panel(axis, case.image[:, :, z], None if labels is None else labels[:, :, z])
        axes[row][0].set_ylabel(case.title, fontsize=9)
    for axis, title in zip(axes[0], QUALITATIVE_COLUMNS, strict=True):
        axis.set_title(title)
    return figure


def pick_best_median_worst(scores: pl.DataFrame) -> pl.DataFrame:
    """Per group, the subjects with the highest, the lower-median and the lowest DSC, marked by a
    `rank` column ("best", "median", "worst"). Equal DSC are ordered by subject id."""
    ranked = (
        scores.filter(pl.col("dsc").is_not_null() & pl.col("dsc").is_not_nan())
        .sort("group", "dsc", "subject_id")
        .with_columns(position=pl.int_range(pl.len()).over("group"), size=pl.len().over("group"))
    )
    positions = {
        "best": pl.col("size") - 1,
        "median": (pl.col("size") - 1) // 2,
        "worst": pl.lit(0),
    }
    picks = [
        ranked.filter(pl.col("position") == position).with_columns(rank=pl.lit(rank))
        for rank, position in positions.items()
    ]
    return pl.concat(picks).sort("group", maintain_order=True).drop("position", "size")


def _slice_panel(axis: Axes, image: np.ndarray, labels: np.ndarray | None) -> None:
    axis.imshow(image.T, cmap="gray", origin="lower")
    if labels is not None:
        axis.imshow(
            labels.T, cmap=LABEL_COLOURS, vmin=0, vmax=3, origin="lower", interpolation="nearest"
        )
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)
