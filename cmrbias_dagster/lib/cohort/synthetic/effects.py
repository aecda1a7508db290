"""Planted group effects: per-race appearance and anatomy knobs of the synthetic cohort."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np


@dataclass(frozen=True)
class GroupEffects:
    """How one race group's hearts and images differ from the white reference.

    myocardium_intensity: added to myocardial signal (fraction of blood signal); lowers contrast.
    epicardial_fat: 0..1 strength of a bright, patchy fat layer hugging the epicardium.
    wall_thickness_scale: multiplies LV wall thickness (so LV mass) at a fixed cavity volume.
    trabeculation: 0..1 strength of dark trabecular fingers along the endocardium (labelled blood).
    subcutaneous_fat_scale: multiplies the thickness of the chest wall's bright subcutaneous fat.
    """

    myocardium_intensity: float = 0.0
    epicardial_fat: float = 0.0
    wall_thickness_scale: float = 1.0
    trabeculation: float = 0.0
    subcutaneous_fat_scale: float = 1.0


NEUTRAL = GroupEffects()
KNOB_RANGES: dict[str, tuple[float, float]] = {
    "myocardium_intensity": (-0.2, 0.5),
    "epicardial_fat": (0.0, 1.0),
    "wall_thickness_scale": (0.5, 2.0),
    "trabeculation": (0.0, 1.0),
    "subcutaneous_fat_scale": (0.25, 4.0),
}

# Calibrated with bench/effect_probe.py (docs/synthetic_cohort.md): one quick-profile fold trained
# on white subjects only segments black subjects ~5.7 and asian subjects ~6.4 DSC points worse,
# a few points as in the paper at 0 % share, far below the 0.99 vs 0.83 cliff in
# docs/reference_numbers.md.
DEFAULT_EFFECTS: dict[str, GroupEffects] = {
    "white": NEUTRAL,
    "black": GroupEffects(
        myocardium_intensity=0.10,
        wall_thickness_scale=1.26,
        trabeculation=0.85,
        subcutaneous_fat_scale=1.3,
    ),
    # Asian myocardium is only slightly brighter: at +0.11 it matched the mediastinum, and folds
    # trained on asian subjects alone could not find the epicardium in the quick schedule.
    "asian": GroupEffects(
        myocardium_intensity=0.05,
        epicardial_fat=1.0,
        wall_thickness_scale=0.91,
    ),
}


def effects_from_mapping(
    overrides: Mapping[str, Mapping[str, float]] | None, races: tuple[str, ...]
) -> dict[str, GroupEffects]:
    """Overlay YAML overrides (`{race: {knob: value}}`) on DEFAULT_EFFECTS for the given races."""
    overrides = overrides or {}
    unknown = set(overrides) - set(races)
    if unknown:
        raise ValueError(f"effects given for races not in the cohort: {sorted(unknown)}")
    effects = {race: DEFAULT_EFFECTS.get(race, NEUTRAL) for race in races}
    for race, knobs in overrides.items():
        if not isinstance(knobs, Mapping):
            raise ValueError(f"effects.{race} must be a mapping of knob: value, got {knobs!r}")
        for knob, value in knobs.items():
            if knob not in KNOB_RANGES:
                raise ValueError(
                    f"effects.{race}: unknown knob {knob!r}; known: {list(KNOB_RANGES)}"
                )
            low, high = KNOB_RANGES[knob]
            if not isinstance(value, int | float) or not low <= float(value) <= high:
                raise ValueError(f"effects.{race}.{knob}={value!r} outside [{low}, {high}]")
        effects[race] = replace(effects[race], **{k: float(v) for k, v in knobs.items()})
    return effects


def subject_effects(group: GroupEffects, rng: np.random.Generator) -> GroupEffects:
    """One subject's effects: the group's deviation from neutral times a factor in [0.5, 1.5].

    A group effect is a shift of a distribution, not a constant, so members vary around it.
    """
    factor = rng.uniform(0.5, 1.5)
    return GroupEffects(
        **{
            f.name: getattr(NEUTRAL, f.name)
            + factor * (getattr(group, f.name) - getattr(NEUTRAL, f.name))
            for f in fields(GroupEffects)
        }
    )
