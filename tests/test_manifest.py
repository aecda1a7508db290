"""Subject validation: each kind of bad input is rejected with its subject, file and cause."""

import gzip
import struct
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.lib.cohort.demographics import DemographicsError, read_demographics_table
from cmrbias_dagster.lib.cohort.importers import CohortOptions, ukbb
from cmrbias_dagster.lib.cohort.importers.layout import SubjectTable
from cmrbias_dagster.lib.cohort.manifest import build_manifest, cohort_listing_version
from tests.toy_cohort import SHAPE, demographics_rows, toy_labels, write_nifti, write_toy_cohort


@pytest.fixture
def toy_root(tmp_path: Path) -> Path:
    return write_toy_cohort(tmp_path / "cohort", demographics_rows(1))


def manifest_of(root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    table = ukbb.read_table(CohortOptions(root))
    return build_manifest(root, table, root.parent / "canonical")


def test_clean_cohort_has_known_volumes(toy_root: Path) -> None:
    manifest, rejected = manifest_of(toy_root)
    assert rejected.height == 0
    assert manifest.height == 6
    voxel_ml = 2 * 2 * 8 / 1000
    lv_ed_voxels = int((toy_labels(5.0) == 1).sum())
    lv_es_voxels = int((toy_labels(3.0) == 1).sum())
    row = manifest.row(0, named=True)
    assert row["lv_edv_ml"] == pytest.approx(lv_ed_voxels * voxel_ml)
    assert row["lv_ef"] == pytest.approx((lv_ed_voxels - lv_es_voxels) / lv_ed_voxels)
    myo_ml = int((toy_labels(5.0) == 2).sum()) * voxel_ml
    assert row["lv_mass_g"] == pytest.approx(myo_ml * 1.05)
    rv_ed, rv_es = int((toy_labels(5.0) == 3).sum()), int((toy_labels(3.0) == 3).sum())
    assert row["rv_ef"] == pytest.approx((rv_ed - rv_es) / rv_ed)
    assert (row["nx"], row["ny"], row["nz"]) == SHAPE
    assert (row["spacing_x"], row["spacing_z"]) == (2.0, 8.0)
    assert row["missing_classes"] == "" and row["labelled_slices_contiguous"]
    assert row["bmi"] == pytest.approx(row["weight_kg"] / (row["height_cm"] / 100) ** 2, abs=0.05)


def corrupt_file(folder: Path) -> str:
    (folder / "sa_ES.nii.gz").write_bytes(gzip.compress(b"not a nifti"))
    return "sa_ES.nii.gz"


def delete_label(folder: Path) -> str:
    (folder / "label_sa_ED.nii.gz").unlink()
    return "label_sa_ED.nii.gz"


def wrong_shape(folder: Path) -> str:
    write_nifti(folder / "label_sa_ES.nii.gz", np.zeros((20, 24, 4), np.uint8))
    return "label_sa_ES.nii.gz"


def wrong_affine(folder: Path) -> str:
    write_nifti(folder / "sa_ES.nii.gz", np.zeros(SHAPE, np.int16), spacing=(2.0, 2.0, 9.0))
    return "sa_ES.nii.gz"


def label_out_of_range(folder: Path) -> str:
    labels = toy_labels(5.0)
    labels[0, 0, 0] = 7
    write_nifti(folder / "label_sa_ED.nii.gz", labels)
    return "label_sa_ED.nii.gz"


def fractional_label(folder: Path) -> str:
    write_nifti(folder / "label_sa_ES.nii.gz", toy_labels(3.0).astype(np.float32) * 0.5)
    return "label_sa_ES.nii.gz"


def nan_intensity(folder: Path) -> str:
    image = np.full(SHAPE, 100.0, np.float32)
    image[3, 3, 1] = np.nan
    write_nifti(folder / "sa_ED.nii.gz", image)
    return "sa_ED.nii.gz"


def inf_intensity(folder: Path) -> str:
    image = np.full(SHAPE, 100.0, np.float32)
    image[3, 3, 1] = np.inf
    write_nifti(folder / "sa_ES.nii.gz", image)
    return "sa_ES.nii.gz"


def zero_spacing(folder: Path) -> str:
    path = folder / "label_sa_ED.nii.gz"
    header = bytearray(gzip.decompress(path.read_bytes()))
    struct.pack_into("<f", header, 76 + 4 * 2, 0.0)  # pixdim[2] of the NIfTI-1 header
    path.write_bytes(gzip.compress(bytes(header)))
    return "label_sa_ED.nii.gz"


def truncated_file(folder: Path) -> str:
    path = folder / "sa_ED.nii.gz"
    path.write_bytes(path.read_bytes()[:-200])
    return "sa_ED.nii.gz"


def empty_label_map(folder: Path) -> str:
    write_nifti(folder / "label_sa_ES.nii.gz", np.zeros(SHAPE, np.uint8))
    return "label_sa_ES.nii.gz"


def four_dimensional(folder: Path) -> str:
    write_nifti(folder / "sa_ED.nii.gz", np.zeros((*SHAPE, 2), np.int16))
    return "sa_ED.nii.gz"


@pytest.mark.parametrize(
    ("damage", "cause"),
    [
        (corrupt_file, "cannot be read"),
        (delete_label, "file is missing"),
        (wrong_shape, "shape"),
        (wrong_affine, "affine differs"),
        (label_out_of_range, "unknown label value(s) [7]"),
        (fractional_label, "not whole numbers"),
        (nan_intensity, "NaN"),
        (four_dimensional, "expected a 3D volume"),
        (inf_intensity, "NaN or infinite"),
        (zero_spacing, "differs from the affine's (2.0, 2.0, 8.0) (a zero or corrupt pixdim)"),
        (truncated_file, "cannot be read"),
        (empty_label_map, "label map is empty"),
    ],
)
def test_bad_subject_is_rejected_with_file_and_cause(toy_root: Path, damage, cause: str) -> None:
    file = damage(toy_root / "TOY002")
    manifest, rejected = manifest_of(toy_root)
    assert manifest.height == 5 and "TOY002" not in manifest["subject_id"].to_list()
    assert rejected.to_dicts() == [
        {"subject_id": "TOY002", "file": file, "reason": rejected["reason"][0]}
    ]
    assert cause in rejected["reason"][0]


@pytest.mark.parametrize(
    ("column", "value", "cause"),
    [
        ("sex", "unknown", "sex 'unknown' is not one of"),
        ("race", "", "race is missing"),
        ("age", "sixty", "age 'sixty' is not a number"),
        ("weight_kg", "-3", "not positive"),
        ("subject_id", "bad id", "id is not safe"),
        ("subject_id", "../TOY003", "id is not safe"),
        ("subject_id", "TOY/003", "id is not safe"),
        ("subject_id", "..", "id is not safe"),
        ("height_cm", "", "height_cm is missing"),
        ("height_cm", "1,70", "height_cm '1,70' is not a number"),
    ],
)
def test_bad_demographics_row_is_rejected(
    tmp_path: Path, column: str, value: str, cause: str
) -> None:
    rows = demographics_rows(1)
    root = write_toy_cohort(tmp_path / "cohort", rows)
    table = read_demographics_table(root / "demographics.csv").with_columns(
        pl.when(pl.col("subject_id") == "TOY003")
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .alias(column)
    )
    manifest, rejected = build_manifest(
        root, SubjectTable(table, ukbb.CANONICAL_FIELDS, "demographics.csv"), tmp_path / "canonical"
    )
    assert manifest.height == 5
    bad_id = value if column == "subject_id" else "TOY003"
    reason = rejected.filter(pl.col("subject_id") == bad_id)["reason"]
    assert reason.len() == 1 and cause in reason[0]


def test_whitespace_and_case_variants_are_accepted(tmp_path: Path) -> None:
    root = write_toy_cohort(tmp_path / "cohort", demographics_rows(1))
    lines = (root / "demographics.csv").read_text().splitlines()
    lines[0] = " Subject_ID , SEX,Race ,age,Height_cm,weight_kg"
    lines[1] = " TOY001 , Female ,WHITE, 61 ,161.0, 71 "
    (root / "demographics.csv").write_text("\n".join(lines) + "\n")
    manifest, rejected = manifest_of(root)
    assert rejected.height == 0
    row = manifest.row(0, named=True)
    assert (row["subject_id"], row["sex"], row["race"], row["age"]) == (
        "TOY001",
        "female",
        "white",
        61,
    )


def test_optional_fields_and_attribute_columns(tmp_path: Path) -> None:
    rows = [
        {"subject_id": row["subject_id"], "sex": row["sex"], "age": row["age"], "site": "North"}
        for row in demographics_rows(1)
    ]
    root = write_toy_cohort(tmp_path / "cohort", rows)
    table = ukbb.read_table(CohortOptions(root, required_fields=("sex", "age")))
    manifest, rejected = build_manifest(root, table, tmp_path / "canonical")
    assert rejected.height == 0 and manifest["site"].to_list() == ["north"] * 6
    assert manifest.select("race", "height_cm", "bmi").null_count().row(0) == (6, 6, 6)
    assert manifest.schema["race"] == pl.String and manifest.schema["bmi"] == pl.Float64


def test_negative_pixdim_is_read_as_its_magnitude(toy_root: Path) -> None:
    # NIfTI spacings are magnitudes (the sign of an axis lives in the affine); nibabel reads a
    # negative pixdim as its absolute value, which the affine confirms.
    for name in ("sa_ED.nii.gz", "label_sa_ED.nii.gz"):
        path = toy_root / "TOY002" / name
        header = bytearray(gzip.decompress(path.read_bytes()))
        struct.pack_into("<f", header, 76 + 4 * 3, -8.0)
        path.write_bytes(gzip.compress(bytes(header)))
    manifest, rejected = manifest_of(toy_root)
    assert rejected.height == 0
    volumes = manifest.filter(pl.col("subject_id").is_in(["TOY001", "TOY002"]))["lv_edv_ml"]
    assert volumes[0] == volumes[1] and manifest["spacing_z"][1] == 8.0


def test_missing_class_is_reported_not_rejected(toy_root: Path) -> None:
    labels = toy_labels(3.0)
    labels[labels == 3] = 0
    write_nifti(toy_root / "TOY004" / "label_sa_ES.nii.gz", labels)
    manifest, rejected = manifest_of(toy_root)
    assert rejected.height == 0
    gaps = dict(zip(manifest["subject_id"], manifest["missing_classes"], strict=True))
    assert gaps["TOY004"] == "RVBP (ES)" and gaps["TOY001"] == ""


def test_folder_without_demographics_and_row_without_folder(toy_root: Path) -> None:
    (toy_root / "TOY001").rename(toy_root / "STRAY01")
    manifest, rejected = manifest_of(toy_root)
    reasons = dict(zip(rejected["subject_id"], rejected["reason"], strict=True))
    assert reasons == {
        "STRAY01": "subject has no demographics row",
        "TOY001": "no image folder for this subject",
    }
    assert manifest.height == 5


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (
            "subject_id,sex,race\nA,male,white\n",
            "lacks required column(s) age, height_cm, weight_kg",
        ),
        (
            "subject_id,sex,race,age,height_cm,weight_kg\nA,male,white,1,2,3\nA,male,white,1,2,3\n",
            "more than once: A",
        ),
        (
            "subject_id,sex,race,age,height_cm,weight_kg\nA,male,white,1,2,3\n"
            " A ,male,white,1,2,3\n",
            "more than once: A",
        ),
        ("id,gender,race,age,height,weight\nA,male,white,1,2,3\n", "lacks required column(s) "),
    ],
)
def test_malformed_demographics_file_is_a_clear_error(
    tmp_path: Path, content: str, cause: str
) -> None:
    path = tmp_path / "demographics.csv"
    path.write_text(content)
    with pytest.raises(DemographicsError, match=r"demographics file .*demographics.csv") as error:
        read_demographics_table(path)
    assert cause in str(error.value)


def test_missing_demographics_file(tmp_path: Path) -> None:
    with pytest.raises(DemographicsError, match="does not exist"):
        read_demographics_table(tmp_path / "nowhere.csv")


def test_listing_version_changes_with_content(toy_root: Path) -> None:
    before = cohort_listing_version(toy_root)
    assert before == cohort_listing_version(toy_root)
    (toy_root / "TOY001" / "sa_ED.nii.gz").write_bytes(b"changed, longer than before" * 100)
    assert cohort_listing_version(toy_root) != before
    assert cohort_listing_version(toy_root / "absent") == "absent"
