"""Validating one subject folder in the UK Biobank layout into a manifest row."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrbias_dagster.lib.clinical import CLASS_NAMES, clinical_measures
from cmrbias_dagster.lib.demographics import Demographics

PHASES = ("ED", "ES")
UKBB_FILES = {
    "image_ed": "sa_ED.nii.gz",
    "image_es": "sa_ES.nii.gz",
    "label_ed": "label_sa_ED.nii.gz",
    "label_es": "label_sa_ES.nii.gz",
}
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SubjectError(ValueError):
    """One subject cannot be used; names the subject, the file and the cause."""

    def __init__(self, subject_id: str, file: str, reason: str):
        super().__init__(f"subject {subject_id}: {file}: {reason}")
        self.subject_id, self.file, self.reason = subject_id, file, reason


@dataclass(frozen=True)
class Volume:
    data: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]


def load_volume(subject_id: str, path: Path) -> Volume:
    """Read a 3D NIfTI volume, raising SubjectError when it is absent or unreadable."""
    if not path.is_file():
        raise SubjectError(subject_id, path.name, "file is missing")
    try:
        image = nib.load(path)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for corrupt files
        raise SubjectError(subject_id, path.name, f"cannot be read ({error})") from error
    if data.ndim != 3:
        raise SubjectError(subject_id, path.name, f"expected a 3D volume, found shape {data.shape}")
    spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
    if not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise SubjectError(subject_id, path.name, f"voxel spacing {spacing} is not positive")
    return Volume(data, image.affine, spacing)


def check_label(subject_id: str, file: str, labels: np.ndarray) -> np.ndarray:
    """Labels as uint8, after checking they are whole numbers within {0,1,2,3}."""
    values = np.unique(labels)
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise SubjectError(subject_id, file, "label values are not whole numbers")
    unknown = sorted(set(values.astype(np.int64).tolist()) - {0, *CLASS_NAMES})
    if unknown:
        raise SubjectError(subject_id, file, f"unknown label value(s) {unknown}; expected 0-3")
    return labels.astype(np.uint8)


def check_same_grid(subject_id: str, file: str, volume: Volume, reference: Volume) -> None:
    """Raise when a volume's shape or affine differs from the subject's ED image."""
    if volume.data.shape != reference.data.shape:
        raise SubjectError(
            subject_id, file, f"shape {volume.data.shape} differs from sa_ED {reference.data.shape}"
        )
    if not np.allclose(volume.affine, reference.affine, atol=1e-3):
        raise SubjectError(subject_id, file, "affine differs from sa_ED.nii.gz")


def labelled_slices_contiguous(labels: np.ndarray) -> bool:
    """True when the slices holding any label form one unbroken run."""
    labelled = np.flatnonzero(labels.reshape(-1, labels.shape[2]).any(axis=0))
    return len(labelled) > 0 and labelled[-1] - labelled[0] + 1 == len(labelled)


def content_hash(paths: list[Path], demographics: Demographics) -> str:
    """SHA-256 over the subject's files and demographics: changes whenever either does."""
    digest = hashlib.sha256(repr(demographics).encode())
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def validate_subject(folder: Path, demographics: Demographics) -> dict[str, object]:
    """One manifest row for a subject folder, or SubjectError naming the file and cause."""
    subject_id = demographics.subject_id
    paths = {key: folder / name for key, name in UKBB_FILES.items()}
    volumes = {key: load_volume(subject_id, path) for key, path in paths.items()}
    reference = volumes["image_ed"]
    for key, volume in volumes.items():
        check_same_grid(subject_id, UKBB_FILES[key], volume, reference)
    for key in ("image_ed", "image_es"):
        if not np.all(np.isfinite(volumes[key].data)):
            raise SubjectError(subject_id, UKBB_FILES[key], "image has NaN or infinite intensities")
    labels = {
        p: check_label(
            subject_id, UKBB_FILES[f"label_{p.lower()}"], volumes[f"label_{p.lower()}"].data
        )
        for p in PHASES
    }
    present = set(np.unique(labels["ED"]).tolist()) & set(np.unique(labels["ES"]).tolist())
    missing = [CLASS_NAMES[c] for c in CLASS_NAMES if c not in present]
    nx, ny, nz = reference.data.shape
    sx, sy, sz = reference.spacing
    return {
        "subject_id": subject_id,
        "sex": demographics.sex,
        "race": demographics.race,
        "age": demographics.age,
        "height_cm": demographics.height_cm,
        "weight_kg": demographics.weight_kg,
        "bmi": demographics.bmi,
        **{key: str(path.resolve()) for key, path in paths.items()},
        "nx": nx,
        "ny": ny,
        "nz": nz,
        "spacing_x": sx,
        "spacing_y": sy,
        "spacing_z": sz,
        **clinical_measures(labels["ED"], labels["ES"], reference.spacing),
        "missing_classes": ",".join(missing),
        "labelled_slices_contiguous": all(labelled_slices_contiguous(x) for x in labels.values()),
        "content_hash": content_hash(list(paths.values()), demographics),
    }
