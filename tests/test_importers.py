"""Each layout's importer on tiny fixtures in that exact layout: canonical files, volumes and
attributes, and the layout's own bad inputs."""

from pathlib import Path

import nibabel as nib
import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.lib.cohort.clinical import clinical_measures
from cmrbias_dagster.lib.cohort.demographics import DemographicsError
from cmrbias_dagster.lib.cohort.importers import CohortOptions, layout_named
from cmrbias_dagster.lib.cohort.manifest import build_manifest
from tests.layout_fixtures import (
    acdc_info,
    write_acdc_cohort,
    write_csv,
    write_mnms1_cohort,
    write_mnms2_cohort,
)
from tests.toy_cohort import SHAPE, SPACING, toy_labels, write_nifti

WRITERS = {"mnms1": write_mnms1_cohort, "mnms2": write_mnms2_cohort, "acdc": write_acdc_cohort}
EXPECTED = clinical_measures(toy_labels(5.0), toy_labels(3.0), SPACING)


def imported(layout: str, root: Path, **options) -> tuple[pl.DataFrame, pl.DataFrame]:
    spec = layout_named(layout)
    table = spec.read_table(CohortOptions(root, **options))
    return build_manifest(root, table, root.parent / "canonical", spec)


@pytest.mark.parametrize(
    ("layout", "attributes"),
    [
        (
            "mnms1",
            {"vendor": ["a", "b"], "centre": ["1", "2"], "vendor_name": ["philips", "siemens"]},
        ),
        ("mnms2", {"vendor": ["ge", "siemens"], "pathology": ["dlv", "nor"]}),
        ("acdc", {"pathology": ["dcm", "nor"]}),
    ],
)
def test_layout_gives_canonical_subjects(
    tmp_path: Path, layout: str, attributes: dict[str, list[str]]
) -> None:
    root = WRITERS[layout](tmp_path / layout)
    manifest, rejected = imported(layout, root)
    assert rejected.height == 0 and manifest.height == 4
    for column, values in attributes.items():
        assert sorted(manifest[column].unique().to_list()) == values
    row = manifest.row(0, named=True)
    for measure, value in EXPECTED.items():
        assert row[measure] == pytest.approx(value)
    assert row["missing_classes"] == "" and (row["nx"], row["ny"], row["nz"]) == SHAPE
    for phase, radius in (("ed", 5.0), ("es", 3.0)):
        label = np.asanyarray(nib.load(row[f"label_{phase}"]).dataobj)
        assert np.array_equal(label, toy_labels(radius))  # ACDC's reversed labels remapped
        assert nib.load(row[f"image_{phase}"]).shape == SHAPE


def test_sex_and_age_where_the_layout_has_them(tmp_path: Path) -> None:
    mnms1, _ = imported("mnms1", write_mnms1_cohort(tmp_path / "mnms1"))
    assert mnms1["sex"].to_list() == ["male", "male", "female", "female"]
    assert mnms1["age"].to_list() == [40.0, 41.0, 42.0, 43.0]
    acdc, _ = imported("acdc", write_acdc_cohort(tmp_path / "acdc"))
    assert acdc["sex"].null_count() == 4 and acdc["race"].null_count() == 4
    assert acdc["height_cm"].to_list() == [184.0] * 4 and acdc["bmi"][0] == 28.1


def test_conversion_is_reused_until_the_source_changes(tmp_path: Path) -> None:
    root = write_mnms1_cohort(tmp_path / "mnms1", n=1)
    imported("mnms1", root)
    canonical = tmp_path / "canonical" / "A0B0C0" / "sa_ED.nii.gz"
    written = canonical.stat().st_mtime_ns
    imported("mnms1", root)
    assert canonical.stat().st_mtime_ns == written
    source = root / "Training" / "Labeled" / "A0B0C0" / "A0B0C0_sa.nii.gz"
    image = np.asanyarray(nib.load(source).dataobj) + 1
    write_nifti(source, image)
    imported("mnms1", root)
    assert canonical.stat().st_mtime_ns != written


def mnms1_three_dimensional(root: Path) -> tuple[str, str, str]:
    path = next(root.rglob("A1B1C1_sa.nii.gz"))
    write_nifti(path, np.zeros(SHAPE, np.int16))
    return "A1B1C1", "A1B1C1_sa.nii.gz", "expected a 4D cine, found shape (24, 24, 4)"


def mnms1_frame_out_of_range(root: Path) -> tuple[str, str, str]:
    info = root / "mnms_information.csv"
    info.write_text(info.read_text().replace("A1B1C1,Philips,B,2,0,2", "A1B1C1,Philips,B,2,0,7"))
    return "A1B1C1", "A1B1C1_sa.nii.gz", "ES frame 7 is out of range: the subject has frames 0..3"


def mnms1_unknown_sex(root: Path) -> tuple[str, str, str]:
    info = root / "mnms_information.csv"
    info.write_text(info.read_text().replace(",41,M", ",41,X"))
    return "A1B1C1", "mnms_information.csv", "sex 'X' is not M or F"


def mnms1_duplicate_folder(root: Path) -> tuple[str, str, str]:
    copy = root / "Validation" / "A1B1C1"
    copy.mkdir(parents=True)
    for path in next(root.rglob("A1B1C1")).iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return "A1B1C1", "A1B1C1/", "subject id found in folders"


def mnms2_missing_label(root: Path) -> tuple[str, str, str]:
    (root / "002" / "002_SA_ES_gt.nii.gz").unlink()
    return "002", "002_SA_ES_gt.nii.gz", "file is missing"


def acdc_frame_out_of_range(root: Path) -> tuple[str, str, str]:
    (root / "training" / "patient002" / "Info.cfg").write_text(acdc_info("NOR", ed=9))
    return "patient002", "Info.cfg", "ED frame 9 is out of range: the subject has frames 1..4"


def acdc_unparseable_frame_count(root: Path) -> tuple[str, str, str]:
    info = root / "training" / "patient002" / "Info.cfg"
    info.write_text(info.read_text().replace("NbFrame: 4", "NbFrame: four"))
    return "patient002", "Info.cfg", "NbFrame 'four' is not a number"


def acdc_missing_info(root: Path) -> tuple[str, str, str]:
    (root / "training" / "patient002" / "Info.cfg").unlink()
    return "patient002", "Info.cfg", "file is missing"


def acdc_label_outside_set(root: Path) -> tuple[str, str, str]:
    path = root / "training" / "patient002" / "patient002_frame01_gt.nii.gz"
    labels = toy_labels(5.0)
    labels[0, 0, 0] = 5
    write_nifti(path, labels)
    return "patient002", path.name, "unknown label value(s) [5]"


@pytest.mark.parametrize(
    ("layout", "damage"),
    [
        ("mnms1", mnms1_three_dimensional),
        ("mnms1", mnms1_frame_out_of_range),
        ("mnms1", mnms1_unknown_sex),
        ("mnms1", mnms1_duplicate_folder),
        ("mnms2", mnms2_missing_label),
        ("acdc", acdc_frame_out_of_range),
        ("acdc", acdc_missing_info),
        ("acdc", acdc_unparseable_frame_count),
        ("acdc", acdc_label_outside_set),
    ],
)
def test_layout_rejects_bad_subject_with_file_and_cause(
    tmp_path: Path, layout: str, damage
) -> None:
    root = WRITERS[layout](tmp_path / layout)
    subject_id, file, cause = damage(root)
    manifest, rejected = imported(layout, root)
    assert manifest.height == 3 and subject_id not in manifest["subject_id"].to_list()
    assert rejected["subject_id"].to_list() == [subject_id]
    assert rejected["file"][0] == file and cause in rejected["reason"][0]
    # Nothing half-written: a conversion that failed left no folder, not even a staging one.
    assert not list((tmp_path / "canonical").glob(".*"))


@pytest.mark.parametrize(
    ("layout", "file", "header", "cause"),
    [
        (
            "mnms1",
            "mnms_information.csv",
            "External code,Vendor,Age,Sex",
            "lacks required column(s) centre, ed, es",
        ),
        (
            "mnms2",
            "dataset_information.csv",
            "SUBJECT,SEX,AGE,VENDOR",
            "lacks required column(s) subject_code",
        ),
    ],
)
def test_information_file_with_wrong_header(
    tmp_path: Path, layout: str, file: str, header: str, cause: str
) -> None:
    root = WRITERS[layout](tmp_path / layout, n=1)
    (root / file).write_text(header + "\nA,B,1,M\n")
    with pytest.raises(DemographicsError, match=file) as error:
        imported(layout, root)
    assert cause in str(error.value)


def test_mnms1_needs_exactly_one_information_file(tmp_path: Path) -> None:
    root = write_mnms1_cohort(tmp_path / "mnms1", n=1)
    write_csv(root / "other.csv", [{"a": 1}])
    with pytest.raises(DemographicsError, match="found 2 .*set `demographics_file`"):
        imported("mnms1", root)


def test_unknown_layout_is_named() -> None:
    with pytest.raises(ValueError, match="unknown cohort layout 'kaggle'; known: ukbb, mnms1"):
        layout_named("kaggle")
