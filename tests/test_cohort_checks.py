"""The group_counts check's arithmetic: usable subjects per stratum, attributes a cohort lacks."""

import polars as pl

from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.splits.checks import stratum_shortfalls
from cmrbias_dagster.resources.study import PROJECT_ROOT

VENDOR_DESIGN = load_study_design(PROJECT_ROOT / "docs" / "study_mnms_vendor.yaml")


def test_subjects_lacking_a_class_and_absent_attributes_count_as_none() -> None:
    manifest = pl.DataFrame(
        {
            "subject_id": ["a", "b", "c"],
            "sex": ["female", "female", "male"],
            "vendor": ["a", "a", "b"],
            "missing_classes": ["", "RVBP (ED+ES)", ""],
        }
    )
    table = stratum_shortfalls(manifest, VENDOR_DESIGN, "quick")
    counts = dict(zip(table["stratum"], table["available"], strict=True))
    assert counts["vendor=a, sex=female"] == 1 and counts["vendor=b, sex=male"] == 1
    assert table["needed"].unique().to_list() == [16 // 4 + 24 // 2]
    without_vendor = stratum_shortfalls(manifest.drop("vendor"), VENDOR_DESIGN, "quick")
    assert without_vendor["available"].sum() == 0 and not without_vendor["enough"].any()
