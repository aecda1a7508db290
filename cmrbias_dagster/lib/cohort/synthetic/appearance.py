"""Image formation: bSSFP-like signals, chest background, partial volume, coil bias, noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .anatomy import HeartFields
from .effects import GroupEffects
from .spec import NO_SHIFT, ScannerShift

Grid = tuple[np.ndarray, np.ndarray, np.ndarray]

# Signal relative to LV blood in a bSSFP cine: bright blood and fat, grey muscle, dark lung.
TISSUE_SIGNAL = {
    "blood": 1.0,
    "rv_blood": 0.95,
    "myocardium": 0.28,
    "fat": 0.85,
    "lung": 0.06,
    "muscle": 0.32,
    "mediastinum": 0.4,
    "liver": 0.42,
    "aorta": 0.9,
    "spine": 0.22,
}
RV_WALL_MM = 3.0


@dataclass(frozen=True)
class SubjectStyle:
    """Per-subject appearance drawn once and shared by ED and ES."""

    signal: dict[str, float]
    papillary_angles: tuple[float, float]
    trabecula_pattern: tuple[int, float, float]  # finger count, phase, length modulation phase
    fat_patch_phase: float
    texture: np.ndarray  # smooth tissue texture times coil sensitivity, around 1
    noise_sd: float
    scale: float


def ramp(distance_mm: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Fraction of a voxel inside a boundary at signed distance `distance_mm` (partial volume)."""
    return np.clip(0.5 + distance_mm / pixel_mm, 0.0, 1.0)


def paint(image: np.ndarray, alpha: np.ndarray, value: float) -> np.ndarray:
    """Blend a tissue of signal `value` over `image` with per-voxel coverage `alpha`."""
    return image + alpha * (value - image)


def smooth_noise(shape: tuple[int, ...], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-SD in-plane-smooth Gaussian random field, independent per slice."""
    field = gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), (sigma_px, sigma_px, 0), mode="wrap"
    )
    return field / max(float(field.std()), 1e-9)


def sample_style(
    grid: Grid, pixel_mm: float, rv_angle: float, rng: np.random.Generator
) -> SubjectStyle:
    """Draw tissue signals, papillary positions, texture, coil bias and noise for one subject."""
    signal = {name: value * rng.normal(1.0, 0.05) for name, value in TISSUE_SIGNAL.items()}
    signal["myocardium"] = rng.uniform(0.24, 0.32)
    lateral = rv_angle + np.pi
    papillary = (lateral - 0.9 + rng.normal(0, 0.2), lateral + 0.9 + rng.normal(0, 0.2))
    trabecula = (int(rng.integers(14, 21)), rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi))
    x, y, _ = grid
    shape = (x.shape[0], y.shape[1], grid[2].shape[2])
    texture = 1 + 0.06 * smooth_noise(shape, 3.0 / pixel_mm, rng)
    gx, gy, curve = rng.normal(0, 0.15), rng.normal(0, 0.15), rng.uniform(-0.3, 0.0)
    bias = np.exp(gx * x / 100 + gy * y / 100 + curve * ((x / 100) ** 2 + (y / 100) ** 2))
    bias = bias * rng.normal(1.0, 0.03, shape[2])  # slice-to-slice intensity steps
    return SubjectStyle(
        signal=signal,
        papillary_angles=papillary,
        trabecula_pattern=trabecula,
        fat_patch_phase=rng.uniform(0, 2 * np.pi),
        texture=(texture * bias).astype(np.float32),
        noise_sd=rng.uniform(0.02, 0.045),
        scale=rng.uniform(750, 900),
    )


def _ellipse_depth(
    x: np.ndarray, y: np.ndarray, centre: tuple[float, float], axes: tuple
) -> np.ndarray:
    # Distance inside an ellipse along the ray from its centre: positive inside, mm.
    dx, dy = x - centre[0], y - centre[1]
    q = np.maximum(np.hypot(dx / axes[0], dy / axes[1]), 1e-6)
    return np.hypot(dx, dy) * (1 / q - 1)


def render_background(
    grid: Grid, pixel_mm: float, bmi: float, subcutaneous_fat_scale: float, style: SubjectStyle
) -> np.ndarray:
    """Chest around the heart: skin fat and muscle, lungs, liver toward the apex, aorta, spine."""
    x, y, z = grid
    s = style.signal
    habitus = np.sqrt(bmi / 26.5)
    body = _ellipse_depth(x, y, (0.0, 35.0), (160 * habitus, 105 * habitus))
    fat_mm = 12.0 * bmi / 26.5 * subcutaneous_fat_scale
    image = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape))
    image = paint(image, ramp(body, pixel_mm), s["fat"])
    image = paint(image, ramp(body - fat_mm, pixel_mm), s["muscle"])
    image = paint(image, ramp(body - fat_mm - 10.0, pixel_mm), s["mediastinum"])
    for centre, axes in (((80.0, 10.0), (50.0, 80.0)), ((-95.0, 10.0), (45.0, 80.0))):
        image = paint(image, ramp(_ellipse_depth(x, y, centre, axes), pixel_mm), s["lung"])
    liver = _ellipse_depth(x, y + 0.9 * z, (-30.0, 130.0), (95.0, 55.0))
    image = paint(image, ramp(liver, pixel_mm), s["liver"])
    image = paint(image, ramp(11.0 - np.hypot(x - 30.0, y - 70.0), pixel_mm), s["aorta"])
    return paint(image, ramp(18.0 - np.hypot(x - 5.0, y - 100.0), pixel_mm), s["spine"])


def render_heart(
    background: np.ndarray,
    fields: HeartFields,
    effects: GroupEffects,
    style: SubjectStyle,
    pixel_mm: float,
) -> np.ndarray:
    """Paint fat, RV wall and blood, LV myocardium, LV blood, papillary muscles and trabeculae."""
    s, f = style.signal, fields
    myocardium = s["myocardium"] + effects.myocardium_intensity
    rv_depth = f.rv_outer - (f.rho + f.d_epi)
    wall_outer = f.rv_outer + RV_WALL_MM * np.clip(rv_depth / 4.0, 0, 1)
    image = background
    fat = min(effects.epicardial_fat, 1.0)
    if fat > 0:
        patch = 0.75 + 0.25 * np.cos(3 * f.phi - style.fat_patch_phase)
        alpha = ramp(wall_outer + (1.5 + 3.0 * fat) * patch - f.rho, pixel_mm) * min(1.5 * fat, 1)
        image = paint(image, alpha * (wall_outer > 0), s["fat"])
    image = paint(image, ramp(wall_outer - f.rho, pixel_mm) * (wall_outer > 0), myocardium)
    # Scaling by the crescent depth keeps the zero-width tips from painting half-voxels of blood.
    rv_alpha = ramp(f.d_rv, pixel_mm) * np.clip(rv_depth / pixel_mm, 0, 1)
    image = paint(image, rv_alpha, s["rv_blood"])
    image = paint(image, ramp(f.d_epi, pixel_mm), myocardium)
    image = paint(image, ramp(f.d_endo, pixel_mm), s["blood"])
    mid = (f.lv_t > 0.2) & (f.lv_t < 0.8)
    for angle in style.papillary_angles:
        offset = 0.55 * f.endo_radius
        distance = np.sqrt(
            np.maximum(f.rho**2 + offset**2 - 2 * f.rho * offset * np.cos(f.phi - angle), 0)
        )
        image = paint(image, ramp(0.18 * f.endo_radius - distance, pixel_mm) * mid, myocardium)
    if effects.trabeculation > 0:
        count, phase, length_phase = style.trabecula_pattern
        fingers = np.clip(
            (np.cos(count * f.phi + phase + 0.8 * np.sin(5 * f.phi)) - 0.2) / 0.5, 0, 1
        )
        depth = (2.0 + 5.0 * effects.trabeculation) * (0.6 + 0.4 * np.cos(7 * f.phi + length_phase))
        inside = ramp(f.d_endo, pixel_mm) * np.clip(1 - f.d_endo / depth, 0, 1) * (f.lv_t < 0.9)
        image = paint(image, min(1.2 * effects.trabeculation, 1) * fingers * inside, myocardium)
    return image


def acquire(
    image: np.ndarray,
    style: SubjectStyle,
    rng: np.random.Generator,
    scanner: ScannerShift = NO_SHIFT,
) -> np.ndarray:
    """Texture, coil bias, slight blur, the scanner's contrast, Rician noise (its SD times the
    scanner's `noise_scale`); scaled to ~0..1000 and stored as int16."""
    signal = gaussian_filter(image * style.texture, (0.5, 0.5, 0))
    if scanner.contrast_gamma != 1.0:
        signal = np.power(np.maximum(signal, 0.0), scanner.contrast_gamma)
    noise_sd = np.float32(style.noise_sd * scanner.noise_scale)
    real = rng.standard_normal(signal.shape, dtype=np.float32) * noise_sd
    imaginary = rng.standard_normal(signal.shape, dtype=np.float32) * noise_sd
    noisy = np.hypot(signal + real, imaginary)
    return np.clip(np.round(noisy * style.scale), 0, np.iinfo(np.int16).max).astype(np.int16)
