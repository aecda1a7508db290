"""Tiny cohorts in the M&Ms-1, M&Ms-2 and ACDC layouts and a UK Biobank export, built from the
toy subject of toy_cohort.py, so their canonical volumes are known by construction."""

import csv
from pathlib import Path

import numpy as np

from cmrbias_dagster.lib.cohort.importers.acdc import reverse_labels
from tests.toy_cohort import SHAPE, toy_labels, write_nifti

FRAMES = 4  # cine frames; ED is frame 0 (ACDC: 1) and ES frame 2 (ACDC: 3)


def toy_image(labels: np.ndarray, seed: int) -> np.ndarray:
    """Intensities brighter inside the heart, with noise."""
    rng = np.random.default_rng(seed)
    return (labels * 100 + rng.normal(200, 20, labels.shape)).astype(np.int16)


def cine(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 4D cine and labels: ED (radius 5) at frame 0, ES (radius 3) at frame 2, others empty."""
    labels = np.zeros((*SHAPE, FRAMES), np.uint8)
    labels[..., 0], labels[..., 2] = toy_labels(5.0), toy_labels(3.0)
    image = np.stack([toy_image(labels[..., t], seed + t) for t in range(FRAMES)], axis=-1)
    return image, labels


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_mnms1_cohort(root: Path, n: int = 4) -> Path:
    """n subjects under Training/Labeled/: vendors A/B and centres 1/2 alternate, sex M,M,F,F."""
    rows = []
    for index in range(n):
        subject_id = f"A{index:01d}B{index:01d}C{index:01d}"
        folder = root / "Training" / "Labeled" / subject_id
        folder.mkdir(parents=True)
        image, labels = cine(index)
        write_nifti(folder / f"{subject_id}_sa.nii.gz", image)
        write_nifti(folder / f"{subject_id}_sa_gt.nii.gz", labels)
        rows.append(
            {
                "External code": subject_id,
                "VendorName": ("Siemens", "Philips")[index % 2],
                "Vendor": "AB"[index % 2],
                "Centre": 1 + index % 2,
                "ED": 0,
                "ES": 2,
                "Age": 40 + index,
                "Sex": "MF"[index // 2 % 2],
            }
        )
    write_csv(root / "mnms_information.csv", rows)
    return root


def write_mnms2_cohort(root: Path, n: int = 4) -> Path:
    """n subjects `001`... with dataset_information.csv (codes 1, 2, ... as M&Ms-2 writes them)."""
    rows = []
    for index in range(n):
        subject_id = f"{index + 1:03d}"
        folder = root / subject_id
        folder.mkdir(parents=True)
        for phase, radius in (("ED", 5.0), ("ES", 3.0)):
            labels = toy_labels(radius)
            write_nifti(folder / f"{subject_id}_SA_{phase}.nii.gz", toy_image(labels, index))
            write_nifti(folder / f"{subject_id}_SA_{phase}_gt.nii.gz", labels)
        rows.append(
            {
                "SUBJECT_CODE": index + 1,
                "DISEASE": ("NOR", "DLV")[index % 2],
                "SEX": "MF"[index % 2],
                "AGE": 50 + index,
                "VENDOR": ("SIEMENS", "GE")[index % 2],
            }
        )
    write_csv(root / "dataset_information.csv", rows)
    return root


def acdc_info(group: str, ed: int = 1, es: int = 3) -> str:
    return f"ED: {ed}\nES: {es}\nGroup: {group}\nHeight: 184.0\nNbFrame: {FRAMES}\nWeight: 95.0\n"


def write_acdc_cohort(root: Path, n: int = 4) -> Path:
    """n subjects `patient001`... under training/, labels in ACDC's reversed convention."""
    for index in range(n):
        subject_id = f"patient{index + 1:03d}"
        folder = root / "training" / subject_id
        folder.mkdir(parents=True)
        for frame, radius in ((1, 5.0), (3, 3.0)):
            labels = toy_labels(radius)
            stem = folder / f"{subject_id}_frame{frame:02d}"
            write_nifti(Path(f"{stem}.nii.gz"), toy_image(labels, index))
            write_nifti(Path(f"{stem}_gt.nii.gz"), reverse_labels(labels))
        (folder / "Info.cfg").write_text(acdc_info(("DCM", "NOR")[index % 2]))
    return root


def ukbb_export_rows(subject_ids: list[str]) -> list[dict[str, object]]:
    """Export rows: sex (31), ethnic background at instances 0, 1 (21000), age, height, weight."""
    codes = ("1001", "4001", "3001", "1002", "4002", "3004")
    return [
        {
            "eid": subject_id,
            "31-0.0": index % 2,
            "21000-0.0": codes[index % len(codes)],
            "21000-1.0": "",
            "21003-2.0": 60 + index,
            "50-2.0": 170,
            "21002-2.0": 80,
        }
        for index, subject_id in enumerate(subject_ids)
    ]
