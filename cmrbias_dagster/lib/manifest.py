"""The subject manifest: every usable subject of a cohort, and why the others were rejected."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from cmrbias_dagster.lib.demographics import Demographics, parse_demographics_row
from cmrbias_dagster.lib.subject_validation import SAFE_ID, SubjectError, validate_subject

REJECTION_SCHEMA = {"subject_id": pl.String, "file": pl.String, "reason": pl.String}
DEMOGRAPHICS_FILE = "demographics.csv"


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
    root: Path, row: dict[str, str | None]
) -> tuple[dict[str, object] | None, dict[str, str] | None]:
    subject_id = str(row["subject_id"] or "").strip()
    if not SAFE_ID.match(subject_id):
        reason = "id is not safe (letters, digits, '_', '.', '-'; at most 64 characters)"
        return None, {"subject_id": subject_id, "file": DEMOGRAPHICS_FILE, "reason": reason}
    parsed = parse_demographics_row(row)
    if not isinstance(parsed, Demographics):
        return None, {"subject_id": subject_id, "file": DEMOGRAPHICS_FILE, "reason": parsed}
    if not (root / subject_id).is_dir():
        reason = "no image folder for this subject"
        return None, {"subject_id": subject_id, "file": f"{subject_id}/", "reason": reason}
    try:
        return validate_subject(root / subject_id, parsed), None
    except SubjectError as error:
        return None, {"subject_id": subject_id, "file": error.file, "reason": error.reason}


def build_manifest(
    root: Path, demographics: pl.DataFrame, workers: int = 4
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate every subject listed in `demographics` (or found as a folder) under `root`."""
    rows = demographics.to_dicts()
    listed = {str(row["subject_id"]).strip() for row in rows}
    unlisted = (
        sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in listed)
        if root.is_dir()
        else []
    )
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda row: _check_subject(root, row), rows))
    accepted = [row for row, _ in results if row is not None]
    rejected = [reason for _, reason in results if reason is not None]
    rejected += [
        {"subject_id": name, "file": DEMOGRAPHICS_FILE, "reason": "subject has no demographics row"}
        for name in unlisted
    ]
    manifest = pl.DataFrame(accepted, infer_schema_length=None)
    if manifest.height:
        manifest = manifest.sort("subject_id")
    return manifest, pl.DataFrame(rejected, schema=REJECTION_SCHEMA).sort("subject_id")
