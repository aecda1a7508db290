"""Real images: the five Sunnybrook studies in the UK Biobank layout (LV labels only).

Expected volumes are read from the per-subject table of the cohort's own README.md, which computed
them from the same label files (voxel counts x voxel volume; LV mass = ED myocardium x 1.05 g/mL).
"""

from pathlib import Path

import polars as pl
import pytest

from cmrbias_dagster.lib.cohort.importers import CohortOptions, ukbb
from cmrbias_dagster.lib.cohort.manifest import build_manifest
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.splits.sampling import InfeasibleDesignError, draw_test_set

# Shipped with the tests (CC0; tests/data/sunnybrook/README.md says how it was made).
SUNNYBROOK = Path(__file__).resolve().parent / "data" / "sunnybrook"


def readme_table() -> dict[str, dict[str, float]]:
    """EDV, ESV, EF (%) and LVM (g) per subject from the README's 'Per-subject table'."""
    lines = (SUNNYBROOK / "README.md").read_text().split("## Per-subject table")[1].splitlines()
    rows = [line.strip("|").split("|") for line in lines if line.startswith("| SCD")]
    header = [cell.strip() for cell in lines[1].strip("|").split("|")]
    columns = {name: header.index(name) for name in ("EDV (mL)", "ESV (mL)", "EF (%)")}
    columns["LVM"] = next(i for i, name in enumerate(header) if name.startswith("LVM ED"))
    return {
        row[0].strip(): {name: float(row[index]) for name, index in columns.items()} for row in rows
    }


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    options = CohortOptions(SUNNYBROOK, required_fields=("sex", "age"))
    canonical = tmp_path_factory.mktemp("canonical")
    manifest, rejected = build_manifest(SUNNYBROOK, ukbb.read_table(options), canonical)
    assert rejected.height == 0
    return manifest


def test_volumes_and_ef_match_the_readme(manifest: pl.DataFrame) -> None:
    expected = readme_table()
    assert sorted(expected) == manifest["subject_id"].to_list()
    for row in manifest.iter_rows(named=True):
        table = expected[row["subject_id"]]
        assert row["lv_edv_ml"] == pytest.approx(table["EDV (mL)"], abs=0.05)
        assert row["lv_esv_ml"] == pytest.approx(table["ESV (mL)"], abs=0.05)
        assert 100 * row["lv_ef"] == pytest.approx(table["EF (%)"], abs=0.05)
        assert row["lv_mass_g"] == pytest.approx(table["LVM"], abs=0.05)


def test_missing_classes_and_absent_fields_are_reported(manifest: pl.DataFrame) -> None:
    assert set(manifest["missing_classes"]) == {"LVM (ES), RVBP (ED+ES)"}
    assert manifest["rv_edv_ml"].to_list() == [0.0] * 5
    assert manifest["race"].null_count() == 5 and manifest["bmi"].null_count() == 5
    assert set(manifest["pathology"]) == {"heart failure with infarct"}
    assert manifest["age"].to_list() == [53.0, 48.0, 79.0, 45.0, 60.0]


def test_experiment_needing_rv_says_why_subjects_are_unusable(manifest: pl.DataFrame) -> None:
    experiment = Experiment(
        "age_check",
        "pathology",
        ("heart failure with infarct", "normal"),
        "sex",
        ("male", "female"),
    )
    with pytest.raises(InfeasibleDesignError) as error:
        draw_test_set(manifest, experiment, 4, seed=1)
    message = str(error.value)
    assert "pathology=heart failure with infarct, sex=male: needed 1, available 0" in message
    unusable = "5 subject(s) of these strata are unusable: SCD0000101 lacks LVM (ES), RVBP (ED+ES);"
    assert unusable in message
