"""Asset checks on the subject manifest and the rejection list."""

import dagster as dg
import polars as pl

from cmrbias_dagster.lib.cohort_checks import stratum_shortfalls
from cmrbias_dagster.lib.tables import markdown_table
from cmrbias_dagster.resources import StudyResource


@dg.asset_check(asset="subject_manifest", description="Subject ids are unique.")
def unique_subject_ids(subject_manifest: pl.DataFrame) -> dg.AssetCheckResult:
    duplicated = subject_manifest.filter(pl.col("subject_id").is_duplicated())["subject_id"]
    return dg.AssetCheckResult(
        passed=duplicated.len() == 0, metadata={"duplicated": ", ".join(duplicated.unique())}
    )


@dg.asset_check(
    asset="subject_manifest",
    description="Every stratum of every experiment has the subjects the profile needs.",
)
def group_counts(subject_manifest: pl.DataFrame, study: StudyResource) -> dg.AssetCheckResult:
    shortfalls = stratum_shortfalls(subject_manifest, study.design(), study.profile)
    return dg.AssetCheckResult(
        passed=bool(shortfalls["enough"].all()),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"strata": dg.MetadataValue.md(markdown_table(shortfalls))},
    )


@dg.asset_check(
    asset="subject_manifest",
    description="Each subject has LVBP, LVM and RVBP at ED and ES, on one unbroken slice range.",
)
def labels_complete(subject_manifest: pl.DataFrame) -> dg.AssetCheckResult:
    incomplete = subject_manifest.filter(
        (pl.col("missing_classes") != "") | ~pl.col("labelled_slices_contiguous")
    ).select("subject_id", "missing_classes", "labelled_slices_contiguous")
    return dg.AssetCheckResult(
        passed=incomplete.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"incomplete": dg.MetadataValue.md(markdown_table(incomplete))},
    )


@dg.asset_check(asset="rejected_subjects", description="No subject was rejected.")
def no_rejected_subjects(rejected_subjects: pl.DataFrame) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=rejected_subjects.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rejected": rejected_subjects.height,
            "reasons": dg.MetadataValue.md(markdown_table(rejected_subjects)),
        },
    )
