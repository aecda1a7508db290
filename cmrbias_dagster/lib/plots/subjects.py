"""Pictures of subjects: a short-axis slice with its label overlay, as PNG bytes."""

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import nibabel as nib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from cmrbias_dagster.lib.nnunet.dataset import Case  # noqa: E402

LABEL_COLOURS = ListedColormap(
    [(0, 0, 0, 0), (0.9, 0.2, 0.2, 0.45), (0.2, 0.8, 0.3, 0.45), (0.2, 0.4, 0.95, 0.45)]
)


def mid_labelled_slice(labels: np.ndarray) -> int:
    """Index of the middle slice among those that hold any label (the middle slice if none)."""
    labelled = np.flatnonzero(labels.reshape(-1, labels.shape[2]).any(axis=0))
    return int(labelled[len(labelled) // 2]) if len(labelled) else labels.shape[2] // 2


def overlay_png(panels: list[tuple[str, np.ndarray, np.ndarray]]) -> bytes:
    """PNG of mid short-axis slices, one column per (title, image, labels): image above, image
    with labels overlaid below."""
    figure, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 5.4), squeeze=False)
    for column, (title, image, labels) in enumerate(panels):
        z = mid_labelled_slice(labels)
        for row in (0, 1):
            axis = axes[row][column]
            axis.imshow(image[:, :, z].T, cmap="gray", origin="lower")
            if row:
                axis.imshow(
                    labels[:, :, z].T,
                    cmap=LABEL_COLOURS,
                    vmin=0,
                    vmax=3,
                    origin="lower",
                    interpolation="nearest",
                )
            axis.axis("off")
        axes[0][column].set_title(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown that embeds a PNG inline, which the Dagster UI renders in asset metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def sample_attribute(manifest: pl.DataFrame) -> str:
    """The attribute the cohort's sample slices are grouped by: race, else the first other
    attribute the layout fills (vendor, pathology), else sex."""
    for name in ("race", "vendor", "pathology", "sex"):
        if name in manifest.columns and manifest[name].drop_nulls().len():
            return name
    return "subject_id"


def sample_overlay_png(manifest: pl.DataFrame, attribute: str = "race") -> bytes:
    """Mid ED slice with labels for the first subject of each group of `attribute`."""
    panels = []
    for row in (
        manifest.sort("subject_id")
        .unique(attribute, keep="first")
        .sort(attribute)
        .iter_rows(named=True)
    ):
        image = np.asanyarray(nib.load(row["image_ed"]).dataobj)
        labels = np.asanyarray(nib.load(row["label_ed"]).dataobj)
        described = ", ".join(str(v) for v in (row[attribute], row.get("sex")) if v is not None)
        panels.append((f"{row['subject_id']} ({described})", image, labels))
    return overlay_png(panels)


def prediction_overlay_png(cases: Sequence[Case], folder: Path) -> bytes:
    """Mid slices of a few cases: the image, and the image with the prediction in `folder`."""
    panels = [
        (
            case.case_id,
            np.asanyarray(nib.load(case.image).dataobj),
            np.asanyarray(nib.load(folder / f"{case.case_id}.nii.gz").dataobj),
        )
        for case in cases
    ]
    return overlay_png(panels)
