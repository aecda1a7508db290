"""Validating one subject's canonical ED/ES images and labels into a manifest row."""

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
class SubjectFiles:
    """A subject's four canonical files (keys of UKBB_FILES) and what errors call each: the
    user's own file, which differs from the canonical one when an importer converted it."""

    paths: dict[str, Path]
    shown: dict[str, str]

    @classmethod
    def in_place(cls, paths: dict[str, Path]) -> "SubjectFiles":
        """Files used as they are, shown by their own names."""
        return cls(paths, {key: path.name for key, path in paths.items()})


@dataclass(frozen=True)
class Volume:
    data: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]


def read_nifti(subject_id: str, path: Path, shown: str = "") -> tuple[nib.Nifti1Image, np.ndarray]:
    """A NIfTI image and its data, or SubjectError when the file is absent or unreadable."""
    shown = shown or path.name
    if not path.is_file():
        raise SubjectError(subject_id, shown, "file is missing")
    try:
        image = nib.load(path)
        return image, np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for corrupt or truncated files
        raise SubjectError(subject_id, shown, f"cannot be read ({error})") from error


def load_volume(subject_id: str, path: Path, shown: str = "") -> Volume:
    """Read a 3D NIfTI volume with positive spacing, or raise SubjectError naming the cause."""
    shown = shown or path.name
    image, data = read_nifti(subject_id, path, shown)
    if data.ndim != 3:
        raise SubjectError(subject_id, shown, f"expected a 3D volume, found shape {data.shape}")
    spacing = tuple(float(z) for z in image.header["pixdim"][1:4])
    # nibabel silently turns a zero pixdim into 1, so the affine's column lengths are the check.
    from_affine = tuple(float(n) for n in np.linalg.norm(image.affine[:3, :3], axis=0))
    if not all(np.isfinite(from_affine)) or min(from_affine) <= 0 or min(spacing) <= 0:
        raise SubjectError(subject_id, shown, f"voxel spacing {from_affine} is not positive")
    if not np.allclose(spacing, from_affine, rtol=1e-3):
        raise SubjectError(
            subject_id,
            shown,
            f"voxel spacing in the header {_rounded(spacing)} differs from the affine's "
            f"{_rounded(from_affine)} (a zero or corrupt pixdim)",
        )
    return Volume(data, image.affine, spacing)


def _rounded(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(value, 4) for value in values)


def check_label(subject_id: str, file: str, labels: np.ndarray) -> np.ndarray:
    """Labels as uint8, after checking they are whole numbers within {0,1,2,3} and not empty."""
    values = np.unique(labels)
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise SubjectError(subject_id, file, "label values are not whole numbers")
    unknown = sorted(set(values.astype(np.int64).tolist()) - {0, *CLASS_NAMES})
    if unknown:
        raise SubjectError(subject_id, file, f"unknown label value(s) {unknown}; expected 0-3")
    if not values.any():
        raise SubjectError(subject_id, file, "label map is empty (no class labelled)")
    return labels.astype(np.uint8)


def check_same_grid(
    subject_id: str, file: str, volume: Volume, reference: Volume, ref: str
) -> None:
    """Raise when a volume's shape or affine differs from the subject's ED image `ref`."""
    if volume.data.shape != reference.data.shape:
        raise SubjectError(
            subject_id, file, f"shape {volume.data.shape} differs from {ref} {reference.data.shape}"
        )
    if not np.allclose(volume.affine, reference.affine, atol=1e-3):
        raise SubjectError(subject_id, file, f"affine differs from {ref}")


def labelled_slices_contiguous(labels: np.ndarray) -> bool:
    """True when the slices holding any label form one unbroken run."""
    labelled = np.flatnonzero(labels.reshape(-1, labels.shape[2]).any(axis=0))
    return len(labelled) > 0 and labelled[-1] - labelled[0] + 1 == len(labelled)


def missing_classes(labels: dict[str, np.ndarray]) -> str:
    """Classes absent from a phase, e.g. 'LVM (ES), RVBP (ED+ES)'; empty when none is."""
    gaps = []
    for label, name in CLASS_NAMES.items():
        phases = [phase for phase, data in labels.items() if not np.any(data == label)]
        if phases:
            gaps.append(f"{name} ({'+'.join(phases)})")
    return ", ".join(gaps)


def content_hash(paths: list[Path], demographics: Demographics) -> str:
    """SHA-256 over the subject's files and demographics: changes whenever either does."""
    digest = hashlib.sha256(repr(demographics).encode())
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def validate_subject(files: SubjectFiles, demographics: Demographics) -> dict[str, object]:
    """One manifest row for a subject's canonical files, or SubjectError naming file and cause."""
    subject_id, shown = demographics.subject_id, files.shown
    volumes = {key: load_volume(subject_id, path, shown[key]) for key, path in files.paths.items()}
    reference = volumes["image_ed"]
    for key, volume in volumes.items():
        check_same_grid(subject_id, shown[key], volume, reference, shown["image_ed"])
    for key in ("image_ed", "image_es"):
        if not np.all(np.isfinite(volumes[key].data)):
            raise SubjectError(subject_id, shown[key], "image has NaN or infinite intensities")
    labels = {
        phase: check_label(subject_id, shown[key], volumes[key].data)
        for phase, key in zip(PHASES, ("label_ed", "label_es"), strict=True)
    }
    nx, ny, nz = reference.data.shape
    sx, sy, sz = reference.spacing
    return {
        "subject_id": subject_id,
        **demographics.columns(),
        **{key: str(path.resolve()) for key, path in files.paths.items()},
        "nx": nx,
        "ny": ny,
        "nz": nz,
        "spacing_x": sx,
        "spacing_y": sy,
        "spacing_z": sz,
        **clinical_measures(labels["ED"], labels["ES"], reference.spacing),
        "missing_classes": missing_classes(labels),
        "labelled_slices_contiguous": all(labelled_slices_contiguous(x) for x in labels.values()),
        "content_hash": content_hash(list(files.paths.values()), demographics),
    }
