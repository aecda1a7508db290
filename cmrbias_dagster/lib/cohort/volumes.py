"""Reading NIfTI volumes of one subject, with errors that name the subject, file and cause."""

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np


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
