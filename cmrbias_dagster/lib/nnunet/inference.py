"""The softmax-averaged fold ensemble on test cases, as in Lee et al. 2022.

nnU-Net's own predictor averages the folds' logits; the paper averages softmax probabilities. Here
a predictor per fold returns that fold's probabilities in the image's original geometry through
nnU-Net's public `predict_single_npy_array` (its own preprocessing, resampling and un-cropping),
the probabilities are averaged over folds, and the argmax is taken;
then only the largest connected component of each class is kept. While the averaged
probabilities are in memory, each case's calibration and uncertainty in a band around the heart
(lib.evaluation.calibration) are recorded in `calibration.parquet` beside the predictions; the
probabilities themselves are not kept. With protected models
(docs/mitigation.md) each case is segmented by the ensemble of its group's models instead. Call
`predict_ensemble` in a fresh process (lib.isolation): it sets nnU-Net's environment variables
and imports torch.
"""

import copy
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cmrbias_dagster.lib.design.settings import PredictionSettings
from cmrbias_dagster.lib.evaluation.calibration import (
    calibration_rows,
    case_calibration,
    write_calibration,
)
from cmrbias_dagster.lib.evaluation.metrics import dice_per_class
from cmrbias_dagster.lib.evaluation.postprocess import keep_largest_component
from cmrbias_dagster.lib.nnunet.dataset import Case, NnunetEnvironment
from cmrbias_dagster.lib.outputs import replace_folder, staging_folder

if TYPE_CHECKING:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor


@dataclass(frozen=True)
class CasePrediction:
    case_id: str
    path: str
    fold_mean_dice: list[float]  # each single fold's mean foreground Dice, before LCC
    ensemble_mean_dice: float  # the ensemble's, after LCC
    # Cropping (docs/mitigation.md): the first stage's box, x0 x1 y0 y1 in voxels, whether the
    # first stage found a heart (else the whole image is the box), and whether the box holds every
    # labelled voxel of the truth.
    crop_box: tuple[int, int, int, int] | None = None
    heart_found: bool | None = None
    box_holds_truth: bool | None = None


def predict_ensemble(
    env: NnunetEnvironment,
    dataset: str,
    folds: Sequence[int],
    cases: Sequence[Case],
    out_dir: Path,
    settings: PredictionSettings,
    device: str,
    trainer: str,
    routes: Mapping[str, Path] | None = None,
) -> list[CasePrediction]:
    """Write `<case_id>.nii.gz` for every case, and every case's calibration records, into
    `out_dir` (replaced as a whole at the end). `trainer`: the dataset's trainer folder
    (fold_records.trainer_folder); its checkpoints name the configuration the predictor builds.
    `routes`: case id -> the trainer folder whose `folds` segment it (protected models); by
    default the dataset's own."""
    env.activate()
    import torch
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIO

    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    own = env.results / dataset / trainer
    by_model = models_of_cases(cases, routes, own)
    staging = staging_folder(out_dir)
    try:
        io, results, calibration = NibabelIO(), {}, {}
        for model, routed in by_model.items():
            predictors = load_predictor(model, folds, settings, device)
            for case in routed:
                image, properties = io.read_images([str(case.image)])
                truth, _ = io.read_seg(str(case.label))
                probabilities, fold_segmentations = averaged_probabilities(
                    predictors, image, properties
                )
                calibration[case.case_id] = calibration_rows(
                    case.case_id,
                    case_calibration(
                        probabilities, truth[0].astype(np.uint8), properties["spacing"]
                    ),
                )
                segmentation = segmentation_of(predictors[0], probabilities)
                segmentation = keep_largest_component(segmentation)
                path = staging / f"{case.case_id}.nii.gz"
                io.write_seg(segmentation, str(path), properties)
                results[case.case_id] = CasePrediction(
                    case.case_id,
                    str(out_dir / path.name),
                    [mean_dice(s, truth[0]) for s in fold_segmentations],
                    mean_dice(segmentation, truth[0]),
                )
        write_calibration([row for case in cases for row in calibration[case.case_id]], staging)
        replace_folder(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [results[case.case_id] for case in cases]


def models_of_cases(
    cases: Sequence[Case], routes: Mapping[str, Path] | None, own: Path
) -> dict[Path, list[Case]]:
    """The cases each model segments, in the cases' order: every case by `own` without routes;
    with routes, each case by its route (a case without one is refused, naming it)."""
    if not routes:
        return {own: list(cases)} if cases else {}
    unrouted = [case.case_id for case in cases if case.case_id not in routes]
    if unrouted:
        raise ValueError(f"no model routed for test case(s) {unrouted[:10]}")
    by_model: dict[Path, list[Case]] = {}
    for case in cases:
        by_model.setdefault(routes[case.case_id], []).append(case)
    return by_model


def load_predictor(
    model: Path, folds: Sequence[int], settings: PredictionSettings, device: str
) -> list["nnUNetPredictor"]:
    """One nnU-Net predictor per fold of the trained `model` folder: nnU-Net's own predictor
    averages its folds' logits, so each fold's probabilities come from a predictor of its own."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictors = []
    for fold in folds:
        predictor = nnUNetPredictor(
            tile_step_size=settings.tile_step_size,
            use_mirroring=settings.mirroring,
            perform_everything_on_device=device != "cpu",
            device=torch.device(device),
            allow_tqdm=False,
        )
        predictor.initialize_from_trained_model_folder(str(model), use_folds=(fold,))
        predictors.append(predictor)
    return predictors


def ensemble_case(
    predictors: Sequence["nnUNetPredictor"], image: np.ndarray, properties: dict
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The softmax-averaged segmentation of one (channel, slices, y, x) image and each fold's own,
    from nnU-Net's public single-array prediction: each fold's probabilities in the image's
    original geometry (nnU-Net's preprocessing, resampling and un-cropping), averaged, argmax."""
    probabilities, fold_segmentations = averaged_probabilities(predictors, image, properties)
    return segmentation_of(predictors[0], probabilities), fold_segmentations


def averaged_probabilities(
    predictors: Sequence["nnUNetPredictor"], image: np.ndarray, properties: dict
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The folds' softmax probabilities (class, slices, y, x) of one image averaged, in its
    original geometry, and each fold's own segmentation."""
    total, fold_segmentations = None, []
    for predictor in predictors:
        segmentation, probabilities = predictor.predict_single_npy_array(
            image, copy.deepcopy(properties), None, None, save_or_return_probabilities=True
        )
        fold_segmentations.append(segmentation)
        total = probabilities if total is None else total + probabilities
    return total / len(fold_segmentations), fold_segmentations


def segmentation_of(predictor: "nnUNetPredictor", probabilities: np.ndarray) -> np.ndarray:
    """The label map of averaged probabilities, by the predictor's label manager (argmax)."""
    segmentation = predictor.label_manager.convert_probabilities_to_segmentation(probabilities)
    return np.asarray(segmentation, dtype=np.uint8)


def mean_dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(list(dice_per_class(predicted, truth.astype(np.uint8)).values())))
