"""Unit tests of the embedded synthetic cohort (pure library, no Dagster)."""

from __future__ import annotations

import dataclasses
import json

import nibabel as nib
import numpy as np
import polars as pl
import pytest
import yaml
from scipy.ndimage import binary_dilation

from cmrbias_dagster import cli
from cmrbias_dagster.lib.cohort.synthetic import (
    DEFAULT_EFFECTS,
    DEMOGRAPHIC_COLUMNS,
    SUBJECT_FILES,
    CohortSpec,
    GroupEffects,
    generate_subject,
    sample_demographics,
    write_cohort,
)

TINY = {"matrix": 48, "pixel_mm": 3.0, "slices": 8, "slice_gap_mm": 10.0}  # 80 mm: base to apex


def tiny_spec(counts: dict | None = None, seed: int = 7, effects: dict | None = None) -> CohortSpec:
    subjects = counts or {
        "white": {"female": 2, "male": 2},
        "black": {"female": 1, "male": 1},
        "asian": {"female": 1, "male": 1},
    }
    mapping = {**TINY, "subjects": subjects}
    if effects is not None:
        mapping["effects"] = effects
    return CohortSpec.from_mapping(mapping, seed=seed)


def first_row(spec: CohortSpec, race: str = "white", sex: str = "male") -> dict:
    return sample_demographics(spec).filter(race=race, sex=sex).row(0, named=True)


def voxel_ml(spec: CohortSpec) -> float:
    return spec.pixel_mm**2 * spec.slice_gap_mm / 1000


@pytest.fixture(scope="module")
def cohort40() -> tuple[CohortSpec, list]:
    spec = tiny_spec({"white": {"female": 20, "male": 20}})
    rows = sample_demographics(spec).to_dicts()
    return spec, [(row, generate_subject(row, spec)) for row in rows]


def test_same_seed_same_arrays_and_other_seed_differs():
    spec = tiny_spec()
    row = first_row(spec)
    a, b = generate_subject(row, spec), generate_subject(row, spec)
    other = generate_subject(row, dataclasses.replace(spec, seed=8))
    for phase in ("ED", "ES"):
        np.testing.assert_array_equal(a.images[phase], b.images[phase])
        np.testing.assert_array_equal(a.labels[phase], b.labels[phase])
        assert not np.array_equal(a.images[phase], other.images[phase])
    assert sample_demographics(spec).equals(sample_demographics(spec))
    assert not sample_demographics(spec).equals(
        sample_demographics(dataclasses.replace(spec, seed=8))
    )


def test_subject_alone_equals_subject_in_written_cohort(tmp_path):
    spec = tiny_spec()
    out = write_cohort(spec, tmp_path / "cohort")
    row = sample_demographics(spec).row(3, named=True)
    alone = generate_subject(row, spec)
    for phase in ("ED", "ES"):
        stored = nib.load(out / row["subject_id"] / f"sa_{phase}.nii.gz")
        np.testing.assert_array_equal(np.asarray(stored.dataobj), alone.images[phase])


def test_label_geometry(cohort40):
    spec, subjects = cohort40
    for _, subject in subjects:
        ed, es = subject.labels["ED"], subject.labels["ES"]
        assert set(np.unique(ed)) <= {0, 1, 2, 3} and ed.dtype == np.uint8
        assert not ed[[0, -1]].any() and not ed[:, [0, -1]].any(), "heart leaves the field of view"
        for k in range(1, spec.slices - 2):
            lv = ed[:, :, k] == 1
            grown = binary_dilation(lv)
            assert np.isin(ed[:, :, k][grown], (1, 2)).all(), "myocardium must enclose the cavity"
            rv = ed[:, :, k] == 3
            assert not (grown & rv).any(), "RV must not touch the LV cavity"
            if rv.any():
                assert (binary_dilation(rv) & (ed[:, :, k] == 2)).any(), "RV attaches to the septum"
        assert not (ed[:, :, -1] == 3).any(), "no RV in the most apical slice"
        edv, esv = (ed == 1).sum(), (es == 1).sum()
        assert esv < edv and 0.4 <= 1 - esv / edv <= 0.8


def test_lv_volumes_physiological_and_larger_in_men(cohort40):
    spec, subjects = cohort40
    edv = {"female": [], "male": []}
    for row, subject in subjects:
        edv[row["sex"]].append((subject.labels["ED"] == 1).sum() * voxel_ml(spec))
    assert 60 < np.mean(edv["female"]) < np.mean(edv["male"]) < 200


def test_demographics_follow_table1_directions():
    spec = tiny_spec({r: {"female": 60, "male": 60} for r in ("white", "black", "asian")})
    table = sample_demographics(spec)
    assert table.columns == list(DEMOGRAPHIC_COLUMNS)
    assert table["subject_id"].to_list() == [f"SYN{i:05d}" for i in range(1, 361)]
    numbers = pl.col("age", "height_cm", "weight_kg", "bmi")
    by_sex = table.group_by("sex").agg(numbers.mean())
    by_race = table.group_by("race").agg(numbers.mean())

    def mean(frame: pl.DataFrame, key: str, value: str, column: str) -> float:
        return frame.filter(pl.col(key) == value)[column].item()

    assert mean(by_sex, "sex", "male", "height_cm") > mean(by_sex, "sex", "female", "height_cm") + 9
    assert mean(by_sex, "sex", "male", "weight_kg") > mean(by_sex, "sex", "female", "weight_kg") + 8
    assert (
        mean(by_race, "race", "black", "weight_kg")
        > mean(by_race, "race", "asian", "weight_kg") + 5
    )
    assert mean(by_race, "race", "white", "age") > mean(by_race, "race", "black", "age") + 3
    assert mean(by_race, "race", "black", "bmi") > mean(by_race, "race", "asian", "bmi") + 1.5
    bmi = table["weight_kg"] / (table["height_cm"] / 100) ** 2
    assert ((bmi - table["bmi"]).abs() <= 0.051).all()


def test_white_is_neutral_and_other_groups_differ():
    assert DEFAULT_EFFECTS["white"] == GroupEffects()
    assert DEFAULT_EFFECTS["black"] != GroupEffects() != DEFAULT_EFFECTS["asian"]
    assert DEFAULT_EFFECTS["black"] != DEFAULT_EFFECTS["asian"]


@pytest.mark.parametrize(
    ("knob", "value"), [("epicardial_fat", 1.0), ("myocardium_intensity", 0.2)]
)
def test_knob_brightens_its_tissue(knob, value):
    plain = tiny_spec(effects={})
    planted = tiny_spec(effects={"white": {knob: value}})
    row = first_row(plain)
    a, b = generate_subject(row, plain), generate_subject(row, planted)
    labels = a.labels["ED"]
    np.testing.assert_array_equal(labels, b.labels["ED"])  # appearance knobs leave labels alone
    myo = labels == 2
    if knob == "epicardial_fat":
        region = binary_dilation(labels > 0, iterations=2) & (labels == 0)
    else:
        region = myo
    assert b.images["ED"][region].mean() > a.images["ED"][region].mean() + 20


def test_wall_thickness_scale_adds_myocardium():
    plain, thick = (
        tiny_spec(effects={}),
        tiny_spec(effects={"white": {"wall_thickness_scale": 1.5}}),
    )
    row = first_row(plain)
    a, b = generate_subject(row, plain), generate_subject(row, thick)
    assert (b.labels["ED"] == 2).sum() > 1.3 * (a.labels["ED"] == 2).sum()
    # The cavity is unchanged; the heart re-centres slightly, so allow pixelation noise.
    assert abs((b.labels["ED"] == 1).sum() / (a.labels["ED"] == 1).sum() - 1) < 0.05


def test_trabeculation_darkens_the_endocardial_border():
    plain, trabeculated = (
        tiny_spec(effects={}),
        tiny_spec(effects={"white": {"trabeculation": 1.0}}),
    )
    row = first_row(plain)
    a, b = generate_subject(row, plain), generate_subject(row, trabeculated)
    lv = a.labels["ED"] == 1
    border = lv & binary_dilation(~lv)
    assert b.images["ED"][border].mean() < a.images["ED"][border].mean() - 20


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"subjects": {"martian": {"female": 1}}}, "unknown race"),
        ({"subjects": {"white": {"female": -1}}}, "not a count"),
        ({"matrix": 8.5}, "matrix"),
        ({"pixel_mm": 1.0}, "field of view"),
        ({"effects": {"black": {"glow": 1.0}}}, "unknown knob"),
        ({"effects": {"black": {"epicardial_fat": 3.0}}}, "outside"),
    ],
)
def test_bad_spec_values_raise(change, message):
    mapping = {**TINY, "subjects": {"white": {"female": 1, "male": 1}, "black": {"male": 1}}}
    with pytest.raises(ValueError, match=message):
        CohortSpec.from_mapping({**mapping, **change}, seed=1)


def test_written_layout(tmp_path):
    spec = tiny_spec()
    out = write_cohort(spec, tmp_path / "cohort")
    demographics = pl.read_csv(out / "demographics.csv")
    assert demographics.columns == list(DEMOGRAPHIC_COLUMNS) and demographics.height == 8
    assert json.loads((out / "COHORT.json").read_text())["seed"] == spec.seed
    for subject_id in demographics["subject_id"]:
        assert sorted(p.name for p in (out / subject_id).iterdir()) == sorted(SUBJECT_FILES)
    image = nib.load(out / subject_id / "sa_ED.nii.gz")
    label = nib.load(out / subject_id / "label_sa_ES.nii.gz")
    assert image.header.get_zooms() == (3.0, 3.0, 10.0)
    assert image.header.get_xyzt_units()[0] == "mm"
    assert image.get_data_dtype() == np.int16 and label.get_data_dtype() == np.uint8
    assert image.shape == (48, 48, 8)
    assert 500 < np.asarray(image.dataobj).max() < 2000
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"]


def test_rewrite_replaces_atomically(tmp_path):
    out = write_cohort(tiny_spec(), tmp_path / "cohort")
    first = (out / "demographics.csv").read_text()
    write_cohort(tiny_spec(seed=99), out)
    assert (out / "demographics.csv").read_text() != first
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"]


def test_cli_generate_cohort(tmp_path, capsys):
    study = {
        "seed": 3,
        "profiles": {
            "tiny": {
                "synthetic_cohort": {
                    **TINY,
                    "subjects": {
                        "white": {"female": 1, "male": 1},
                        "asian": {"female": 1, "male": 1},
                    },
                    "effects": {"asian": {"epicardial_fat": 0.8}},
                }
            }
        },
    }
    study_path = tmp_path / "study.yaml"
    study_path.write_text(yaml.safe_dump(study))
    out = tmp_path / "raw" / "synthetic_tiny"
    argv = [
        "generate-cohort",
        "--profile",
        "tiny",
        "--out",
        str(out),
        "--study",
        str(study_path),
        "--workers",
        "1",
    ]
    assert cli.main(argv) == 0
    assert len(pl.read_csv(out / "demographics.csv")) == 4
    assert (
        json.loads((out / "COHORT.json").read_text())["effects"]["asian"]["epicardial_fat"] == 0.8
    )
    stamp = (out / "COHORT.json").stat().st_mtime_ns
    assert cli.main(argv) == 0 and "nothing to do" in capsys.readouterr().out
    assert (out / "COHORT.json").stat().st_mtime_ns == stamp
    assert cli.main([*argv, "--force"]) == 0
    assert (
        cli.main(
            ["generate-cohort", "--profile", "nope", "--out", str(out), "--study", str(study_path)]
        )
        == 2
    )


def test_cli_refuses_a_misspelt_synthetic_cohort_key(tmp_path, capsys):
    block = {**TINY, "subjects": {"white": {"female": 1, "male": 1}}, "pixelmm": 2.0}
    study = {"seed": 3, "profiles": {"tiny": {"synthetic_cohort": block}}}
    study_path = tmp_path / "study.yaml"
    study_path.write_text(yaml.safe_dump(study))
    argv = ["generate-cohort", "--profile", "tiny", "--out", str(tmp_path / "out")]
    assert cli.main([*argv, "--study", str(study_path)]) == 2
    assert "pixelmm" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
