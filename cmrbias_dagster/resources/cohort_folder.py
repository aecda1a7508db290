"""Where the raw cohort lies, its layout, and how to read its demographics."""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from cmrbias_dagster.lib.cohort.importers import CohortOptions, Layout, SubjectTable, layout_named
from cmrbias_dagster.lib.cohort.importers.ukbb_export import DEFAULT_ETHNICITY_GROUPS


class CohortResource(dg.ConfigurableResource):
    """A cohort folder in one of the supported layouts (README, "Your own cohort")."""

    root: str
    layout: Literal["ukbb", "mnms1", "mnms2", "acdc"] = Field(
        default="ukbb", description="ukbb, mnms1, mnms2 or acdc"
    )
    demographics_file: str = Field(
        default="",
        description="The subject information file; empty: the layout's default "
        "(ukbb: <root>/demographics.csv, mnms1: the one CSV in <root>, "
        "mnms2: <root>/dataset_information.csv, acdc: each subject's Info.cfg)",
    )
    demographics_format: Literal["table", "ukbb_export"] = Field(
        default="table",
        description="ukbb layout only: `table` (subject_id, sex, race, age, height_cm, "
        "weight_kg, attributes) or `ukbb_export` (a UK Biobank showcase CSV: eid, 31-0.0, ...)",
    )
    required_fields: list[str] = Field(
        default=[],
        description="Fields every subject must have; empty: the layout's default "
        "(ukbb table: sex, race, age, height_cm, weight_kg)",
    )
    ukbb_ethnicity_groups: dict[str, str] = Field(
        default=DEFAULT_ETHNICITY_GROUPS,
        description="UK Biobank field 21000 (coding 1001) code -> study group",
    )

    @property
    def root_path(self) -> Path:
        return Path(self.root)

    def require_root(self) -> Path:
        """The cohort folder, or a clear error saying how to create or configure it."""
        if not self.root_path.is_dir():
            raise FileNotFoundError(
                f"cohort folder {self.root_path} does not exist: generate the synthetic cohort "
                "with `make cohort` or point the `cohort` resource at your data"
            )
        return self.root_path

    def cohort_layout(self) -> Layout:
        """The configured layout; ValueError listing the known ones otherwise."""
        return layout_named(self.layout)

    def subject_table(self) -> SubjectTable:
        """The canonical demographics table of the configured layout."""
        options = CohortOptions(
            root=self.root_path,
            information_file=Path(self.demographics_file) if self.demographics_file else None,
            demographics_format=self.demographics_format,
            required_fields=tuple(self.required_fields),
            ethnicity_groups=self.ukbb_ethnicity_groups,
        )
        return self.cohort_layout().read_table(options)
