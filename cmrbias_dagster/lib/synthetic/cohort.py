"""The synthetic cohort: its spec, per-subject generation and its UK Biobank-style layout."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path

import nibabel as nib
import numpy as np
import polars as pl

from .anatomy import heart_fields, labels_from_fields, phase_shape, rv_width, sample_volumes
from .appearance import acquire, render_background, render_heart, sample_style
from .demographics import RACES, SEXES, body_surface_area, sample_group
from .effects import GroupEffects, effects_from_mapping, subject_effects

GENERATOR_VERSION = "1"
PHASES = ("ED", "ES")
DEMOGRAPHIC_COLUMNS = ("subject_id", "sex", "race", "age", "height_cm", "weight_kg", "bmi")
SUBJECT_FILES = ("sa_ED.nii.gz", "sa_ES.nii.gz", "label_sa_ED.nii.gz", "label_sa_ES.nii.gz")
MIN_FIELD_OF_VIEW_MM = 120.0  # the largest hearts span ~110 mm across LV and RV
RV_DIRECTION = np.arctan2(-0.35, -0.94)  # image left and a little up: anterior-septal


@dataclass(frozen=True)
class CohortSpec:
    """What to generate: group counts, image grid and planted effects."""

    subjects: dict[str, dict[str, int]]
    matrix: int
    pixel_mm: float
    slices: int
    slice_gap_mm: float
    seed: int
    effects: dict[str, GroupEffects]

    @classmethod
    def from_mapping(cls, mapping: Mapping, seed: int) -> CohortSpec:
        """Build from a study profile's `synthetic_cohort` block; ValueError names the bad field."""
        subjects = mapping.get("subjects")
        if not isinstance(subjects, Mapping) or not subjects:
            raise ValueError("synthetic_cohort.subjects must map race -> {female: n, male: n}")
        counts: dict[str, dict[str, int]] = {}
        for race, by_sex in subjects.items():
            if race not in RACES:
                raise ValueError(f"synthetic_cohort.subjects: unknown race {race!r}; known {RACES}")
            if not isinstance(by_sex, Mapping) or set(by_sex) - set(SEXES):
                raise ValueError(f"synthetic_cohort.subjects.{race} must map {SEXES} to counts")
            for sex, n in by_sex.items():
                if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                    raise ValueError(f"synthetic_cohort.subjects.{race}.{sex}={n!r} is not a count")
            counts[race] = {sex: int(by_sex.get(sex, 0)) for sex in SEXES}
        spec = cls(
            subjects=counts,
            matrix=_number(mapping, "matrix", int, 16),
            pixel_mm=_number(mapping, "pixel_mm", float, 0.1),
            slices=_number(mapping, "slices", int, 1),
            slice_gap_mm=_number(mapping, "slice_gap_mm", float, 0.1),
            seed=int(seed),
            effects=effects_from_mapping(mapping.get("effects"), tuple(counts)),
        )
        if spec.matrix * spec.pixel_mm < MIN_FIELD_OF_VIEW_MM:
            raise ValueError(
                f"synthetic_cohort: field of view {spec.matrix} x {spec.pixel_mm} mm is under "
                f"{MIN_FIELD_OF_VIEW_MM} mm and would clip the heart"
            )
        return spec

    def summary(self) -> dict:
        """JSON-ready description written to COHORT.json."""
        fields = asdict(self)
        fields["effects"] = {race: asdict(e) for race, e in self.effects.items()}
        return {"generator_version": GENERATOR_VERSION, **fields}


def _number(mapping: Mapping, key: str, kind: type, minimum: float) -> int | float:
    value = mapping.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ValueError(f"synthetic_cohort.{key}={value!r}: need a {kind.__name__} >= {minimum}")
    if kind is int and value != int(value):
        raise ValueError(f"synthetic_cohort.{key}={value!r} must be an integer")
    return kind(value)


@dataclass(frozen=True)
class SyntheticSubject:
    """One subject's ED/ES image and label stacks and their voxel-to-mm affine."""

    subject_id: str
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    affine: np.ndarray


def sample_demographics(spec: CohortSpec) -> pl.DataFrame:
    """Demographics of every subject, ids SYN00001.. in a seeded shuffle of the groups."""
    rng = np.random.default_rng([spec.seed, 0])
    parts = [
        pl.DataFrame({"sex": sex, "race": race, **sample_group(race, sex, n, rng)})
        for race, by_sex in spec.subjects.items()
        for sex, n in by_sex.items()
        if n > 0
    ]
    table = pl.concat(parts)
    ids = [f"SYN{i + 1:05d}" for i in rng.permutation(table.height)]
    return (
        table.with_columns(subject_id=pl.Series(ids)).select(DEMOGRAPHIC_COLUMNS).sort("subject_id")
    )


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
        images[phase] = acquire(image, style, rng)
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


def _write_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm", "sec")
    image.header.set_data_dtype(array.dtype)
    nib.save(image, path)


def cohort_is_complete(out_dir: Path) -> bool:
    """True when COHORT.json, demographics.csv and every subject's four files exist."""
    if not (out_dir / "COHORT.json").is_file() or not (out_dir / "demographics.csv").is_file():
        return False
    ids = pl.read_csv(out_dir / "demographics.csv")["subject_id"]
    return all((out_dir / sid / name).is_file() for sid in ids for name in SUBJECT_FILES)


def _write_subject(row: Mapping, spec: CohortSpec, folder: Path) -> None:
    subject = generate_subject(row, spec)
    (folder / subject.subject_id).mkdir()
    for phase in PHASES:
        for prefix, arrays in (("sa", subject.images), ("label_sa", subject.labels)):
            path = folder / subject.subject_id / f"{prefix}_{phase}.nii.gz"
            _write_nifti(arrays[phase], subject.affine, path)


def write_cohort(spec: CohortSpec, out_dir: Path, workers: int = 1) -> Path:
    """Write the cohort to `out_dir` atomically (temporary sibling, then rename).

    `workers` > 1 generates subjects in that many processes; the result is identical.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        demographics = sample_demographics(spec)
        rows = demographics.to_dicts()
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_write_subject, rows, repeat(spec), repeat(tmp), chunksize=8))
        else:
            for row in rows:
                _write_subject(row, spec, tmp)
        demographics.write_csv(tmp / "demographics.csv")
        (tmp / "COHORT.json").write_text(json.dumps(spec.summary(), indent=2) + "\n")
        if out_dir.exists():
            old = out_dir.with_name(f"{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
