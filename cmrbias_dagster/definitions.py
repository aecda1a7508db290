"""The Dagster code location: every asset, check, job and resource of the study."""

import os

import dagster as dg

from cmrbias_dagster.assets import cohort, cohort_checks
from cmrbias_dagster.partitions import study_file
from cmrbias_dagster.resources import build_resources

PROFILE = os.environ.get("CMRBIAS_PROFILE", "quick")

cohort_job = dg.define_asset_job(
    "cohort_job",
    selection=dg.AssetSelection.groups("cohort"),
    description="Validate the raw cohort into the subject manifest and Table 1.",
)

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([cohort]),
    asset_checks=dg.load_asset_checks_from_modules([cohort_checks]),
    jobs=[cohort_job],
    resources=build_resources(profile=PROFILE, study_file=study_file()),
)
