"""Synthetic UK Biobank-like cardiac MR cohort with planted, documented group effects."""

from .effects import DEFAULT_EFFECTS, GroupEffects
from .generate import (
    DEMOGRAPHIC_COLUMNS,
    SUBJECT_FILES,
    cohort_is_complete,
    sample_demographics,
    write_cohort,
)
from .spec import GENERATOR_VERSION, CohortSpec, ScannerShift
from .subject import PHASES, SyntheticSubject, generate_subject, voxel_affine

__all__ = [
    "DEFAULT_EFFECTS",
    "DEMOGRAPHIC_COLUMNS",
    "GENERATOR_VERSION",
    "PHASES",
    "SUBJECT_FILES",
    "CohortSpec",
    "ScannerShift",
    "GroupEffects",
    "SyntheticSubject",
    "cohort_is_complete",
    "generate_subject",
    "sample_demographics",
    "voxel_affine",
    "write_cohort",
]
