"""Tiny hand-built cohorts in the UK Biobank layout, with volumes known by construction."""

import csv
from pathlib import Path

import nibabel as nib
import numpy as np

SPACING = (2.0, 2.0, 8.0)
SHAPE = (24, 24, 4)
FILES = ("sa_ED.nii.gz", "sa_ES.nii.gz", "label_sa_ED.nii.gz", "label_sa_ES.nii.gz")


def toy_labels(lv_radius: float) -> np.ndarray:
    """LV disc, a 2-voxel myocardial ring and an RV disc beside it, on slices 0-2 of 4."""
    x, y = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    distance = np.hypot(x - 12, y - 12)
    plane = np.zeros(SHAPE[:2], np.uint8)
    plane[np.hypot(x - 12, y - 4) <= 3] = 3
    plane[distance <= lv_radius + 2] = 2
    plane[distance <= lv_radius] = 1
    labels = np.zeros(SHAPE, np.uint8)
    labels[:, :, :3] = plane[:, :, None]
    return labels


def write_nifti(path: Path, data: np.ndarray, spacing=SPACING) -> None:
    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), path)


def write_toy_subject(root: Path, subject_id: str, seed: int = 0) -> Path:
    """Write one subject: ED LV radius 5, ES radius 3."""
    folder = root / subject_id
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for phase, radius in (("ED", 5.0), ("ES", 3.0)):
        labels = toy_labels(radius)
        image = (labels * 100 + rng.normal(200, 20, SHAPE)).astype(np.int16)
        write_nifti(folder / f"sa_{phase}.nii.gz", image)
        write_nifti(folder / f"label_sa_{phase}.nii.gz", labels)
    return folder


def write_toy_cohort(root: Path, rows: list[dict[str, object]]) -> Path:
    """A cohort folder with one toy subject per demographics row plus demographics.csv."""
    root.mkdir(parents=True, exist_ok=True)
    for index, row in enumerate(rows):
        write_toy_subject(root, str(row["subject_id"]), seed=index)
    with open(root / "demographics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def demographics_rows(n_per_group: int = 2) -> list[dict[str, object]]:
    """Rows for n subjects of each race x sex, with plausible numbers."""
    rows = []
    for race in ("white", "black", "asian"):
        for sex in ("female", "male"):
            for _ in range(n_per_group):
                number = len(rows) + 1
                rows.append(
                    {
                        "subject_id": f"TOY{number:03d}",
                        "sex": sex,
                        "race": race,
                        "age": 60 + number % 7,
                        "height_cm": 160 + number % 13,
                        "weight_kg": 70 + number % 11,
                    }
                )
    return rows
