"""Validating one subject's canonical ED/ES images and labels into a manifest row."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmrbias_dagster.lib.cohort.clinical import CLASS_NAMES, clinical_measures
from cmrbias_dagster.lib.cohort.demographics import Demographics
from cmrbias_dagster.lib.cohort.volumes import SubjectError, Volume, load_volume

PHASES = ("ED", "ES")
UKBB_FILES = {
    "image_ed": "sa_ED.nii.gz",
    "image_es": "sa_ES.nii.gz",
    "label_ed": "label_sa_ED.nii.gz",
    "label_es": "label_sa_ES.nii.gz",
}
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
