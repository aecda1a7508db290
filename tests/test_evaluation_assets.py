"""The fold ensemble on the test set, its metrics and clinical measures, from trained folds."""

import nibabel as nib
import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.lib.plots import figure_names
from tests.conftest import PLANNED_PARTITION


def test_every_test_case_is_predicted_in_its_own_geometry(planned_study, evaluated) -> None:
    manifest = planned_study.result.output_for_node("training_split")  # any table with subjects
    study = planned_study.resources["study"]
    folder = study.predictions_folder(study.partition(PLANNED_PARTITION))
    predictions = sorted(p.name for p in folder.glob("*.nii.gz"))
    assert len(predictions) == 16  # 8 test subjects x ED/ES
    test_ids = {name.rsplit("_", 1)[0] for name in predictions}
    assert not test_ids & set(manifest["subject_id"])
    checks = {c.check_name: c for c in evaluated.get_asset_check_evaluations()}
    assert checks["prediction_per_test_case"].passed
    metadata = evaluated.asset_materializations_for_node("ensemble_prediction")[0].metadata
    assert metadata["cases"].value == 16 and len(metadata["fold_mean_dice"].value) == 2
    assert metadata["montage"].value.startswith("![test cases](data:image/png;base64,")
    image = nib.load(
        planned_study.resources["cohort"].root_path
        / predictions[0].rsplit("_", 1)[0]
        / f"sa_{predictions[0].rsplit('_', 1)[1].removesuffix('.nii.gz')}.nii.gz"
    )
    predicted = nib.load(folder / predictions[0])
    assert predicted.shape == image.shape and np.allclose(predicted.affine, image.affine)
    assert set(np.unique(np.asanyarray(predicted.dataobj))) <= {0, 1, 2, 3}


def test_metrics_rows_cover_subject_phase_and_class(evaluated) -> None:
    metrics = evaluated.output_for_node("segmentation_metrics")
    assert metrics.height == 8 * 2 * 3
    assert set(metrics["class"]) == {"LVBP", "LVM", "RVBP"}
    assert metrics.group_by("group").len().sort("group")["len"].to_list() == [24, 24]
    assert metrics.filter(pl.col("distances_defined"))["hd95_mm"].is_nan().sum() == 0
    assert metrics["dice"].is_between(0, 1).all()
    assert (metrics["experiment"].unique().to_list(), metrics["ratio"].unique().to_list()) == (
        ["race_black"],
        [25],
    )
    metadata = evaluated.asset_materializations_for_node("segmentation_metrics")[0].metadata
    assert "| black |" in metadata["median_overall_dsc_by_group"].value


def test_clinical_measures_are_prediction_minus_truth(evaluated) -> None:
    table = evaluated.output_for_node("clinical_measures")
    assert table.height == 8
    row = table.row(0, named=True)
    assert row["lv_edv_ml_diff"] == pytest.approx(row["lv_edv_ml_pred"] - row["lv_edv_ml_true"])
    assert row["lv_mass_g_true"] > 0


def test_the_ensemble_averages_the_folds_softmax_probabilities(planned_study, evaluated) -> None:
    """The prediction on disk is argmax(mean of the folds' probabilities), largest component
    kept per class, with each fold's probabilities computed independently by nnU-Net's own
    single-array prediction; and it is not simply one fold's."""
    from cmrbias_dagster.lib.evaluation.calibration import case_calibration, read_calibration
    from cmrbias_dagster.lib.evaluation.postprocess import keep_largest_component
    from cmrbias_dagster.lib.nnunet.fold_records import trainer_folder
    from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
    from tests.fold_probabilities import fold_probabilities

    study = planned_study.resources["study"]
    partition = study.partition(PLANNED_PARTITION)
    folder = study.predictions_folder(partition)
    root = planned_study.resources["cohort"].root_path
    differs_from_fold_0 = False
    recorded = read_calibration(folder)
    for prediction in sorted(folder.glob("*_E[DS].nii.gz"))[:4]:
        subject, phase = prediction.name.removesuffix(".nii.gz").rsplit("_", 1)
        folds = run_in_fresh_process(
            fold_probabilities,
            study.nnunet_environment(),
            partition.dataset,
            [0, 1],
            root / subject / f"sa_{phase}.nii.gz",
            study.settings().prediction,
            trainer_folder(partition.training),
        )
        averaged = np.argmax((folds[0] + folds[1]) / 2, axis=0).astype(np.uint8)
        expected = keep_largest_component(averaged)
        written = np.asanyarray(nib.load(prediction).dataobj).astype(np.uint8)
        # nnU-Net's probabilities are in its (z, y, x) order; the NIfTI is (x, y, z).
        assert np.array_equal(written, expected.transpose(2, 1, 0)), prediction.name
        # Its calibration records are those of the same averaged probabilities and the truth.
        label = nib.load(root / subject / f"label_sa_{phase}.nii.gz")
        truth = np.asanyarray(label.dataobj).astype(np.uint8).transpose(2, 1, 0)
        spacing = tuple(float(z) for z in label.header.get_zooms()[:3])[::-1]
        records = recorded.filter(pl.col("case_id") == f"{subject}_{phase}")
        for record, row in zip(
            case_calibration((folds[0] + folds[1]) / 2, truth, spacing),
            records.iter_rows(named=True),
            strict=True,
        ):
            assert row["class"] == record.scope and row["band_voxels"] == record.band_voxels
            assert row["bin_count"] == record.bins.count.tolist()
            for metric in ("ece", "brier", "entropy"):
                assert row[metric] == pytest.approx(getattr(record, metric), rel=1e-5), metric
        fold_0 = keep_largest_component(np.argmax(folds[0], axis=0).astype(np.uint8))
        differs_from_fold_0 |= not np.array_equal(written, fold_0.transpose(2, 1, 0))
    assert differs_from_fold_0, "every case equals fold 0 alone: the test could not tell"


@pytest.fixture(scope="module")
def calibrated(planned_study, evaluated):
    """The evaluated partition's calibration records, their group table and diagrams."""
    import dagster as dg

    from cmrbias_dagster.assets import analysis, beyond_the_paper, figures
    from cmrbias_dagster.assets.evaluation import evaluation_assets
    from tests.conftest import FOLD_ASSETS

    assets = [*planned_study.assets, *FOLD_ASSETS, *evaluation_assets(2)]
    partition = dg.materialize(
        assets,
        selection=["case_calibration"],
        partition_key=PLANNED_PARTITION,
        resources=planned_study.resources,
        instance=planned_study.instance,
    )
    analysed = dg.materialize(
        [*assets, *dg.load_assets_from_modules([analysis, beyond_the_paper, figures])],
        selection=["calibration_by_group", "reliability_figure"],
        resources=planned_study.resources,
        instance=planned_study.instance,
    )
    return partition, analysed


def test_calibration_records_cover_every_test_case_and_class(calibrated) -> None:
    table = calibrated[0].output_for_node("case_calibration")
    assert table.height == 8 * 2 * 4  # subjects x phases x (overall and three classes)
    assert set(table["class"]) == {"overall", "LVBP", "LVM", "RVBP"}
    assert table.group_by("group").len().sort("group")["len"].to_list() == [32, 32]
    assert (table["band_voxels"] > 0).all()
    assert table["ece"].is_between(0, 1).all() and table["brier"].is_between(0, 2).all()
    assert (table["bin_count"].list.sum() == table["band_voxels"]).all()
    assert (table["bin_count"].list.len() == 15).all()


def test_calibration_by_group_reads_the_records_back_from_duckdb(planned_study, calibrated) -> None:
    table = calibrated[1].output_for_node("calibration_by_group")
    overall = table.filter(pl.col("class") == "overall")
    assert sorted(overall["group"].to_list()) == ["black", "gap", "white"]
    by_group = {row["group"]: row for row in overall.iter_rows(named=True)}
    assert by_group["gap"]["ece"] == pytest.approx(
        by_group["black"]["ece"] - by_group["white"]["ece"]
    )
    for row in by_group.values():
        assert np.isfinite([row["ece_ci_low"], row["ece_ci_high"]]).all()
        assert row["ece_ci_low"] <= row["ece_ci_high"]
    study = planned_study.resources["study"]
    assert (study.tables_folder() / "calibration_by_group.csv").is_file()
    assert study.figure_file(figure_names.reliability("race_black")).is_file()
