"""M&Ms-1: `<ID>/<ID>_sa.nii.gz` (4D cine) and `<ID>_sa_gt.nii.gz` (4D, labelled at ED and ES
only), labels 1 LV, 2 MYO, 3 RV, and an information CSV (External code, VendorName, Vendor, Centre,
ED, ES, Age, Sex M/F; Pathology, Height, Weight when present). ED and ES are 0-based frame indices;
their frames are written as canonical 3D files. Vendor and centre become attributes.
"""

from pathlib import Path

import polars as pl

from cmrbias_dagster.lib.cohort.demographics import (
    PROBLEM,
    DemographicsError,
    read_csv_strings,
    require_columns,
    require_unique_ids,
)
from cmrbias_dagster.lib.cohort.importers.canonical_files import (
    image_like,
    source_stamp,
    write_canonical,
)
from cmrbias_dagster.lib.cohort.importers.frames import frame_index
from cmrbias_dagster.lib.cohort.importers.layout import CohortOptions, Layout, Row, SubjectTable
from cmrbias_dagster.lib.cohort.importers.listing import nested_subject_folders
from cmrbias_dagster.lib.cohort.validation import SubjectFiles
from cmrbias_dagster.lib.cohort.volumes import SubjectError, read_nifti

REQUIRED_COLUMNS = ("external code", "vendor", "centre", "ed", "es", "age", "sex")
OPTIONAL_COLUMNS = {"vendorname": "vendor_name", "pathology": "pathology"}
SEX_CODES = {"m": "male", "f": "female"}


def information_file(options: CohortOptions) -> Path:
    """The configured information CSV, else the one CSV file in the cohort folder."""
    if options.information_file:
        return options.information_file
    found = sorted(options.root.glob("*.csv"))
    if len(found) != 1:
        raise DemographicsError(
            f"M&Ms-1 cohort {options.root}: expected one information CSV in the folder, found "
            f"{len(found)} ({', '.join(p.name for p in found) or 'none'}); set `demographics_file`"
        )
    return found[0]


def sex_from_code(code: str | None) -> tuple[str | None, str | None]:
    """(canonical sex, problem) from an M/F code, case and whitespace ignored."""
    if code is None:
        return None, None
    sex = SEX_CODES.get(code.lower())
    return sex, None if sex else f"sex {code!r} is not M or F"


def read_table(options: CohortOptions) -> SubjectTable:
    """The information CSV as the canonical table, frames kept as `_ed_frame`, `_es_frame`."""
    path = information_file(options)
    raw = read_csv_strings(path, "M&Ms information file")
    require_columns(raw, REQUIRED_COLUMNS, f"M&Ms information file {path}")
    sexes = [sex_from_code(code) for code in raw["sex"]]
    table = raw.select(
        pl.col("external code").alias("subject_id"),
        pl.Series("sex", [sex for sex, _ in sexes], pl.String),
        pl.col("age"),
        *[
            pl.col(c).alias(name)
            for c, name in (("height", "height_cm"), ("weight", "weight_kg"))
            if c in raw.columns
        ],
        pl.col("vendor"),
        pl.col("centre"),
        *[pl.col(c).alias(name) for c, name in OPTIONAL_COLUMNS.items() if c in raw.columns],
        pl.col("ed").alias("_ed_frame"),
        pl.col("es").alias("_es_frame"),
        pl.Series(PROBLEM, [problem for _, problem in sexes], pl.String),
    )
    required = options.required_fields or ("sex", "age", "vendor", "centre")
    return SubjectTable(
        require_unique_ids(table, f"M&Ms information file {path}"), required, path.name
    )


def subject_files(subject_id: str, folder: Path, row: Row, canonical: Path) -> SubjectFiles:
    """ED and ES frames of the 4D cine and its labels, written as canonical 3D files."""
    sources = {
        "image": folder / f"{subject_id}_sa.nii.gz",
        "label": folder / f"{subject_id}_sa_gt.nii.gz",
    }
    frames = (row.get("_ed_frame"), row.get("_es_frame"))

    def extract() -> dict:
        converted = {}
        for kind, path in sources.items():
            image, data = read_nifti(subject_id, path)
            if data.ndim != 4:
                raise SubjectError(
                    subject_id, path.name, f"expected a 4D cine, found shape {data.shape}"
                )
            for phase, text in zip(("ED", "ES"), frames, strict=True):
                index = frame_index(subject_id, path.name, phase, text, 0, data.shape[3])
                converted[f"{kind}_{phase.lower()}"] = image_like(data[..., index], image)
        return converted

    paths = write_canonical(canonical, source_stamp(sources.values(), frames), extract)
    shown = {
        f"{kind}_{phase.lower()}": f"{path.name} (frame {text})"
        for kind, path in sources.items()
        for phase, text in zip(("ED", "ES"), frames, strict=True)
    }
    return SubjectFiles(paths, shown)


LAYOUT = Layout("mnms1", read_table, nested_subject_folders, subject_files)
