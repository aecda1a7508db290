"""The subject manifest: every usable subject of a cohort, and why the others were rejected."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from cmrbias_dagster.lib.cohort.demographics import (
    PROBLEM,
    PROBLEM_FILE,
    Demographics,
    parse_demographics_row,
)
from cmrbias_dagster.lib.cohort.importers import Layout, SubjectTable, ukbb
from cmrbias_dagster.lib.cohort.validation import SAFE_ID, validate_subject
from cmrbias_dagster.lib.cohort.volumes import SubjectError

REJECTION_SCHEMA = {"subject_id": pl.String, "file": pl.String, "reason": pl.String}
DEMOGRAPHICS_FILE = ukbb.DEMOGRAPHICS_FILE
# Columns every manifest has, typed, even where a layout leaves them empty (ACDC has no sex).
NULLABLE_SCHEMA = {
    "sex": pl.String,
    "race": pl.String,
    **dict.fromkeys(("age", "height_cm", "weight_kg", "bmi"), pl.Float64),
}


def cohort_listing_version(root: Path) -> str:
    """A short hash of the cohort folder's listing (relative paths, sizes, modification times)."""
    if not root.is_dir():
        return "absent"
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _check_subject(
    row: dict[str, str | None],
    table: SubjectTable,
    folders: dict[str, list[Path]],
    layout: Layout,
    canonical_root: Path,
) -> dict[str, object]:
    subject_id = str(row["subject_id"] or "").strip()
    if not SAFE_ID.match(subject_id):
        reason = "id is not safe (letters, digits, '_', '.', '-'; at most 64 characters)"
        raise SubjectError(subject_id, table.source, reason)
    if row.get(PROBLEM):
        raise SubjectError(subject_id, row.get(PROBLEM_FILE) or table.source, str(row[PROBLEM]))
    parsed = parse_demographics_row(row, table.required)
    if not isinstance(parsed, Demographics):
        raise SubjectError(subject_id, table.source, parsed)
    found = folders.get(subject_id, [])
    if not found:
        raise SubjectError(subject_id, f"{subject_id}/", "no image folder for this subject")
    if len(found) > 1:
        places = ", ".join(str(path) for path in found)
        raise SubjectError(subject_id, f"{subject_id}/", f"subject id found in folders {places}")
    files = layout.subject_files(subject_id, found[0], row, canonical_root / subject_id)
    return validate_subject(files, parsed)


def _outcome(
    row: dict[str, str | None],
    table: SubjectTable,
    folders: dict[str, list[Path]],
    layout: Layout,
    canonical_root: Path,
) -> tuple[dict[str, object] | None, dict[str, str] | None]:
    try:
        return _check_subject(row, table, folders, layout, canonical_root), None
    except SubjectError as error:
        return None, {"subject_id": error.subject_id, "file": error.file, "reason": error.reason}


def build_manifest(
    root: Path,
    table: SubjectTable,
    canonical_root: Path,
    layout: Layout = ukbb.LAYOUT,
    workers: int = 4,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate every subject of `table` (or found as a folder) under `root`; converted files
    are written under `canonical_root`."""
    rows = table.rows.to_dicts()
    folders = layout.subject_folders(root)
    listed = {str(row["subject_id"] or "").strip() for row in rows}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            pool.map(lambda row: _outcome(row, table, folders, layout, canonical_root), rows)
        )
    accepted = [row for row, _ in results if row is not None]
    rejected = [reason for _, reason in results if reason is not None]
    rejected += [
        {"subject_id": name, "file": table.source, "reason": "subject has no demographics row"}
        for name in sorted(set(folders) - listed)
    ]
    return _typed(accepted), pl.DataFrame(rejected, schema=REJECTION_SCHEMA).sort("subject_id")


def _typed(accepted: list[dict[str, object]]) -> pl.DataFrame:
    manifest = pl.DataFrame(accepted, infer_schema_length=None)
    if not manifest.height:
        return manifest
    empty = {name: pl.String for name, dtype in manifest.schema.items() if dtype == pl.Null}
    return manifest.cast({**empty, **NULLABLE_SCHEMA}).sort("subject_id")
