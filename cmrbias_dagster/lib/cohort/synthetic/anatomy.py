"""Heart anatomy: chamber volumes from body size, sex and age, and the label stack they make."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LV_EDV_INDEX = {"female": 72.0, "male": 82.0}  # mL/m^2
LV_MASS_INDEX = {"female": 42.0, "male": 53.0}  # g/m^2, Petersen et al. 2017
LV_MASS_SD = 0.17  # log-normal SD matching Petersen's spread, 42 +- 7 and 53 +- 9 g/m^2
VOLUME_SD = 0.10  # log-normal SD of the EDV indices
RV_EDV_INDEX = {"female": 76.0, "male": 90.0}  # mL/m^2
LV_EF = {"female": 0.61, "male": 0.58}
RV_EF = {"female": 0.58, "male": 0.55}
EF_SD = 0.05
VOLUME_LOSS_PER_YEAR = 0.004  # relative to age 60
MYO_DENSITY = 1.05  # g/mL

LV_PROFILE_POWER = 2.5  # radius ~ sqrt(1 - t^p) from base (t=0) to apex (t=1)
RV_PROFILE_POWER = 2.0  # RV area ~ 1 - t^p, tapering faster than the LV
LV_LENGTH_150ML = 92.0  # mm, ED cavity length of a 150 mL LV
ES_LONG_AXIS_SHORTENING = 0.12  # the base descends toward a fixed apex
RV_LENGTH_FRACTION = 0.72  # RV stops short of the LV apex
RV_HALF_SPAN = 1.5  # rad: the crescent wraps +-86 degrees around the septum


def _crescent(u: np.ndarray) -> np.ndarray:
    """RV crescent width profile over the normalised angle u in [-1, 1]."""
    return np.cos(np.pi / 2 * np.clip(np.abs(u), 0, 1)) ** 0.7


_U = np.linspace(-1, 1, 2001)
CRESCENT_H1 = RV_HALF_SPAN * float(np.trapezoid(_crescent(_U), _U))
CRESCENT_H2 = RV_HALF_SPAN * float(np.trapezoid(_crescent(_U) ** 2, _U))


@dataclass(frozen=True)
class CardiacVolumes:
    """Ground-truth chamber volumes of one subject (mL)."""

    lv_edv_ml: float
    lv_esv_ml: float
    myo_ml: float
    rv_edv_ml: float
    rv_esv_ml: float


@dataclass(frozen=True)
class ChamberShape:
    """Geometry of one cardiac phase (mm): profile radii and lengths measured from the base."""

    lv_radius: float
    lv_length: float
    epi_radius: float
    epi_length: float
    rv_area: float
    rv_length: float
    base_z: float


@dataclass(frozen=True)
class HeartFields:
    """Per-voxel geometry of one phase; signed distances in mm, positive inside."""

    rho: np.ndarray
    phi: np.ndarray  # angle from the LV centre
    endo_radius: np.ndarray  # unmodulated endocardial radius per slice, shape (1, 1, slices)
    lv_t: np.ndarray  # base-to-apex position per slice, 0 at base, 1 at apex
    d_endo: np.ndarray
    d_epi: np.ndarray
    d_rv: np.ndarray
    rv_outer: np.ndarray
    rv_window: np.ndarray


def sample_volumes(sex: str, age: float, bsa: float, rng: np.random.Generator) -> CardiacVolumes:
    """Draw LV/RV volumes and LV myocardial volume scaled by BSA, sex and age."""
    age_factor = 1.0 - VOLUME_LOSS_PER_YEAR * (age - 60.0)
    lv_edv = LV_EDV_INDEX[sex] * bsa * age_factor * rng.lognormal(0.0, VOLUME_SD)
    rv_edv = RV_EDV_INDEX[sex] * bsa * age_factor * rng.lognormal(0.0, VOLUME_SD)
    myo = LV_MASS_INDEX[sex] * bsa * rng.lognormal(0.0, LV_MASS_SD) / MYO_DENSITY
    lv_ef = float(np.clip(rng.normal(LV_EF[sex], EF_SD), 0.45, 0.75))
    rv_ef = float(np.clip(rng.normal(RV_EF[sex], EF_SD), 0.42, 0.72))
    return CardiacVolumes(lv_edv, lv_edv * (1 - lv_ef), myo, rv_edv, rv_edv * (1 - rv_ef))


def _epicardium(radius: float, length: float, myo_ml: float, scale: float) -> tuple[float, float]:
    # Same profile family as the cavity; the apical wall is as thick as the basal one.
    fill = math.pi * LV_PROFILE_POWER / (LV_PROFILE_POWER + 1)
    thickness = 7.0
    for _ in range(5):
        epi_length = length + thickness
        epi_radius = math.sqrt((myo_ml * 1000 / fill + radius**2 * length) / epi_length)
        thickness = epi_radius - radius
    return radius + thickness * scale, length + thickness * scale


def phase_shape(
    volumes: CardiacVolumes, phase: str, base_z: float, wall_thickness_scale: float = 1.0
) -> ChamberShape:
    """Geometry of the ED or ES phase; the myocardial volume is the same in both."""
    ed_length = LV_LENGTH_150ML * (volumes.lv_edv_ml / 150.0) ** (1 / 3)
    shortening = ES_LONG_AXIS_SHORTENING if phase == "ES" else 0.0
    length = ed_length * (1 - shortening)
    lv_ml, rv_ml = (
        (volumes.lv_esv_ml, volumes.rv_esv_ml)
        if phase == "ES"
        else (volumes.lv_edv_ml, volumes.rv_edv_ml)
    )
    radius = math.sqrt(
        lv_ml * 1000 / (math.pi * length * LV_PROFILE_POWER / (LV_PROFILE_POWER + 1))
    )
    epi_radius, epi_length = _epicardium(radius, length, volumes.myo_ml, wall_thickness_scale)
    rv_length = RV_LENGTH_FRACTION * length
    rv_area = rv_ml * 1000 / (rv_length * RV_PROFILE_POWER / (RV_PROFILE_POWER + 1))
    base = base_z + ed_length * shortening
    return ChamberShape(radius, length, epi_radius, epi_length, rv_area, rv_length, base)


def _profile(z: np.ndarray, base: float, length: float, power: float) -> np.ndarray:
    t = (z - base) / length
    return np.where((t >= 0) & (t < 1), 1 - np.clip(t, 0, 1) ** power, 0.0)


def rv_width(shape: ChamberShape, z: np.ndarray) -> np.ndarray:
    """Crescent width (mm) at the septal midline that gives each slice its RV area."""
    epi = shape.epi_radius * np.sqrt(_profile(z, shape.base_z, shape.epi_length, LV_PROFILE_POWER))
    area = shape.rv_area * _profile(z, shape.base_z, shape.rv_length, RV_PROFILE_POWER)
    return (
        np.sqrt((epi * CRESCENT_H1) ** 2 + 2 * CRESCENT_H2 * area) - epi * CRESCENT_H1
    ) / CRESCENT_H2


def heart_fields(
    shape: ChamberShape,
    centre: np.ndarray,
    rv_angle: float,
    harmonics: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> HeartFields:
    """Distance fields of the LV cavity, LV epicardium and RV crescent on the voxel grid.

    `centre` holds the LV centre per slice (2, slices); `harmonics` rows are (amplitude, order,
    phase) of smooth out-of-round deformations shared by endo- and epicardium.
    """
    x, y, z = grid
    dx, dy = x - centre[0], y - centre[1]
    rho, phi = np.hypot(dx, dy), np.arctan2(dy, dx)
    wobble = 1 + sum(a * np.cos(k * phi - p) for a, k, p in harmonics)
    endo = shape.lv_radius * np.sqrt(_profile(z, shape.base_z, shape.lv_length, LV_PROFILE_POWER))
    epi = shape.epi_radius * np.sqrt(_profile(z, shape.base_z, shape.epi_length, LV_PROFILE_POWER))
    window = _crescent(np.angle(np.exp(1j * (phi - rv_angle))) / RV_HALF_SPAN)
    epi_field = epi * wobble
    rv_outer = epi_field + rv_width(shape, z) * window
    return HeartFields(
        rho=rho,
        phi=phi,
        endo_radius=endo,
        lv_t=(z - shape.base_z) / shape.lv_length,
        d_endo=endo * wobble - rho,
        d_epi=epi_field - rho,
        d_rv=np.minimum(rho - epi_field, rv_outer - rho),
        rv_outer=rv_outer,
        rv_window=window,
    )


def labels_from_fields(fields: HeartFields) -> np.ndarray:
    """Label stack at voxel centres: 0 background, 1 LV blood pool, 2 LV myocardium, 3 RV."""
    labels = np.zeros(fields.rho.shape, dtype=np.uint8)
    labels[fields.d_epi > 0] = 2
    labels[fields.d_endo > 0] = 1
    labels[fields.d_rv > 0] = 3
    return labels
