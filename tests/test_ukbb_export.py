"""A UK Biobank export as demographics: codes mapped to study groups, instances, bad rows."""

from pathlib import Path

import polars as pl
import pytest

from cmrbias_dagster.lib.cohort.demographics import DemographicsError
from cmrbias_dagster.lib.cohort.importers import CohortOptions, ukbb
from cmrbias_dagster.lib.cohort.importers.ukbb_export import (
    DEFAULT_ETHNICITY_GROUPS,
    read_ukbb_export,
)
from cmrbias_dagster.lib.cohort.manifest import build_manifest
from tests.layout_fixtures import ukbb_export_rows, write_csv
from tests.toy_cohort import demographics_rows, write_toy_cohort


def export_of(tmp_path: Path, **changes: dict[str, object]) -> pl.DataFrame:
    """The canonical table of a two-subject export, with `changes` to subject 1's row."""
    rows = ukbb_export_rows(["1000001", "1000002"])
    rows[0].update(changes)
    return read_ukbb_export(write_csv(tmp_path / "ukb.csv", rows))


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("1001", "white"),
        ("1003", "white"),
        ("4002", "black"),
        ("3004", "asian"),
        ("5", "chinese"),
        ("2003", "mixed"),
        ("6", "other"),
        ("-3", "unknown"),
        (" 4001 ", "black"),
        ("1001.0", "white"),
    ],
)
def test_ethnic_background_codes_map_to_their_own_groups(
    tmp_path: Path, code: str, group: str
) -> None:
    row = export_of(tmp_path, **{"21000-0.0": code}).row(0, named=True)
    assert row["race"] == group and row["_problem"] is None


def test_first_non_missing_instance_and_optional_fields(tmp_path: Path) -> None:
    changes = {"21000-0.0": "", "21000-1.0": "4003", "21003-2.0": "", "50-2.0": ""}
    row = export_of(tmp_path, **changes).row(0, named=True)
    assert (row["race"], row["sex"], row["age"], row["height_cm"]) == (
        "black",
        "female",
        None,
        None,
    )
    assert row["weight_kg"] == "80"


def test_age_from_birth_year_and_visit_date(tmp_path: Path) -> None:
    rows = ukbb_export_rows(["1000001"])
    rows[0].pop("21003-2.0")
    rows[0].update({"34-0.0": "1950", "53-2.0": "2016-05-04"})
    table = read_ukbb_export(write_csv(tmp_path / "ukb.csv", rows))
    assert table["age"].to_list() == ["66"]


@pytest.mark.parametrize(
    ("changes", "cause"),
    [
        ({"21000-0.0": "9999"}, "ethnic background code '9999' (field 21000) is not in the code"),
        ({"21000-0.0": ""}, "ethnic background (field 21000) is missing in every instance"),
        ({"31-0.0": "7"}, "sex code '7' (field 31) is not 0 (female) or 1 (male)"),
    ],
)
def test_unusable_codes_are_problems_of_the_row(tmp_path: Path, changes, cause: str) -> None:
    table = export_of(tmp_path, **changes)
    assert cause in table["_problem"][0] and table["_problem"][1] is None


def test_mapping_is_configurable(tmp_path: Path) -> None:
    rows = ukbb_export_rows(["1000001"])
    rows[0]["21000-0.0"] = "5"
    path = write_csv(tmp_path / "ukb.csv", rows)
    groups = {**DEFAULT_ETHNICITY_GROUPS, "5": "asian"}
    assert read_ukbb_export(path, groups)["race"].to_list() == ["asian"]


@pytest.mark.parametrize(
    ("header", "cause"),
    [
        ("eid,31-0.0,50-2.0", "lacks field 21000 (ethnic background): no column like 21000-0.0"),
        ("id,31-0.0,21000-0.0", "lacks required column eid"),
        ("eid,sex,21000-0.0", "lacks field 31 (sex)"),
    ],
)
def test_export_with_wrong_header(tmp_path: Path, header: str, cause: str) -> None:
    path = tmp_path / "ukb.csv"
    path.write_text(header + "\n1,0,1001\n")
    with pytest.raises(DemographicsError, match=r"UK Biobank export .*ukb.csv") as error:
        read_ukbb_export(path)
    assert cause in str(error.value)


def test_ukbb_layout_with_an_export(tmp_path: Path) -> None:
    rows = demographics_rows(1)
    root = write_toy_cohort(tmp_path / "cohort", rows)
    export = ukbb_export_rows([str(row["subject_id"]) for row in rows])
    export[1]["21000-0.0"] = "5"
    export[2]["21000-0.0"] = "77"
    export[3]["21003-2.0"] = "sixty"
    path = write_csv(tmp_path / "ukb_export.csv", export)
    options = CohortOptions(root, information_file=path, demographics_format="ukbb_export")
    manifest, rejected = build_manifest(root, ukbb.read_table(options), tmp_path / "canonical")
    assert manifest["race"].to_list() == ["white", "chinese", "black", "asian"]
    assert rejected.to_dicts() == [
        {
            "subject_id": "TOY003",
            "file": "ukb_export.csv",
            "reason": "ethnic background code '77' (field 21000) is not in the code mapping "
            "(cohort resource field `ukbb_ethnicity_groups`)",
        },
        {"subject_id": "TOY004", "file": "ukb_export.csv", "reason": "age 'sixty' is not a number"},
    ]


def test_research_analysis_platform_column_names(tmp_path: Path) -> None:
    path = tmp_path / "rap.csv"
    path.write_text(
        "participant.eid,p31,p21000_i0,p21000_i1,p21003_i0,p21003_i2,p50_i2\n"
        "1000001,1,,4002,55,58,181\n"
    )
    row = read_ukbb_export(path).row(0, named=True)
    assert (row["subject_id"], row["sex"], row["race"]) == ("1000001", "male", "black")
    assert (row["age"], row["height_cm"]) == ("58", "181")
