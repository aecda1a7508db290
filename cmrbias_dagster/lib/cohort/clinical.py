"""Clinical measures from label maps, as the ukbb_cardiac pipeline computes them."""

from collections.abc import Sequence

import numpy as np

LVBP, LVM, RVBP = 1, 2, 3
CLASS_NAMES: dict[int, str] = {LVBP: "LVBP", LVM: "LVM", RVBP: "RVBP"}
# The three structures' names in label order, as tables, figures and nnU-Net's logs list them.
STRUCTURES: tuple[str, ...] = tuple(CLASS_NAMES.values())
MYOCARDIUM_DENSITY_G_PER_ML = 1.05


def voxel_volume_ml(spacing_mm: Sequence[float]) -> float:
    """Volume of one voxel in millilitres (product of the three spacings x 1e-3)."""
    return float(np.prod(spacing_mm[:3])) * 1e-3


def class_volumes_ml(labels: np.ndarray, spacing_mm: Sequence[float]) -> dict[int, float]:
    """Volume in mL of each class 1..3, from voxel counts."""
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=4)
    voxel_ml = voxel_volume_ml(spacing_mm)
    return {label: float(counts[label]) * voxel_ml for label in CLASS_NAMES}


def ejection_fraction(edv_ml: float, esv_ml: float) -> float:
    """(EDV - ESV) / EDV as a fraction; NaN when EDV is zero."""
    return (edv_ml - esv_ml) / edv_ml if edv_ml > 0 else float("nan")


def clinical_measures(
    ed_labels: np.ndarray, es_labels: np.ndarray, spacing_mm: Sequence[float]
) -> dict[str, float]:
    """LV and RV EDV, ESV, EF and LV mass (ED myocardium volume x 1.05 g/mL)."""
    ed = class_volumes_ml(ed_labels, spacing_mm)
    es = class_volumes_ml(es_labels, spacing_mm)
    return {
        "lv_edv_ml": ed[LVBP],
        "lv_esv_ml": es[LVBP],
        "lv_ef": ejection_fraction(ed[LVBP], es[LVBP]),
        "lv_mass_g": ed[LVM] * MYOCARDIUM_DENSITY_G_PER_ML,
        "rv_edv_ml": ed[RVBP],
        "rv_esv_ml": es[RVBP],
        "rv_ef": ejection_fraction(ed[RVBP], es[RVBP]),
    }
