"""Demographics drawn per race x sex group to approximate the paper's Table 1
(docs/reference_numbers.md)."""

from __future__ import annotations

import math

import numpy as np

RACES = ("white", "black", "asian")
SEXES = ("female", "male")

# Table 1 means by race; sex moves each mean by (sex mean - overall mean).
RACE_MEANS = {
    "white": {"age": 64.8, "height_cm": 169.8, "bmi": 26.6},
    "black": {"age": 58.9, "height_cm": 168.7, "bmi": 28.6},
    "asian": {"age": 60.6, "height_cm": 165.9, "bmi": 25.8},
}
SEX_SHIFTS = {
    "female": {"age": -0.4, "height_cm": -6.5, "bmi": -0.2},
    "male": {"age": 0.4, "height_cm": 6.3, "bmi": 0.3},
}
# Within race x sex SDs: Table 1 race SDs less the sex shift; BMI SD follows sex (4.8 / 3.6).
GROUP_SDS = {"age": 7.5, "height_cm": 6.6}
BMI_SDS = {"female": 4.8, "male": 3.6}
RANGES = {"age": (40.0, 82.0), "height_cm": (140.0, 205.0), "bmi": (16.0, 50.0)}


def group_mean(race: str, sex: str, measure: str) -> float:
    """Target mean of `measure` (age, height_cm or bmi) for one race x sex group."""
    return RACE_MEANS[race][measure] + SEX_SHIFTS[sex][measure]


def _truncated_normal(
    rng: np.random.Generator, mean: float, sd: float, bounds: tuple[float, float], n: int
) -> np.ndarray:
    # Redraw out-of-range values instead of clipping, so no mass piles up on the bounds.
    values = rng.normal(mean, sd, n)
    while (bad := (values < bounds[0]) | (values > bounds[1])).any():
        values[bad] = rng.normal(mean, sd, int(bad.sum()))
    return values


def sample_group(race: str, sex: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw age, height, weight and BMI for `n` subjects of one group.

    BMI is log-normal (right-skewed like the population); weight = BMI x height^2, so weight
    inherits Table 1's race and sex ordering; BMI is then recomputed from the rounded values.
    """
    age = _truncated_normal(rng, group_mean(race, sex, "age"), GROUP_SDS["age"], RANGES["age"], n)
    height = _truncated_normal(
        rng, group_mean(race, sex, "height_cm"), GROUP_SDS["height_cm"], RANGES["height_cm"], n
    )
    bmi_mean, bmi_sd = group_mean(race, sex, "bmi"), BMI_SDS[sex]
    sigma = math.sqrt(math.log1p((bmi_sd / bmi_mean) ** 2))
    log_bmi = _truncated_normal(
        rng,
        math.log(bmi_mean) - sigma**2 / 2,
        sigma,
        (math.log(RANGES["bmi"][0]), math.log(RANGES["bmi"][1])),
        n,
    )
    height = np.round(height, 1)
    weight = np.round(np.exp(log_bmi) * (height / 100) ** 2, 1)
    return {
        "age": np.round(age, 1),
        "height_cm": height,
        "weight_kg": weight,
        "bmi": np.round(weight / (height / 100) ** 2, 1),
    }


def body_surface_area(height_cm: float, weight_kg: float) -> float:
    """Body surface area in m^2 (Mosteller)."""
    return math.sqrt(height_cm * weight_kg / 3600.0)
