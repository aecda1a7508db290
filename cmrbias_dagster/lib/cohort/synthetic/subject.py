"""One synthetic subject: anatomy, ED/ES images and labels, from (seed, subject number) alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .anatomy import heart_fields, labels_from_fields, phase_shape, rv_width, sample_volumes
from .appearance import acquire, render_background, render_heart, sample_style
from .demographics import body_surface_area
from .effects import subject_effects
from .spec import CohortSpec

PHASES = ("ED", "ES")
RV_DIRECTION = np.arctan2(-0.35, -0.94)  # image left and a little up: anterior-septal


@dataclass(frozen=True)
class SyntheticSubject:
    """One subject's ED/ES image and label stacks and their voxel-to-mm affine."""

    subject_id: str
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    affine: np.ndarray


def voxel_grid(spec: CohortSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel centres in mm, broadcastable to (matrix, matrix, slices); slice 0 is basal."""
    axis = ((np.arange(spec.matrix) - (spec.matrix - 1) / 2) * spec.pixel_mm).astype(np.float32)
    z = (np.arange(spec.slices) * spec.slice_gap_mm).astype(np.float32)
    return axis[:, None, None], axis[None, :, None], z[None, None, :]


def voxel_affine(spec: CohortSpec) -> np.ndarray:
    """4x4 affine: spacing (pixel, pixel, gap), origin so the image centre is at x = y = 0."""
    affine = np.diag([spec.pixel_mm, spec.pixel_mm, spec.slice_gap_mm, 1.0])
    affine[:2, 3] = -(spec.matrix - 1) / 2 * spec.pixel_mm
    return affine


def generate_subject(row: Mapping, spec: CohortSpec) -> SyntheticSubject:
    """Generate one subject; its randomness depends only on (seed, subject number)."""
    subject_id = str(row["subject_id"])
    rng = np.random.default_rng([spec.seed, int(subject_id.removeprefix("SYN"))])
    effects = subject_effects(spec.effects[row["race"]], rng)
    bsa = body_surface_area(row["height_cm"], row["weight_kg"])
    volumes = sample_volumes(row["sex"], row["age"], bsa, rng)
    # The stack is planned from the ED base: its top edge lies just below the basal slice's top.
    base_z = -spec.slice_gap_mm / 2 - rng.uniform(0.0, 3.0)
    shapes = {p: phase_shape(volumes, p, base_z, effects.wall_thickness_scale) for p in PHASES}
    grid = voxel_grid(spec)
    rv_angle = RV_DIRECTION + rng.normal(0.0, 0.15)
    # Centre the LV-RV pair, not the LV, so the widest crescent stays inside the field of view.
    reach = float(rv_width(shapes["ED"], grid[2]).max(initial=0.0))
    base_centre = -0.5 * reach * np.array([np.cos(rv_angle), np.sin(rv_angle)])
    base_centre = base_centre + rng.normal(0.0, 3.0, 2)
    centre = base_centre[:, None] + rng.normal(0.0, 0.04, 2)[:, None] * grid[2].ravel()[None, :]
    harmonics = np.array(
        [
            [rng.uniform(0, 0.04), 2, rng.uniform(0, 2 * np.pi)],
            [rng.uniform(0, 0.025), 3, rng.uniform(0, 2 * np.pi)],
        ]
    )
    style = sample_style(grid, spec.pixel_mm, rv_angle, rng)
    background = render_background(
        grid, spec.pixel_mm, row["bmi"], effects.subcutaneous_fat_scale, style
    )
    box = _heart_box(grid, centre, max(s.epi_radius for s in shapes.values()) + reach)
    heart_grid = (grid[0][box[0]], grid[1][:, box[1]], grid[2])
    images, labels = {}, {}
    for phase in PHASES:
        fields = heart_fields(shapes[phase], centre, rv_angle, harmonics, heart_grid)
        labels[phase] = np.zeros(background.shape, dtype=np.uint8)
        labels[phase][box] = labels_from_fields(fields)
        image = background.copy()
        image[box] = render_heart(background[box], fields, effects, style, spec.pixel_mm)
        images[phase] = acquire(image, style, rng, spec.scanner)
    return SyntheticSubject(subject_id, images, labels, voxel_affine(spec))


def _heart_box(grid: tuple, centre: np.ndarray, radius_mm: float) -> tuple[slice, slice]:
    # Heart fields are only evaluated in this in-plane box: 5-10x fewer voxels at paper size.
    half = radius_mm + 20.0  # RV wall, epicardial fat, partial-volume margin
    x, y = grid[0].ravel(), grid[1].ravel()
    box = []
    for axis, c in ((x, centre[0]), (y, centre[1])):
        inside = np.flatnonzero((axis >= c.min() - half) & (axis <= c.max() + half))
        box.append(slice(int(inside[0]), int(inside[-1]) + 1))
    return box[0], box[1]
