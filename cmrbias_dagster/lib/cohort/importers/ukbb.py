"""The UK Biobank layout (ukbb_cardiac): `<subject>/sa_ED.nii.gz`, `sa_ES`, `label_sa_ED`,
`label_sa_ES`, labels already canonical (1 LV, 2 Myo, 3 RV); the synthetic cohort writes it too.

Demographics come from the project's table (`demographics.csv`: subject_id, sex, race, age,
height_cm, weight_kg, any attribute columns) or from a UK Biobank export (ukbb_export.py).
"""

from pathlib import Path

from cmrbias_dagster.lib.cohort.demographics import CANONICAL_FIELDS, read_demographics_table
from cmrbias_dagster.lib.cohort.importers.layout import CohortOptions, Layout, Row, SubjectTable
from cmrbias_dagster.lib.cohort.importers.listing import top_level_folders
from cmrbias_dagster.lib.cohort.importers.ukbb_export import read_ukbb_export
from cmrbias_dagster.lib.cohort.validation import UKBB_FILES, SubjectFiles

DEMOGRAPHICS_FILE = "demographics.csv"
FORMATS = ("table", "ukbb_export")
EXPORT_REQUIRED = ("sex", "race")


def read_table(options: CohortOptions) -> SubjectTable:
    """The demographics table in the configured format (`table` or `ukbb_export`)."""
    path = options.information_file or options.root / DEMOGRAPHICS_FILE
    if options.demographics_format == "ukbb_export":
        rows = read_ukbb_export(path, dict(options.ethnicity_groups) or None)
        return SubjectTable(rows, options.required_fields or EXPORT_REQUIRED, path.name)
    if options.demographics_format != "table":
        raise ValueError(
            f"unknown demographics_format {options.demographics_format!r}; known: {FORMATS}"
        )
    required = options.required_fields or CANONICAL_FIELDS
    return SubjectTable(read_demographics_table(path, required), required, path.name)


def subject_files(subject_id: str, folder: Path, row: Row, canonical: Path) -> SubjectFiles:
    """The subject's own four files, used in place."""
    return SubjectFiles.in_place({key: folder / name for key, name in UKBB_FILES.items()})


LAYOUT = Layout("ukbb", read_table, top_level_folders, subject_files)
