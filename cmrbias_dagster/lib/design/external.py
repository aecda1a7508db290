"""The design's external test cohorts (`external_test:` in data/study.yaml): second cohorts, in
any importer's layout, that the experiments' models also segment. They are never trained on."""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from .fields import StudyDesignError, Text, design_model, typed

# The study's own test set, in the `test_cohort` column of the side-by-side tables.
INTERNAL_COHORT = "internal"
_COHORT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Relative roots are read from the project root (the folder holding data/), whatever the cwd.
PROJECT_ROOT = Path(__file__).resolve().parents[3]


@design_model
class ExternalCohort:
    """One external test cohort: where it lies and how its importer reads it (the fields of the
    `cohort` resource, resources/cohort_folder.py)."""

    name: str
    root: Text
    layout: Annotated[
        Literal["ukbb", "mnms1", "mnms2", "acdc"],
        Field(description="must be one of ukbb, mnms1, mnms2, acdc"),
    ] = "ukbb"
    demographics_file: str = ""
    demographics_format: Annotated[
        Literal["table", "ukbb_export"], Field(description="must be table or ukbb_export")
    ] = "table"
    # Fields every subject must have; empty: the layout's default. A cohort without race or
    # height (Sunnybrook) names the fields it has, e.g. [sex, age].
    required_fields: tuple[Text, ...] = ()

    @property
    def root_path(self) -> Path:
        """The cohort folder; a relative `root` is read from the project root."""
        root = Path(self.root).expanduser()
        return root if root.is_absolute() else PROJECT_ROOT / root


def parse_external_test(raw: Any, source: str) -> tuple[ExternalCohort, ...]:
    """The `external_test` block: a mapping of cohort name -> {root, layout, ...}; None or
    absent: no external cohort. StudyDesignError names the field and the cohort."""
    if raw is None:
        return ()
    where = f"{source}: field 'external_test'"
    if not isinstance(raw, Mapping):
        raise StudyDesignError(
            f"{where} must map a cohort name to {{root, layout}}, got {type(raw).__name__}"
        )
    cohorts = []
    for name, entry in raw.items():
        if not isinstance(name, str) or not _COHORT_NAME.match(name) or name == INTERNAL_COHORT:
            raise StudyDesignError(
                f"{where}: cohort name {name!r} must match {_COHORT_NAME.pattern} and not be "
                f"{INTERNAL_COHORT!r} (the study's own test set)"
            )
        cohorts.append(
            typed(ExternalCohort, entry, f"{where}: cohort {name!r}", "cohort field", name=name)
        )
    return tuple(cohorts)
