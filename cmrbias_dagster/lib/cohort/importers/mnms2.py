"""M&Ms-2: `<ID>/<ID>_SA_ED.nii.gz`, `<ID>_SA_ED_gt.nii.gz`, `<ID>_SA_ES.nii.gz`,
`<ID>_SA_ES_gt.nii.gz` (3D, labels 1 LV, 2 MYO, 3 RV: used in place) and `dataset_information.csv`
(SUBJECT_CODE, DISEASE, SEX M/F, AGE, VENDOR or TOMOGRAPH-MAKE). Numeric subject codes are
zero-padded to three digits, as the folders are named (1 -> 001).
"""

from pathlib import Path

import polars as pl

from cmrbias_dagster.lib.cohort.demographics import (
    PROBLEM,
    read_csv_strings,
    require_columns,
    require_unique_ids,
)
from cmrbias_dagster.lib.cohort.importers.layout import CohortOptions, Layout, Row, SubjectTable
from cmrbias_dagster.lib.cohort.importers.listing import nested_subject_folders
from cmrbias_dagster.lib.cohort.importers.mnms1 import sex_from_code
from cmrbias_dagster.lib.cohort.validation import SubjectFiles

INFORMATION_FILE = "dataset_information.csv"
REQUIRED_COLUMNS = ("subject_code", "sex", "age")
VENDOR_COLUMNS = ("vendor", "tomograph-make")


def folder_id(code: str | None) -> str | None:
    """The folder name of a subject code: numeric codes zero-padded to three digits."""
    return code.zfill(3) if code and code.isdigit() else code


def read_table(options: CohortOptions) -> SubjectTable:
    """dataset_information.csv as the canonical table (vendor and pathology as attributes)."""
    path = options.information_file or options.root / INFORMATION_FILE
    raw = read_csv_strings(path, "M&Ms-2 information file")
    require_columns(raw, REQUIRED_COLUMNS, f"M&Ms-2 information file {path}")
    vendor = next((column for column in VENDOR_COLUMNS if column in raw.columns), None)
    sexes = [sex_from_code(code) for code in raw["sex"]]
    table = raw.select(
        pl.col("subject_code").map_elements(folder_id, pl.String).alias("subject_id"),
        pl.Series("sex", [sex for sex, _ in sexes], pl.String),
        pl.col("age"),
        *([pl.col(vendor).alias("vendor")] if vendor else []),
        *([pl.col("disease").alias("pathology")] if "disease" in raw.columns else []),
        pl.Series(PROBLEM, [problem for _, problem in sexes], pl.String),
    )
    required = options.required_fields or ("sex", "age")
    table = require_unique_ids(table, f"M&Ms-2 information file {path}")
    return SubjectTable(table, required, path.name)


def subject_files(subject_id: str, folder: Path, row: Row, canonical: Path) -> SubjectFiles:
    """The subject's four 3D files, used in place."""
    name = f"{folder}/{subject_id}_SA"
    return SubjectFiles.in_place(
        {
            "image_ed": Path(f"{name}_ED.nii.gz"),
            "image_es": Path(f"{name}_ES.nii.gz"),
            "label_ed": Path(f"{name}_ED_gt.nii.gz"),
            "label_es": Path(f"{name}_ES_gt.nii.gz"),
        }
    )


LAYOUT = Layout("mnms2", read_table, nested_subject_folders, subject_files)
