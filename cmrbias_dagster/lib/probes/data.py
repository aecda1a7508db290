"""The probes' inputs: every labelled short-axis slice of each subject's ED and ES images and
ground-truth masks, resampled to a square grid, with the subject each slice belongs to."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import polars as pl
from scipy.ndimage import zoom

PHASES = ("ed", "es")
CLASSES = (1, 2, 3)  # LVBP, LVM, RVBP: the mask probe's one-hot channels


class ProbeDataError(ValueError):
    """A subject whose files cannot feed the probes (no labelled slice, mismatched grids)."""


@dataclass(frozen=True)
class ProbeSlices:
    """Slices of an experiment's subjects: `labels[i]` is 1 when subject i is in the experiment's
    first group; `subject_of_slice[j]` indexes slice j's subject."""

    subject_ids: tuple[str, ...]
    labels: np.ndarray  # (subjects,) int
    images: np.ndarray  # (slices, size, size) float32, z-scored per subject and phase
    masks: np.ndarray  # (slices, size, size) uint8 class labels
    subject_of_slice: np.ndarray  # (slices,) int

    @property
    def slice_labels(self) -> np.ndarray:
        """Each slice's subject label."""
        return self.labels[self.subject_of_slice]

    def one_hot_masks(self) -> np.ndarray:
        """The masks as (slices, classes, size, size) float32 channels, one per foreground class."""
        return np.stack([self.masks == c for c in CLASSES], axis=1).astype(np.float32)


def resample_square(plane: np.ndarray, size: int, order: int) -> np.ndarray:
    """A 2D plane resampled to size x size (order 0 for labels, 1 for images)."""
    factors = (size / plane.shape[0], size / plane.shape[1])
    resampled = zoom(plane, factors, order=order, grid_mode=True, mode="nearest")
    return resampled[:size, :size]


def labelled_slices(image_path: Path, label_path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The slices of one phase with any labelled voxel: images z-scored over the phase's volume,
    both resampled to size x size; ProbeDataError naming the file when none is labelled."""
    image = np.asarray(nib.load(image_path).dataobj, dtype=np.float32)
    label = np.asarray(nib.load(label_path).dataobj).astype(np.uint8)
    if image.shape != label.shape:
        raise ProbeDataError(f"{image_path}: image {image.shape} and label {label.shape} differ")
    kept = np.flatnonzero(label.reshape(-1, label.shape[-1]).any(axis=0))
    if kept.size == 0:
        raise ProbeDataError(f"{label_path}: no labelled slice")
    image = (image - image.mean()) / max(float(image.std()), 1e-6)
    images = np.stack([resample_square(image[..., z], size, 1) for z in kept])
    masks = np.stack([resample_square(label[..., z], size, 0) for z in kept])
    return images.astype(np.float32), masks.astype(np.uint8)


def probe_slices(
    subjects: pl.DataFrame, manifest: pl.DataFrame, groups: Sequence[str], size: int
) -> ProbeSlices:
    """The labelled ED and ES slices of `subjects` (columns subject_id, group), label 1 for
    `groups[0]`, with file paths from the manifest (image_ed, label_ed, image_es, label_es)."""
    located = subjects.select("subject_id", "group").join(manifest, on="subject_id", how="left")
    unknown = located.filter(pl.col("image_ed").is_null())["subject_id"].to_list()
    if unknown:
        raise ProbeDataError(f"subjects not in the manifest: {', '.join(unknown[:10])}")
    ids, labels, images, masks, owners = [], [], [], [], []
    for index, row in enumerate(located.sort("subject_id").iter_rows(named=True)):
        ids.append(row["subject_id"])
        labels.append(int(row["group"] == groups[0]))
        for phase in PHASES:
            phase_images, phase_masks = labelled_slices(
                Path(row[f"image_{phase}"]), Path(row[f"label_{phase}"]), size
            )
            images.append(phase_images)
            masks.append(phase_masks)
            owners.append(np.full(len(phase_images), index))
    return ProbeSlices(
        tuple(ids),
        np.asarray(labels),
        np.concatenate(images),
        np.concatenate(masks),
        np.concatenate(owners),
    )
