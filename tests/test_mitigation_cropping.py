"""Heart-region cropping (a two-stage cascade; docs/mitigation.md): the pure box, crop and paste,
then `race_black_cropped` of the session's variant design (tests/variant_designs.py, through
Dagster): race_black|25's fold 0, then race_black_cropped|25's dataset, plans, fold 0 (the
localiser adopted from race_black, the cropped model trained) and its ensemble."""

import json
from pathlib import Path
from types import SimpleNamespace

import duckdb
import nibabel as nib
import numpy as np
import pytest

from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.design.settings import PredictionSettings
from cmrbias_dagster.lib.evaluation.calibration import read_calibration
from cmrbias_dagster.lib.nnunet.convergence import stored_models
from cmrbias_dagster.lib.nnunet.cropping_cascade import cascade_summary, predict_cropped_ensemble
from cmrbias_dagster.lib.nnunet.dataset import Case, NnunetEnvironment, subject_cases
from cmrbias_dagster.lib.nnunet.fold_records import RESULT_FILE, fold_folder, read_result
from cmrbias_dagster.lib.nnunet.inference import CasePrediction, predict_ensemble
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.mitigation import model_environments
from cmrbias_dagster.lib.nnunet.mitigation.cropping import (
    HeartBox,
    crop_training_case,
    crop_volume,
    cropped_environment,
    heart_box,
    labels_inside,
    paste_into,
    write_cropped_dataset,
)
from tests.conftest import TINY_TRAINER
from tests.variant_designs import BASELINE, CROPPED
from tests.variant_designs import CROP_MARGIN_MM as MARGIN_MM


def _labels(shape: tuple[int, int, int] = (20, 16, 3)) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.uint8)
    labels[5:9, 6:8, 1] = 1
    labels[7:11, 4:6, 2] = 3
    return labels


def test_the_box_holds_every_labelled_voxel_of_every_slice_plus_the_margin() -> None:
    labels = _labels()
    assert heart_box(labels, (1.0, 1.0), 0) == HeartBox((5, 11), (4, 8), (20, 16))
    box = heart_box(labels, (2.0, 1.5), 3.0)  # 1.5 voxels in x, 2 in y: whole voxels, rounded up
    assert box == HeartBox((3, 13), (2, 10), (20, 16))
    assert labels_inside(labels, box) and box.shape == (10, 8) and box.area_kept == 80 / 320
    assert heart_box(labels, (1.0, 1.0), 50.0) == HeartBox((0, 20), (0, 16), (20, 16))  # clipped
    assert heart_box(np.zeros((4, 4, 2)), (1.0, 1.0), 5.0) is None
    assert not labels_inside(labels, HeartBox((5, 11), (4, 7), (20, 16)))
    with pytest.raises(ValueError, match=r"needs an \(x, y, slices\) volume, not \(4, 4\)"):
        heart_box(np.zeros((4, 4)), (1.0, 1.0), 1.0)


def test_a_crop_keeps_each_voxels_position_and_pastes_back_in_place() -> None:
    labels = _labels()
    affine = np.diag([2.0, 1.5, 10.0, 1.0])
    affine[:3, 3] = [-20.0, 5.0, 0.0]
    image = nib.Nifti1Image(labels, affine)
    box = heart_box(labels, (2.0, 1.5), 3.0)
    crop = crop_volume(image, box)
    assert crop.shape == (10, 8, 3)
    # Voxel (0, 0, k) of the crop is voxel (x0, y0, k) of the image, in world coordinates too.
    assert np.allclose(crop.affine @ [0, 0, 2, 1], affine @ [box.x[0], box.y[0], 2, 1])
    assert np.array_equal(paste_into(labels.shape, np.asarray(crop.dataobj), box), labels)


def test_a_training_case_without_a_heart_or_grid_is_refused_and_nothing_written(
    tmp_path: Path,
) -> None:
    affine = np.eye(4)
    for name, array in (("img", np.ones((8, 8, 2))), ("empty", np.zeros((8, 8, 2)))):
        nib.save(nib.Nifti1Image(array.astype(np.float32), affine), tmp_path / f"{name}.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((6, 8, 2), np.uint8), affine), tmp_path / "small.nii.gz")
    empty = Case("s1_ED", tmp_path / "img.nii.gz", tmp_path / "empty.nii.gz")
    with pytest.raises(ValueError, match=r"case s1_ED: labels .*empty.nii.gz hold no heart"):
        crop_training_case(empty, tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", 5.0)
    other_grid = Case("s2_ES", tmp_path / "img.nii.gz", tmp_path / "small.nii.gz")
    with pytest.raises(ValueError, match=r"case s2_ES: image .* has shape \(8, 8, 2\), its labels"):
        crop_training_case(other_grid, tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", 5.0)
    env = NnunetEnvironment(tmp_path / "raw", tmp_path / "pre", tmp_path / "results")
    with pytest.raises(ValueError, match="case s1_ED"):
        write_cropped_dataset([empty], "Dataset511_x_25", env, 5.0)
    assert not list((tmp_path / "raw").rglob("*.nii.gz"))


def test_a_cropping_partition_stores_models_in_two_trees(tmp_path: Path) -> None:
    env = NnunetEnvironment(tmp_path / "raw", tmp_path / "pre", tmp_path / "results")
    cropped = cropped_environment(env)
    assert model_environments(env, Mitigation("cropping"), ["black"]) == [env, cropped]
    assert cropped.raw == tmp_path / "raw/heart_crop" and cropped.results.parent == env.results
    assert model_environments(env, Mitigation("oversampling"), ["black"]) == [env]


@pytest.fixture(scope="module")
def cascade(variant_design):
    """The variant design's study, its environment, each asset's metadata, and the cropped
    partition's training cases and test cases."""
    study = variant_design.study
    with duckdb.connect(str(variant_design.work / "cmrbias_tiny.duckdb"), read_only=True) as db:
        split = db.sql("select * from cmrbias.training_split").pl()
        test_set = db.sql("select * from cmrbias.test_set").pl()
        manifest = db.sql("select * from cmrbias.subject_manifest").pl()
    return SimpleNamespace(
        study=study,
        env=study.nnunet_environment(),
        dataset=study.partition(CROPPED).dataset,
        metadata=variant_design.metadata,
        cases=subject_cases(split.filter(experiment="race_black_cropped", ratio=25), manifest),
        test_cases=subject_cases(test_set.filter(experiment="race_black_cropped"), manifest),
    )


def _array(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def test_training_cases_are_cropped_to_their_hearts_with_every_label_kept(cascade) -> None:
    folder = cropped_environment(cascade.env).raw / cascade.dataset
    for case in cascade.cases:
        original, cropped = (
            nib.load(case.label),
            nib.load(folder / f"labelsTr/{case.case_id}.nii.gz"),
        )
        truth = np.asarray(original.dataobj)
        zooms = tuple(float(z) for z in original.header.get_zooms()[:2])
        box = heart_box(truth, zooms, MARGIN_MM)  # type: ignore[arg-type]
        kept = _array(cropped.get_filename())
        assert np.array_equal(  # every labelled voxel of each class is in the crop
            np.bincount(truth.ravel(), minlength=4)[1:], np.bincount(kept.ravel(), minlength=4)[1:]
        )
        assert cropped.shape == (*box.shape, truth.shape[2]) and box.area_kept < 1
        assert np.allclose(
            cropped.affine @ [0, 0, 0, 1], original.affine @ [*box.x[:1], box.y[0], 0, 1]
        )
        assert nib.load(folder / f"imagesTr/{case.case_id}_0000.nii.gz").shape == cropped.shape
    dataset = cascade.metadata[f"{CROPPED} nnunet_dataset"]
    assert dataset["crop_margin_mm"] == MARGIN_MM and 0 < dataset["median_area_kept"] < 1
    plans = cascade.metadata[f"{CROPPED} nnunet_plans"]
    assert plans["cropped_n_cases"] == plans["n_cases"] == len(cascade.cases)
    assert np.prod(plans["cropped_median_shape"]) < np.prod(plans["median_shape"])


def test_the_localiser_is_the_baselines_training_and_the_second_stage_trains_on_crops(
    cascade,
) -> None:
    fold = cascade.metadata[f"{CROPPED} fold_0_checkpoint"]
    baseline = cascade.study.partition(BASELINE).dataset
    assert fold["stages"] == ["localiser", "cropped"] and fold["mitigation"] == "cropping"
    assert fold["localiser_trained_by"] == baseline and fold["localiser_retrained"] is False
    assert fold["cropped_retrained"] is True and fold["cropped_trained_by"] == ""
    trees = model_environments(cascade.env, Mitigation("cropping", crop_margin_mm=MARGIN_MM))
    localiser, cropped = stored_models(trees, cascade.dataset, [0], TINY_TRAINER)
    baseline_fold = fold_folder(cascade.env, baseline, 0, TINY_TRAINER)
    assert localiser.stamp == read_result(baseline_fold / RESULT_FILE).stamp
    assert (localiser.mitigation, cropped.mitigation) == ("none", "cropping")
    assert cropped.stamp != localiser.stamp and cropped.epochs_run == localiser.epochs_run
    plans = json.loads((Path(cropped.checkpoint).parents[1] / "plans.json").read_text())
    patch = plans["configurations"]["2d"]["patch_size"]
    assert cascade.metadata[f"{CROPPED} nnunet_plans"]["cropped_patch_size"] == patch


def both_stages_and_the_localiser(
    env: NnunetEnvironment,
    dataset: str,
    cases: list[Case],
    out: Path,
    settings: PredictionSettings,
) -> list[CasePrediction]:
    """In one fresh process: the cascade's predictions into out/cascade, and the localiser's
    own (fold 0 of the partition's own models) into out/localiser."""
    predict_ensemble(env, dataset, [0], cases, out / "localiser", settings, "cpu", TINY_TRAINER)
    return predict_cropped_ensemble(
        env, dataset, [0], cases, out / "cascade", settings, "cpu", TINY_TRAINER, MARGIN_MM
    )


@pytest.fixture(scope="module")
def cascade_run(cascade, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Every test case through the cascade and through the localiser alone, in this process's
    own run (not the asset's), so the asset's summary can be checked against it."""
    out = tmp_path_factory.mktemp("cascade_run")
    results = run_in_fresh_process(
        both_stages_and_the_localiser,
        cascade.env,
        cascade.dataset,
        cascade.test_cases,
        out,
        cascade.study.settings().prediction,
    )
    return SimpleNamespace(out=out, results=results)


def test_a_test_case_is_segmented_in_its_first_stages_box_and_pasted_back(
    cascade, cascade_run
) -> None:
    for case, result in zip(cascade.test_cases, cascade_run.results, strict=True):
        image = nib.load(case.image)
        first_stage = _array(cascade_run.out / f"localiser/{case.case_id}.nii.gz")
        zooms = tuple(float(z) for z in image.header.get_zooms()[:2])
        box = heart_box(first_stage, zooms, MARGIN_MM)  # type: ignore[arg-type]
        assert result.heart_found is (box is not None)
        box = box or HeartBox((0, image.shape[0]), (0, image.shape[1]), image.shape[:2])
        assert result.crop_box == (*box.x, *box.y)
        predicted = nib.load(cascade_run.out / f"cascade/{case.case_id}.nii.gz")
        assert predicted.shape == image.shape and np.allclose(predicted.affine, image.affine)
        assert labels_inside(np.asarray(predicted.dataobj), box)
        assert result.box_holds_truth == labels_inside(_array(case.label), box)
        assert 0 <= result.ensemble_mean_dice <= 1
    # Calibration is recorded for every case and scope, in the whole image's geometry.
    records = read_calibration(cascade_run.out / "cascade")
    assert sorted(records["case_id"].unique()) == sorted(c.case_id for c in cascade.test_cases)
    assert records.height == 4 * len(cascade.test_cases)
    assert (records["bin_count"].list.sum() == records["band_voxels"]).all()


def prediction(case_id: str, box: tuple[int, int, int, int], found: bool, holds: bool):
    return CasePrediction(case_id, "", [], 0.5, box, heart_found=found, box_holds_truth=holds)


def test_the_cascade_summary_names_the_cases_and_the_median_box() -> None:
    summary = cascade_summary(
        [
            prediction("a_ED", (4, 40, 6, 30), True, True),  # 36 x 24
            prediction("a_ES", (0, 48, 0, 48), False, True),  # no heart: the whole image
            prediction("b_ED", (10, 30, 10, 40), True, False),  # 20 x 30, cuts the truth
        ]
    )
    assert summary == {
        "cases_without_heart": ["a_ES"],
        "boxes_missing_truth": ["b_ED"],
        "median_box_voxels": [36.0, 30.0],
    }
    assert cascade_summary([prediction("c_ED", (0, 8, 0, 8), True, True)])["median_box_voxels"] == [
        8.0,
        8.0,
    ]


def test_the_ensemble_asset_reports_the_cascades_boxes(cascade, cascade_run) -> None:
    """The asset's summary is the one of this test's own run of every test case: the same
    cases without a heart and boxes cutting the truth, by name, and the same median box. The
    truth's boxes are smaller than the image; the tiny localiser's (6 iterations, about half the
    image labelled) may not be, and whether they are is what the run shows."""
    metadata = cascade.metadata[f"{CROPPED} ensemble_prediction"]
    assert metadata["cases"] == len(cascade.test_cases)
    expected = cascade_summary(cascade_run.results)
    for key in ("cases_without_heart", "boxes_missing_truth", "median_box_voxels"):
        assert metadata[key] == expected[key], key
    for case, result in zip(cascade.test_cases, cascade_run.results, strict=True):
        truth = _array(case.label)
        zooms = tuple(float(z) for z in nib.load(case.label).header.get_zooms()[:2])
        truth_box = heart_box(truth, zooms, MARGIN_MM)  # type: ignore[arg-type]
        assert truth_box is not None and truth_box.area_kept < 1
        x0, x1, y0, y1 = result.crop_box
        # A box at least the truth's (with its margin) holds the truth; only a smaller one may not.
        covers = x0 <= truth_box.x[0] and x1 >= truth_box.x[1]
        covers = covers and y0 <= truth_box.y[0] and y1 >= truth_box.y[1]
        assert result.box_holds_truth or not covers
        assert (case.case_id in metadata["boxes_missing_truth"]) is not result.box_holds_truth
        assert (case.case_id in metadata["cases_without_heart"]) is not result.heart_found
    folder = cascade.study.predictions_folder(cascade.study.partition(CROPPED))
    case_ids = {case.case_id for case in cascade.test_cases}
    assert sorted(p.name for p in folder.glob("*.nii.gz")) == sorted(
        f"{c}.nii.gz" for c in case_ids
    )
