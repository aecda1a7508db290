"""Evaluating predicted label maps against the truth: per-class metrics and clinical measures.

The per-subject overall DSC, used for the paper's Table 2 and figures, is the mean of the three
classes' DSC (LVBP, LVM, RVBP) over both phases (ED, ES): six values per subject.
"""

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import polars as pl

from cmrbias_dagster.lib.cohort.clinical import CLASS_NAMES, clinical_measures
from cmrbias_dagster.lib.cohort.validation import PHASES
from cmrbias_dagster.lib.evaluation.metrics import segmentation_metrics

ATTRIBUTES = ("subject_id", "sex", "race")
CLINICAL = ("lv_edv_ml", "lv_esv_ml", "lv_ef", "lv_mass_g", "rv_edv_ml", "rv_esv_ml", "rv_ef")


def prediction_path(folder: Path, subject_id: str, phase: str) -> Path:
    """Where the ensemble's prediction of one case lies."""
    return folder / f"{subject_id}_{phase}.nii.gz"


def load_labels(path: Path) -> np.ndarray:
    """A label map as uint8 (x, y, z)."""
    return np.asanyarray(nib.load(path).dataobj).astype(np.uint8)


def case_metrics(subjects: pl.DataFrame, manifest: pl.DataFrame, folder: Path) -> pl.DataFrame:
    """One row per subject x phase x class: DSC, HD95, ASSD (mm), predicted and true volume (mL)."""
    rows = []
    for row in subjects.select("subject_id").join(manifest, on="subject_id").iter_rows(named=True):
        spacing = (row["spacing_x"], row["spacing_y"], row["spacing_z"])
        for phase in PHASES:
            predicted = load_labels(prediction_path(folder, row["subject_id"], phase))
            truth = load_labels(Path(row[f"label_{phase.lower()}"]))
            for m in segmentation_metrics(predicted, truth, spacing):
                rows.append(
                    {
                        "subject_id": row["subject_id"],
                        "phase": phase,
                        "class": CLASS_NAMES[m.label],
                        "dice": m.dice,
                        "hd95_mm": m.hd95_mm,
                        "assd_mm": m.assd_mm,
                        "predicted_ml": m.predicted_ml,
                        "true_ml": m.true_ml,
                        "distances_defined": m.distances_defined,
                    }
                )
    return pl.DataFrame(rows)


def clinical_differences(
    subjects: pl.DataFrame, manifest: pl.DataFrame, folder: Path
) -> pl.DataFrame:
    """One row per subject: predicted and true LV/RV EDV, ESV, EF and LV mass, predicted minus
    truth (`*_diff`) and relative difference (`*_rel_diff`, a fraction of the truth)."""
    rows = []
    for row in subjects.select("subject_id").join(manifest, on="subject_id").iter_rows(named=True):
        spacing = (row["spacing_x"], row["spacing_y"], row["spacing_z"])
        ed, es = (load_labels(prediction_path(folder, row["subject_id"], p)) for p in PHASES)
        predicted = clinical_measures(ed, es, spacing)
        measures: dict[str, object] = {"subject_id": row["subject_id"]}
        for name in CLINICAL:
            truth = row[name]
            measures[f"{name}_pred"], measures[f"{name}_true"] = predicted[name], truth
            measures[f"{name}_diff"] = predicted[name] - truth
            measures[f"{name}_rel_diff"] = (predicted[name] - truth) / truth if truth else np.nan
        rows.append(measures)
    return pl.DataFrame(rows)


def subject_overall_dsc(metrics: pl.DataFrame) -> pl.DataFrame:
    """Per subject: the mean DSC over the three classes and two phases."""
    return metrics.group_by("subject_id").agg(overall_dsc=pl.col("dice").mean()).sort("subject_id")


def median_dsc_by_group(
    metrics: pl.DataFrame, by: Sequence[str] = ("group", "class")
) -> pl.DataFrame:
    """Median DSC per group and class (metrics joined with the test set's `group`)."""
    return metrics.group_by(*by).agg(median_dsc=pl.col("dice").median(), n=pl.len()).sort(*by)


def prediction_problems(subjects: pl.DataFrame, manifest: pl.DataFrame, folder: Path) -> list[str]:
    """Missing predictions, or ones whose grid differs from the image or whose labels leave 0..3."""
    problems = []
    for row in subjects.select("subject_id").join(manifest, on="subject_id").iter_rows(named=True):
        for phase in PHASES:
            path = prediction_path(folder, row["subject_id"], phase)
            if not path.is_file():
                problems.append(f"{path.name}: missing")
                continue
            predicted, image = nib.load(path), nib.load(row[f"image_{phase.lower()}"])
            if predicted.shape != image.shape or not np.allclose(
                predicted.affine, image.affine, atol=1e-3
            ):
                problems.append(f"{path.name}: shape or affine differs from the image")
            elif not set(np.unique(np.asanyarray(predicted.dataobj)).tolist()) <= {0, 1, 2, 3}:
                problems.append(f"{path.name}: labels outside 0-3")
    return problems
