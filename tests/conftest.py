"""Shared fixtures: the `tiny` profile's real synthetic cohort, generated once per test session."""

from pathlib import Path

import pytest

from cmrbias_dagster.lib.study_design import load_study_design
from cmrbias_dagster.lib.synthetic import CohortSpec, write_cohort
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """72 synthetic subjects (6 per race x sex) at 48x48x8 in the UK Biobank layout."""
    design = load_study_design(DEFAULT_STUDY_FILE)
    spec = CohortSpec.from_mapping(design.profile("tiny").synthetic_cohort, seed=design.seed)
    return write_cohort(spec, tmp_path_factory.mktemp("tiny") / "synthetic_tiny")
