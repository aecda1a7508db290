"""Synthetic UK Biobank-like cardiac MR cohort with planted, documented group effects."""

from .cohort import (
    DEMOGRAPHIC_COLUMNS,
    GENERATOR_VERSION,
    PHASES,
    SUBJECT_FILES,
    CohortSpec,
    SyntheticSubject,
    cohort_is_complete,
    generate_subject,
    sample_demographics,
    voxel_affine,
    write_cohort,
)
from .effects import DEFAULT_EFFECTS, GroupEffects

__all__ = [
    "DEFAULT_EFFECTS",
    "DEMOGRAPHIC_COLUMNS",
    "GENERATOR_VERSION",
    "PHASES",
    "SUBJECT_FILES",
    "CohortSpec",
    "GroupEffects",
    "SyntheticSubject",
    "cohort_is_complete",
    "generate_subject",
    "sample_demographics",
    "voxel_affine",
    "write_cohort",
]
