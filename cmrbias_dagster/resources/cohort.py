"""Where the raw cohort lies and how it is laid out."""

from pathlib import Path

import dagster as dg

from cmrbias_dagster.lib.manifest import DEMOGRAPHICS_FILE


class CohortResource(dg.ConfigurableResource):
    """A cohort in the UK Biobank layout: one folder per subject plus a demographics CSV."""

    root: str
    demographics_file: str = ""

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

    @property
    def demographics_path(self) -> Path:
        return (
            Path(self.demographics_file)
            if self.demographics_file
            else self.root_path / DEMOGRAPHICS_FILE
        )
