"""Heart-region cropping as a two-stage cascade (Lee et al. 2025; docs/mitigation.md). Per fold, a
first-stage model (stock nnU-Net on the partition's full images: the unmitigated experiment's own
training, reused when it exists) finds the heart, and a second-stage model trains on the training
cases cropped to their labels' heart box. A test case is segmented by the first stage's ensemble,
cropped to the box of that segmentation, segmented by the second stage's ensemble, and the result
pasted back into the full image. Call both in a fresh process (lib.isolation)."""

import copy
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.design.settings import PredictionSettings, TrainingSettings
from cmrbias_dagster.lib.evaluation.calibration import (
    calibration_rows,
    case_calibration,
    write_calibration,
)
from cmrbias_dagster.lib.evaluation.postprocess import keep_largest_component
from cmrbias_dagster.lib.nnunet.dataset import Case, NnunetEnvironment
from cmrbias_dagster.lib.nnunet.epoch_reports import EpochListener
from cmrbias_dagster.lib.nnunet.fold_records import FoldResult
from cmrbias_dagster.lib.nnunet.inference import (
    CasePrediction,
    averaged_probabilities,
    ensemble_case,
    load_predictor,
    mean_dice,
    segmentation_of,
)
from cmrbias_dagster.lib.nnunet.mitigation.cropping import (
    HeartBox,
    cropped_environment,
    heart_box,
    labels_inside,
    paste_into,
    whole_image_box,
)
from cmrbias_dagster.lib.nnunet.training import train_fold
from cmrbias_dagster.lib.outputs import replace_folder, staging_folder

if TYPE_CHECKING:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

CROPPING = Mitigation("cropping")
# The fold's two models, in training order.
STAGES = ("localiser", "cropped")


def train_cropping_cascade(
    env: NnunetEnvironment,
    dataset: str,
    fold: int,
    settings: TrainingSettings,
    device: str,
    on_epoch: EpochListener | None = None,
    mitigation: Mitigation = CROPPING,
    case_groups: Mapping[str, str] | None = None,
) -> dict[str, FoldResult]:
    """Both stages of one fold, by stage: the localiser as nnU-Net trains the partition (so an
    unmitigated twin's training is reused), then the cropped model on the cropped dataset, with
    the strategies combined with cropping (a combination's other strategies act on it only)."""
    if not mitigation.uses("cropping"):
        raise ValueError(f"{dataset} fold {fold}: a cropping cascade needs mitigation 'cropping'")
    localiser = train_fold(env, dataset, fold, settings, device, on_epoch)
    cropped = train_fold(
        cropped_environment(env), dataset, fold, settings, device, on_epoch, mitigation, case_groups
    )
    return dict(zip(STAGES, (localiser, cropped), strict=True))


def predict_cropped_ensemble(
    env: NnunetEnvironment,
    dataset: str,
    folds: Sequence[int],
    cases: Sequence[Case],
    out_dir: Path,
    settings: PredictionSettings,
    device: str,
    trainer: str,
    margin_mm: float,
) -> list[CasePrediction]:
    """Write `<case_id>.nii.gz` for every case into `out_dir` (replaced as a whole at the end):
    each stage a softmax-averaged ensemble of `folds`, the largest component per class kept after
    each; a case where the first stage finds no heart is segmented in its whole image. The
    calibration records are of the second stage's probabilities pasted into the whole image,
    background certain outside the box. Both stages' models are in the trainer folder `trainer`
    (fold_records.trainer_folder)."""
    env.activate()
    import torch
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIO

    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    localiser, cropped = (
        load_predictor(tree.results / dataset / trainer, folds, settings, device)
        for tree in (env, cropped_environment(env))
    )
    staging = staging_folder(out_dir)
    try:
        io, results, calibration = NibabelIO(), [], []
        for case in cases:
            image, properties = io.read_images([str(case.image)])
            truth = io.read_seg(str(case.label))[0][0]
            box, found = _first_stage_box(localiser, image, properties, margin_mm)
            inside = (slice(None), slice(*box.y), slice(*box.x))  # nnU-Net's (slices, y, x)
            crop = np.ascontiguousarray(image[(slice(None), *inside)])
            probabilities, folds_of_crop = averaged_probabilities(
                cropped, crop, copy.deepcopy(properties)
            )
            segmentation = segmentation_of(cropped[0], probabilities)
            probabilities = _paste_probabilities(probabilities, truth.shape, box)
            calibration += calibration_rows(
                case.case_id,
                case_calibration(probabilities, truth.astype(np.uint8), properties["spacing"]),
            )
            pasted = [_paste(s, truth.shape, box) for s in folds_of_crop]
            segmentation = keep_largest_component(_paste(segmentation, truth.shape, box))
            path = staging / f"{case.case_id}.nii.gz"
            io.write_seg(segmentation, str(path), properties)
            results.append(
                CasePrediction(
                    case.case_id,
                    str(out_dir / path.name),
                    [mean_dice(s, truth) for s in pasted],
                    mean_dice(segmentation, truth),
                    crop_box=(*box.x, *box.y),
                    heart_found=found,
                    box_holds_truth=labels_inside(truth.transpose(2, 1, 0), box),
                )
            )
        write_calibration(calibration, staging)
        replace_folder(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results


def _first_stage_box(
    localiser: list["nnUNetPredictor"], image: np.ndarray, properties: dict, margin_mm: float
) -> tuple[HeartBox, bool]:
    """The box around the first stage's heart in an nnU-Net (channel, slices, y, x) image, and
    whether it found one (else the whole image)."""
    heart = ensemble_case(localiser, image, copy.deepcopy(properties))[0]
    heart = keep_largest_component(heart).transpose(2, 1, 0)  # to the file's (x, y, slices)
    spacing = properties["spacing"]  # (slices, y, x)
    found = heart_box(heart, (spacing[2], spacing[1]), margin_mm)
    return (found, True) if found else (whole_image_box(heart.shape), False)


def _paste(cropped: np.ndarray, shape: tuple[int, ...], box: HeartBox) -> np.ndarray:
    """paste_into for nnU-Net's (slices, y, x) arrays."""
    pasted = paste_into(shape[::-1], cropped.astype(np.uint8).transpose(2, 1, 0), box)
    return pasted.transpose(2, 1, 0)


def _paste_probabilities(cropped: np.ndarray, shape: tuple[int, ...], box: HeartBox) -> np.ndarray:
    """Class probabilities (class, slices, y, x) of the box in the whole image of `shape`
    (slices, y, x): background certain outside the box."""
    full = np.zeros((cropped.shape[0], *shape), dtype=cropped.dtype)
    full[0] = 1.0
    full[:, :, slice(*box.y), slice(*box.x)] = cropped
    return full


def cascade_summary(predictions: Sequence[CasePrediction]) -> dict[str, object]:
    """What the UI shows of a cascade's test cases: the cases whose first stage found no heart
    (segmented in the whole image), those whose box cuts off part of the truth's heart, and the
    median box size in voxels."""
    boxes = [p.crop_box for p in predictions if p.crop_box is not None]
    return {
        "cases_without_heart": [p.case_id for p in predictions if p.heart_found is False],
        "boxes_missing_truth": [p.case_id for p in predictions if p.box_holds_truth is False],
        "median_box_voxels": [
            float(np.median([b[1] - b[0] for b in boxes])) if boxes else 0.0,
            float(np.median([b[3] - b[2] for b in boxes])) if boxes else 0.0,
        ],
    }
