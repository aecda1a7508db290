"""Segmentation metrics on hand-built volumes, and against the full-volume reference loop."""

import math
from dataclasses import astuple

import numpy as np
import pytest
from scipy import ndimage

from bench.metrics import reference_metrics
from cmrbias_dagster.lib.evaluation.metrics import (
    dice_per_class,
    segmentation_metrics,
    surface_distances,
)

SHAPE = (20, 20, 12)


def cube(corner: tuple[int, int, int], size: int, label: int = 1) -> np.ndarray:
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[tuple(slice(c, c + size) for c in corner)] = label
    return labels


def by_label(predicted: np.ndarray, truth: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> dict:
    return {m.label: m for m in segmentation_metrics(predicted, truth, spacing)}


def test_identical_maps_score_one_and_zero_distance() -> None:
    labels = cube((2, 2, 2), 4, 1) + cube((10, 10, 5), 5, 2) + cube((3, 12, 1), 6, 3)
    for m in segmentation_metrics(labels, labels, (1.8, 1.8, 10.0)):
        assert (m.dice, m.hd95_mm, m.assd_mm, m.distances_defined) == (1.0, 0.0, 0.0, True)


def test_disjoint_masks_score_zero() -> None:
    metrics = by_label(cube((0, 0, 0), 3), cube((10, 10, 5), 3))
    assert metrics[1].dice == 0.0
    assert metrics[1].distances_defined


def test_hand_counted_overlap_on_a_multiclass_map() -> None:
    # Class 1: 4^3 cubes offset by (1, 1, 1) share 3^3 = 27 voxels. Class 2: 3^3 cubes offset
    # by 2 along x share 1 x 3 x 3 = 9 voxels. Class 3: predicted as class 2 everywhere.
    truth = cube((2, 2, 2), 4, 1) + cube((10, 10, 2), 3, 2) + cube((2, 12, 6), 2, 3)
    predicted = cube((3, 3, 3), 4, 1) + cube((12, 10, 2), 3, 2) + cube((2, 12, 6), 2, 2)
    expected = {1: 2 * 27 / (64 + 64), 2: 2 * 9 / (35 + 27), 3: 0.0}
    assert dice_per_class(predicted, truth) == pytest.approx(expected)
    metrics = by_label(predicted, truth)
    assert {label: m.dice for label, m in metrics.items()} == pytest.approx(expected)
    assert not metrics[3].distances_defined


@pytest.mark.parametrize(
    ("predicted", "truth", "dice"),
    [
        (np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8), 1.0),
        (cube((2, 2, 2), 3), np.zeros(SHAPE, np.uint8), 0.0),
        (np.zeros(SHAPE, np.uint8), cube((2, 2, 2), 3), 0.0),
    ],
    ids=["both-empty", "truth-empty", "prediction-empty"],
)
def test_empty_masks_have_fixed_dice_and_undefined_distances(
    predicted: np.ndarray, truth: np.ndarray, dice: float
) -> None:
    m = by_label(predicted, truth)[1]
    assert m.dice == dice
    assert math.isnan(m.hd95_mm) and math.isnan(m.assd_mm)
    assert not m.distances_defined
    assert all(d.size == 0 for d in surface_distances(predicted == 1, truth == 1, (1, 1, 1)))


@pytest.mark.parametrize(
    ("axis", "spacing", "hd95_mm", "assd_mm"),
    [
        (2, (1.0, 1.0, 10.0), 10.0, (16 * 10 + 4) / 56),
        (0, (2.0, 1.0, 1.0), 2.0, (16 * 2 + 4) / 56),
        (1, (1.8, 3.0, 1.8), 3.0, (16 * 3 + 4 * 1.8) / 56),
    ],
)
def test_a_cube_shifted_by_one_voxel_hand_computed(
    axis: int, spacing: tuple, hd95_mm: float, assd_mm: float
) -> None:
    # A 4^3 cube has 56 boundary voxels. Shifted by one voxel along `axis`, in each direction:
    # the 16 on the trailing face are one step (spacing[axis]) from the other's face, the 4
    # inside the leading face are one in-plane step from the other's side walls, and the other
    # 36 lie on the other's boundary. p95 of 56 sorted values falls in the 16 largest.
    truth = cube((2, 2, 2), 4)
    predicted = np.roll(truth, 1, axis=axis)
    m = by_label(predicted, truth, spacing)[1]
    assert (m.hd95_mm, m.assd_mm) == pytest.approx((hd95_mm, assd_mm))
    to_truth, to_predicted = surface_distances(predicted == 1, truth == 1, spacing)
    assert len(to_truth) == len(to_predicted) == 56


@pytest.mark.parametrize(
    ("shift", "spacing", "expected_mm"),
    [
        ((0, 0, 1), (1.0, 1.0, 10.0), 10.0),
        ((0, 0, 2), (1.8, 1.8, 10.0), 20.0),
        ((2, 0, 0), (2.0, 1.0, 1.0), 4.0),
        ((0, 3, 0), (1.0, 1.5, 1.0), 4.5),
    ],
)
def test_a_shifted_plate_is_as_far_as_the_shift_in_mm(
    shift: tuple[int, int, int], spacing: tuple, expected_mm: float
) -> None:
    # A one-voxel-thick 6x6 plate is all boundary: each of its voxels is exactly `shift` voxels
    # along the plate's normal from the shifted plate's, so HD95 = ASSD = shift x spacing.
    truth = np.zeros(SHAPE, np.uint8)
    plate = [slice(4, 10)] * 3
    axis = int(np.flatnonzero(shift)[0])
    plate[axis] = slice(5, 6)
    truth[tuple(plate)] = 1
    predicted = np.roll(truth, shift[axis], axis=axis)
    m = by_label(predicted, truth, spacing)[1]
    assert (m.hd95_mm, m.assd_mm) == pytest.approx((expected_mm, expected_mm))


def test_volumes_are_voxel_counts_times_voxel_volume() -> None:
    truth, predicted = cube((2, 2, 2), 4, 2), cube((2, 2, 2), 3, 2)
    m = by_label(predicted, truth, (1.8, 1.8, 10.0))[2]
    assert m.true_ml == pytest.approx(64 * 1.8 * 1.8 * 10 / 1000)
    assert m.predicted_ml == pytest.approx(27 * 1.8 * 1.8 * 10 / 1000)


def random_blobs(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A label map of smoothed noise thresholded into classes 0..3, touching the volume edges."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma=(2, 2, 1))
    return np.digitize(field, np.quantile(field, [0.55, 0.7, 0.85])).astype(np.uint8)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (1.8, 1.8, 10.0), (0.7, 2.5, 6.0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_full_volume_reference_on_random_blobs(seed: int, spacing: tuple) -> None:
    rng = np.random.default_rng(seed)
    truth, predicted = random_blobs(rng, (24, 28, 8)), random_blobs(rng, (24, 28, 8))
    assert truth[0].any() and truth[:, :, -1].any()  # masks touch the volume border
    for fast, slow in zip(
        segmentation_metrics(predicted, truth, spacing),
        reference_metrics(predicted, truth, spacing),
        strict=True,
    ):
        assert astuple(fast) == pytest.approx(astuple(slow), nan_ok=True)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (1.8, 1.8, 10.0)])
def test_cropping_keeps_distances_of_masks_on_the_volume_border(spacing: tuple) -> None:
    # The truth fills a corner of the volume; the prediction is a small cube inside it: the
    # truth's boundary on the volume faces must count, as it does without cropping.
    truth = np.zeros(SHAPE, np.uint8)
    truth[:6, :6, :4] = 1
    predicted = cube((1, 1, 1), 2)
    fast = by_label(predicted, truth, spacing)[1]
    slow = reference_metrics(predicted, truth, spacing)[0]
    assert astuple(fast) == pytest.approx(astuple(slow))


def test_mismatched_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="differs"):
        segmentation_metrics(
            np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.uint8), (1, 1, 1)
        )
