"""Cohort assets: the raw folder, the validated subject manifest, and Table 1."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from cmrbias_dagster.lib import cohort_stats
from cmrbias_dagster.lib.manifest import build_manifest, cohort_listing_version
from cmrbias_dagster.lib.render import markdown_image, sample_attribute, sample_overlay_png
from cmrbias_dagster.lib.tables import markdown_table
from cmrbias_dagster.resources import CohortResource, StudyResource


@dg.observable_source_asset(
    group_name="cohort",
    description="The raw cohort folder (its layout set on the `cohort` resource); data version = "
    "hash of its listing.",
)
def raw_cohort(cohort: CohortResource) -> dg.DataVersion:
    return dg.DataVersion(cohort_listing_version(cohort.root_path))


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
    table = cohort_stats.cohort_characteristics(subject_manifest)
    return dg.Output(
        table,
        metadata={
            "table_1": dg.MetadataValue.md(cohort_stats.characteristics_markdown(table)),
        },
    )
