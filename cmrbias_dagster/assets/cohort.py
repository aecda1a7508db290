"""Cohort assets: the raw folder, the validated subject manifest and its checks, and Table 1."""

import warnings
from collections.abc import Iterator

import dagster as dg
import polars as pl

from cmrbias_dagster.lib.cohort import characteristics
from cmrbias_dagster.lib.cohort.manifest import build_manifest, cohort_listing_version
from cmrbias_dagster.lib.outputs import markdown_table
from cmrbias_dagster.lib.plots.subjects import markdown_image, sample_attribute, sample_overlay_png
from cmrbias_dagster.lib.splits.checks import stratum_shortfalls
from cmrbias_dagster.resources import CohortResource, StudyResource


def observe_raw_cohort(cohort: CohortResource) -> dg.DataVersion:
    return dg.DataVersion(cohort_listing_version(cohort.root_path))


# Dagster 1.13 has no stable way to define an asset that a job can observe: an external AssetSpec
# cannot be selected by observe_cohort_job, and Dagster converts this source asset into exactly
# such an observation asset itself. Its beta warning is silenced for this one definition only, so
# loading the code location (UI, runner, tests) prints nothing; any other beta warning still
# shows, and fails the tests (pyproject's filterwarnings).
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="Function `observable_source_asset` is currently in beta"
    )
    raw_cohort = dg.observable_source_asset(
        name="raw_cohort",
        group_name="cohort",
        description="The raw cohort folder (its layout set on the `cohort` resource); data "
        "version = hash of its listing.",
    )(observe_raw_cohort)


@dg.multi_asset(
    group_name="cohort",
    deps=[raw_cohort],
    outs={
        "subject_manifest": dg.AssetOut(
            description="Every usable subject: demographics, file paths, geometry, ground-truth "
            "volumes (LV/RV EDV, ESV, EF, LV mass) and a content hash.",
            kinds={"polars", "duckdb"},
        ),
        "rejected_subjects": dg.AssetOut(
            description="Subjects left out of the manifest, with the file and the cause.",
            kinds={"polars", "duckdb"},
        ),
    },
)
def subject_manifest(
    context: dg.AssetExecutionContext, cohort: CohortResource, study: StudyResource
) -> Iterator[dg.Output]:
    root = cohort.require_root()
    canonical_root = study.output_dir("canonical_cohort", cohort.layout)
    manifest, rejected = build_manifest(
        root, cohort.subject_table(), canonical_root, cohort.cohort_layout()
    )
    if manifest.height == 0:
        raise dg.Failure(f"no usable subject in {root}: {rejected.head(5).to_dicts()}")
    if rejected.height:
        context.log.warning(f"{rejected.height} subject(s) rejected: {rejected.head(3).to_dicts()}")
    shown_by = sample_attribute(manifest)
    sample = sample_overlay_png(manifest, shown_by)
    (study.output_dir("figures") / "cohort_sample.png").write_bytes(sample)
    counts = manifest.group_by(shown_by, "sex").len("subjects").sort(shown_by, "sex")
    yield dg.Output(
        manifest,
        output_name="subject_manifest",
        metadata={
            "subjects": manifest.height,
            "rejected": rejected.height,
            f"counts_by_{shown_by}_and_sex": dg.MetadataValue.md(markdown_table(counts)),
            "layout": cohort.layout,
            "sample_slices": dg.MetadataValue.md(
                markdown_image(sample, "mid ED slices with labels")
            ),
            "cohort_root": dg.MetadataValue.path(str(root)),
        },
    )
    yield dg.Output(
        rejected,
        output_name="rejected_subjects",
        metadata={
            "rejected": rejected.height,
            "reasons": dg.MetadataValue.md(markdown_table(rejected)),
        },
    )


@dg.asset(group_name="cohort", kinds={"polars", "duckdb"})
def cohort_characteristics(subject_manifest: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Table 1: mean (SD) of age, weight, height and BMI per sex and race, with Welch t-tests."""
    table = characteristics.cohort_characteristics(subject_manifest)
    return dg.Output(
        table,
        metadata={
            "table_1": dg.MetadataValue.md(characteristics.characteristics_markdown(table)),
        },
    )


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
