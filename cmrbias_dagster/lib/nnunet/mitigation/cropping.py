"""Heart-region cropping (Lee et al. 2025; docs/mitigation.md): the in-plane box around a
segmentation's heart, widened by a margin, over every slice of a short-axis volume; training cases
cropped to their labels' box; predictions pasted back into the full image. Axes are the NIfTI
file's: x and y in-plane, the slices third."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrbias_dagster.lib.nnunet.dataset import Case, NnunetEnvironment, write_raw_dataset

CROPPED_FOLDER = "heart_crop"


@dataclass(frozen=True)
class HeartBox:
    """Half-open voxel ranges along the volume's x and y axes (all slices are kept), in an image
    of `image` voxels in-plane."""

    x: tuple[int, int]
    y: tuple[int, int]
    image: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        return self.x[1] - self.x[0], self.y[1] - self.y[0]

    @property
    def area_kept(self) -> float:
        """The fraction of the image's in-plane area inside the box."""
        return self.shape[0] * self.shape[1] / (self.image[0] * self.image[1])


def cropped_environment(env: NnunetEnvironment) -> NnunetEnvironment:
    """nnU-Net's three roots for a partition's cropped dataset and its second-stage models."""
    return NnunetEnvironment(
        env.raw / CROPPED_FOLDER, env.preprocessed / CROPPED_FOLDER, env.results / CROPPED_FOLDER
    )


def heart_box(
    segmentation: np.ndarray, pixel_mm: tuple[float, float], margin_mm: float
) -> HeartBox | None:
    """The box of every labelled voxel of an (x, y, slices) segmentation, widened by `margin_mm`
    on each side (whole voxels, rounded up) and clipped to the image; None without a label."""
    if segmentation.ndim != 3:
        raise ValueError(f"a heart box needs an (x, y, slices) volume, not {segmentation.shape}")
    inplane = np.argwhere(np.any(segmentation > 0, axis=2))
    if not len(inplane):
        return None
    low, high = inplane.min(axis=0), inplane.max(axis=0) + 1
    pad = [math.ceil(margin_mm / spacing - 1e-9) for spacing in pixel_mm]
    ranges = [
        (max(0, int(low[a]) - pad[a]), min(segmentation.shape[a], int(high[a]) + pad[a]))
        for a in (0, 1)
    ]
    return HeartBox(ranges[0], ranges[1], segmentation.shape[:2])


def whole_image_box(shape: tuple[int, ...]) -> HeartBox:
    """The box of the whole image: what a case without a first-stage heart is segmented in."""
    return HeartBox((0, shape[0]), (0, shape[1]), (shape[0], shape[1]))


def labels_inside(segmentation: np.ndarray, box: HeartBox) -> bool:
    """Whether every labelled voxel of the (x, y, slices) segmentation lies in the box."""
    outside = segmentation.copy()
    outside[slice(*box.x), slice(*box.y)] = 0
    return not outside.any()


def crop_volume(image: nib.Nifti1Image, box: HeartBox) -> nib.Nifti1Image:
    """The image within the box, its affine shifted so every kept voxel keeps its position."""
    return image.slicer[slice(*box.x), slice(*box.y)]


def paste_into(shape: tuple[int, ...], cropped: np.ndarray, box: HeartBox) -> np.ndarray:
    """A full (x, y, slices) label volume of `shape`: `cropped` inside the box, background out."""
    full = np.zeros(shape, dtype=cropped.dtype)
    full[slice(*box.x), slice(*box.y)] = cropped
    return full


def crop_training_case(case: Case, image: Path, label: Path, margin_mm: float) -> HeartBox:
    """Write the case's image and labels cropped to its labels' heart box; the box. A label
    volume without a heart, or one whose grid differs from its image's, is refused by name."""
    volume, labels = nib.load(case.image), nib.load(case.label)
    if volume.shape[:3] != labels.shape[:3]:
        raise ValueError(
            f"case {case.case_id}: image {case.image} has shape {volume.shape}, its labels "
            f"{case.label} {labels.shape}: no common grid to crop"
        )
    x_mm, y_mm = (float(z) for z in labels.header.get_zooms()[:2])
    box = heart_box(np.asarray(labels.dataobj), (x_mm, y_mm), margin_mm)
    if box is None:
        raise ValueError(f"case {case.case_id}: labels {case.label} hold no heart to crop around")
    nib.save(crop_volume(volume, box), image)
    nib.save(crop_volume(labels, box), label)
    return box


def write_cropped_dataset(
    cases: Sequence[Case], name: str, env: NnunetEnvironment, margin_mm: float
) -> tuple[Path, dict[str, HeartBox]]:
    """The partition's training cases cropped to their hearts, as the raw dataset `name` of the
    cropped environment (written atomically); the folder and each case's box."""
    boxes: dict[str, HeartBox] = {}

    def write_case(case: Case, image: Path, label: Path) -> None:
        boxes[case.case_id] = crop_training_case(case, image, label, margin_mm)

    folder = write_raw_dataset(cases, name, cropped_environment(env), write_case)
    return folder, boxes


def box_summary(boxes: Mapping[str, HeartBox]) -> dict[str, float]:
    """What the UI shows of a set of boxes: their median size and the image area they keep."""
    widths = [box.shape[0] for box in boxes.values()]
    heights = [box.shape[1] for box in boxes.values()]
    kept = [box.area_kept for box in boxes.values()]
    return {
        "median_box_x": float(np.median(widths)),
        "median_box_y": float(np.median(heights)),
        "median_area_kept": round(float(np.median(kept)), 3),
    }
