"""What a synthetic cohort is made of: group counts, image grid, planted effects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from cmrbias_dagster.lib.design.settings import SyntheticCohortSettings

from .demographics import RACES, SEXES
from .effects import GroupEffects, effects_from_mapping

GENERATOR_VERSION = "2"
MIN_FIELD_OF_VIEW_MM = 120.0  # the largest hearts span ~110 mm across LV and RV
SCANNER_KEYS = ("contrast_gamma", "noise_scale", "pixel_mm")


@dataclass(frozen=True)
class ScannerShift:
    """Another scanner's images of the same kind of people (docs/synthetic_cohort.md): the
    normalised signal raised to `contrast_gamma` before the noise, the noise SD times
    `noise_scale`, and an in-plane pixel of `pixel_mm` (None: the profile's) on a matrix that
    keeps the field of view. The identity shift leaves every voxel as it was."""

    contrast_gamma: float = 1.0
    noise_scale: float = 1.0
    pixel_mm: float | None = None

    @property
    def is_identity(self) -> bool:
        return self == NO_SHIFT

    @classmethod
    def from_mapping(cls, mapping: Mapping | None) -> ScannerShift:
        """From the `scanner` block; ValueError names the bad key."""
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping) or set(mapping) - set(SCANNER_KEYS):
            raise ValueError(f"synthetic_cohort.scanner must map some of {SCANNER_KEYS} to numbers")
        values = {key: mapping[key] for key in SCANNER_KEYS if mapping.get(key) is not None}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"synthetic_cohort.scanner.{key}={value!r}: need a number > 0")
        return cls(**{key: float(value) for key, value in values.items()})


NO_SHIFT = ScannerShift()


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
    scanner: ScannerShift = NO_SHIFT

    @classmethod
    def from_mapping(cls, mapping: Mapping | SyntheticCohortSettings, seed: int) -> CohortSpec:
        """Build from a study profile's `synthetic_cohort` block; ValueError names the bad field."""
        if isinstance(mapping, SyntheticCohortSettings):
            mapping = mapping.as_mapping()
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
        scanner = ScannerShift.from_mapping(mapping.get("scanner"))
        matrix = _number(mapping, "matrix", int, 16)
        pixel_mm = _number(mapping, "pixel_mm", float, 0.1)
        if scanner.pixel_mm is not None:  # the same field of view on the other scanner's grid
            matrix, pixel_mm = round(matrix * pixel_mm / scanner.pixel_mm), scanner.pixel_mm
        spec = cls(
            subjects=counts,
            matrix=matrix,
            pixel_mm=pixel_mm,
            slices=_number(mapping, "slices", int, 1),
            slice_gap_mm=_number(mapping, "slice_gap_mm", float, 0.1),
            seed=int(seed),
            effects=effects_from_mapping(mapping.get("effects"), tuple(counts)),
            scanner=scanner,
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
        if self.scanner.is_identity:  # cohorts without a shift keep their COHORT.json
            del fields["scanner"]
        return {"generator_version": GENERATOR_VERSION, **fields}


def _number(mapping: Mapping, key: str, kind: type, minimum: float) -> int | float:
    value = mapping.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ValueError(f"synthetic_cohort.{key}={value!r}: need a {kind.__name__} >= {minimum}")
    if kind is int and value != int(value):
        raise ValueError(f"synthetic_cohort.{key}={value!r} must be an integer")
    return kind(value)
