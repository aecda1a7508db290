"""Dice, HD95 and ASSD against an independent implementation (medpy) on random shapes with
anisotropic spacing. medpy computes the same surface distances (6-neighbour boundaries, exact
Euclidean distances in mm). Its `hd95` and (since 0.5) `assd` pool both directions, where ours
take the larger directional 95th percentile (MONAI's convention) and the mean of the two
directional means (medpy's `asd` each way): HD95 is checked against medpy's directional
distances, and against its pooled value as a lower bound within a voxel."""

import numpy as np
import pytest
from medpy.metric import binary
from scipy import ndimage

from cmrbias_dagster.lib.evaluation.metrics import segmentation_metrics

SPACINGS = [(1.8, 1.8, 10.0), (2.2, 1.1, 6.0), (0.9, 3.3, 1.0)]


def random_blob(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A smooth random blob: thresholded Gaussian-filtered noise, never empty."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=2.0)
    blob = field > np.quantile(field, rng.uniform(0.6, 0.9))
    return blob


@pytest.mark.parametrize("seed", range(6))
def test_dice_hd95_and_assd_match_medpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    spacing = SPACINGS[seed % len(SPACINGS)]
    shape = (40, 36, 12)
    truth, predicted = random_blob(rng, shape), random_blob(rng, shape)
    ours = segmentation_metrics(predicted.astype(np.uint8), truth.astype(np.uint8), spacing, (1,))
    metrics = ours[0]
    assert metrics.dice == pytest.approx(binary.dc(predicted, truth), abs=1e-12)
    mean_of_means = (
        binary.asd(predicted, truth, spacing) + binary.asd(truth, predicted, spacing)
    ) / 2
    assert metrics.assd_mm == pytest.approx(mean_of_means, rel=1e-9)
    forward = binary.__dict__["__surface_distances"](predicted, truth, spacing, 1)
    backward = binary.__dict__["__surface_distances"](truth, predicted, spacing, 1)
    directional = max(np.percentile(forward, 95), np.percentile(backward, 95))
    assert metrics.hd95_mm == pytest.approx(directional, rel=1e-9)
    pooled = binary.hd95(predicted, truth, spacing)
    assert pooled <= metrics.hd95_mm + 1e-9
    assert metrics.hd95_mm - pooled <= float(np.linalg.norm(spacing)) + 1e-9


def test_a_class_absent_from_both_scores_dice_one_and_no_distances() -> None:
    empty = np.zeros((8, 8, 4), dtype=np.uint8)
    metrics = segmentation_metrics(empty, empty, (1.0, 1.0, 1.0), (1,))[0]
    assert metrics.dice == 1.0 and np.isnan(metrics.hd95_mm) and np.isnan(metrics.assd_mm)
