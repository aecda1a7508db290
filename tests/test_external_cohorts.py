"""External test cohorts through the real assets: a scanner-shifted synthetic cohort and the
shipped Sunnybrook studies (UK Biobank layout, LV labels only, all men, race unrecorded),
segmented by the shared tiny trained partition's ensemble, beside the study's own test set."""

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import yaml

from cmrbias_dagster.assets import analysis, external_analysis
from cmrbias_dagster.assets.evaluation import evaluation_assets
from cmrbias_dagster.assets.external import external_assets, predictions_folder
from cmrbias_dagster.definitions import build_definitions
from cmrbias_dagster.lib.cohort.synthetic import CohortSpec, write_cohort
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.evaluation.predictions import load_labels
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, StudyResource, build_resources
from tests.conftest import FOLD_ASSETS, PLANNED_PARTITION
from tests.test_sunnybrook import SUNNYBROOK

SHIFT = {"contrast_gamma": 1.3, "noise_scale": 1.5, "pixel_mm": 3.5}
EXTERNAL = ["external_subject_manifest"]
PARTITIONED = ["external_ensemble_prediction", "external_segmentation_metrics"]
TABLES = ["test_cohort_median_dsc", "test_cohort_gap_verdicts", "test_cohort_group_comparisons"]


@pytest.fixture(scope="module")
def shifted_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Other people (another seed) from another scanner: one subject per race x sex."""
    design = load_study_design(DEFAULT_STUDY_FILE)
    block = design.profile("tiny").synthetic_cohort.as_mapping()
    block["subjects"] = {race: {"female": 1, "male": 1} for race in ("white", "black", "asian")}
    spec = CohortSpec.from_mapping({**block, "scanner": SHIFT}, seed=design.seed + 1)
    return write_cohort(spec, tmp_path_factory.mktemp("shifted") / "synthetic_tiny_shifted")


def external_design(folder: Path, shifted: Path) -> Path:
    """data/study.yaml with the shifted cohort and Sunnybrook as external test sets."""
    design = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())
    design["external_test"] = {
        "scanner_shift": {"root": str(shifted), "layout": "ukbb"},
        "sunnybrook": {
            "root": str(SUNNYBROOK),
            "layout": "ukbb",
            "required_fields": ["sex", "age"],
        },
    }
    path = folder / "study_external.yaml"
    path.write_text(yaml.safe_dump(design))
    return path


@pytest.fixture(scope="module")
def external_run(planned_study, evaluated, shifted_cohort, tmp_path_factory):
    """The external assets on the shared trained partition, then the side-by-side tables."""
    study_file = external_design(tmp_path_factory.mktemp("design"), shifted_cohort)
    shared = planned_study.resources["study"]
    study = StudyResource(study_file=str(study_file), profile="tiny", work_dir=shared.work_dir)
    resources = {**planned_study.resources, "study": study}
    assets = [
        *planned_study.assets,
        *FOLD_ASSETS,
        *evaluation_assets(2),
        *dg.load_assets_from_modules([analysis]),
        *external_assets(2),
        *dg.load_assets_from_modules([external_analysis]),
    ]
    run = {"resources": resources, "instance": planned_study.instance}
    manifest = dg.materialize(assets, selection=EXTERNAL, **run)
    predicted = dg.materialize(
        assets, selection=PARTITIONED, partition_key=PLANNED_PARTITION, **run
    )
    tables = dg.materialize(
        assets, selection=["subject_scores", "external_subject_scores", *TABLES], **run
    )
    return study, manifest, predicted, tables


def test_both_cohorts_are_imported_with_their_own_attributes(external_run) -> None:
    manifest = external_run[1].output_for_node("external_subject_manifest")
    counts = dict(manifest.group_by("test_cohort").len().iter_rows())
    assert counts == {"scanner_shift": 6, "sunnybrook": 5}
    sunnybrook = manifest.filter(pl.col("test_cohort") == "sunnybrook")
    assert sunnybrook["race"].null_count() == 5 and set(sunnybrook["sex"]) == {"male"}
    shifted = manifest.filter(pl.col("test_cohort") == "scanner_shift")
    assert shifted["spacing_x"].to_list() == pytest.approx([3.5] * 6)


def test_external_metrics_are_against_the_external_truth(external_run, planned_study) -> None:
    study, _, predicted, _ = external_run
    checks = {c.check_name: c for c in predicted.get_asset_check_evaluations()}
    assert checks["prediction_per_external_case"].passed
    metrics = predicted.output_for_node("external_segmentation_metrics")
    manifest = external_run[1].output_for_node("external_subject_manifest")
    assert metrics.height == 11 * 2 * 3
    # The true volume of each row is its subject's own label map's, not an internal subject's.
    row = metrics.filter(
        (pl.col("test_cohort") == "sunnybrook")
        & (pl.col("class") == "LVBP")
        & (pl.col("phase") == "ED")
    ).row(0, named=True)
    subject = manifest.filter(pl.col("subject_id") == row["subject_id"]).row(0, named=True)
    assert row["true_ml"] == pytest.approx(subject["lv_edv_ml"], rel=1e-3)
    partition = study.partition(PLANNED_PARTITION)
    folder = predictions_folder(study, partition, "sunnybrook")
    predicted_labels = load_labels(folder / f"{row['subject_id']}_ED.nii.gz")
    assert predicted_labels.shape == load_labels(Path(subject["label_ed"])).shape


def test_unlabelled_classes_are_undefined_not_scored(external_run) -> None:
    metrics = external_run[2].output_for_node("external_segmentation_metrics")
    sunnybrook = metrics.filter(pl.col("test_cohort") == "sunnybrook")
    rv = sunnybrook.filter(pl.col("class") == "RVBP")
    assert rv["dice"].null_count() == rv.height == 10 and (rv["true_ml"] == 0).all()
    lv = sunnybrook.filter(pl.col("class") == "LVBP")
    assert lv["dice"].null_count() == 0
    # race_black compares black and white: Sunnybrook records no race, so no group.
    assert sunnybrook["group"].null_count() == sunnybrook.height
    shifted = metrics.filter(pl.col("test_cohort") == "scanner_shift")
    assert shifted["dice"].null_count() == 0 and np.isfinite(shifted["dice"].to_numpy()).all()
    assert set(shifted["group"]) == {"black", "white", None}


def test_the_side_by_side_table_has_every_test_cohort(external_run) -> None:
    tables = external_run[3]
    median = tables.output_for_node("test_cohort_median_dsc")
    overall = median.filter((pl.col("class") == "overall") & (pl.col("group") == "all"))
    assert set(overall["test_cohort"]) == {"internal", "scanner_shift", "sunnybrook"}
    shifted = overall.filter(pl.col("test_cohort") == "scanner_shift").row(0, named=True)
    assert np.isfinite(shifted["median_dsc"]) and shifted["n"] == 6
    sunnybrook = median.filter(pl.col("test_cohort") == "sunnybrook")
    assert set(sunnybrook["group"]) == {"all"}  # no race recorded: no group row
    assert "RVBP" not in set(sunnybrook["class"])
    internal = overall.filter(pl.col("test_cohort") == "internal").row(0, named=True)
    scores = tables.output_for_node("subject_scores")
    own = scores.filter(pl.col("class") == "overall")["dsc"].median()
    assert internal["median_dsc"] == pytest.approx(own)


def test_gaps_are_read_only_where_a_cohort_holds_both_groups(external_run) -> None:
    tables = external_run[3]
    gaps = tables.output_for_node("test_cohort_gap_verdicts")
    assert {"internal", "scanner_shift"} <= set(gaps["test_cohort"])
    assert "sunnybrook" not in set(gaps["test_cohort"])
    comparisons = tables.output_for_node("test_cohort_group_comparisons")
    assert set(comparisons["test_cohort"]) == {"internal", "scanner_shift"}
    exported = external_run[0].tables_folder() / "test_cohort_median_dsc.csv"
    assert set(pl.read_csv(exported)["test_cohort"]) == {"internal", "scanner_shift", "sunnybrook"}


def test_definitions_have_the_external_assets_only_when_the_design_names_one(
    tmp_path, shifted_cohort
) -> None:
    def definitions(study_file: Path) -> dg.Definitions:
        resources = build_resources("tiny", tmp_path, shifted_cohort, study_file, device="cpu")
        return build_definitions(resources, 2)

    def keys(defs: dg.Definitions) -> set[str]:
        return {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}

    with_external = definitions(external_design(tmp_path, shifted_cohort))
    without = definitions(DEFAULT_STUDY_FILE)
    added = {*EXTERNAL, *PARTITIONED, "external_subject_scores", *TABLES, "test_cohort_dsc_figure"}
    assert keys(with_external) - keys(without) == added
    assert not keys(without) & added
    job = with_external.resolve_job_def("partition_job")
    assert {"external_ensemble_prediction", "external_segmentation_metrics"} <= {
        key.to_user_string() for key in job.asset_layer.executable_asset_keys
    }
    # The report waits for the external tables exactly when the design (not the environment's
    # default design) has them.
    assert report_upstream(with_external) & added == set(EXTERNAL_REPORT_INPUTS)
    assert not report_upstream(without) & added


EXTERNAL_REPORT_INPUTS = (
    "test_cohort_median_dsc",
    "test_cohort_gap_verdicts",
    "test_cohort_dsc_figure",
)


def report_upstream(defs: dg.Definitions) -> set[str]:
    node = defs.resolve_asset_graph().get(dg.AssetKey("study_report"))
    return {key.to_user_string() for key in node.parent_keys}
