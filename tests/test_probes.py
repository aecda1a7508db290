"""The attribute probes against the synthetic cohort's planted truth: chance with every knob
neutral; the image probe (not the mask probe) finds a thicker subcutaneous fat ring, and looks
outside the heart to find it; both find a thicker myocardium. Both groups are drawn with the
white group's demographics, so the knobs are the only difference between them."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.lib.cohort.synthetic import CohortSpec, demographics, write_cohort
from cmrbias_dagster.lib.design.settings import ProbeSettings
from cmrbias_dagster.lib.probes.attribute_probes import feature_probe, image_and_mask_probes
from cmrbias_dagster.lib.probes.data import probe_slices
from cmrbias_dagster.lib.probes.saliency import share_outside_heart
from cmrbias_dagster.lib.probes.scoring import (
    balanced_accuracy,
    bootstrap_interval,
    roc_auc,
    score_probe,
    subject_folds,
)

GROUPS = ("black", "white")
NEUTRAL = {
    "myocardium_intensity": 0.0,
    "epicardial_fat": 0.0,
    "wall_thickness_scale": 1.0,
    "trabeculation": 0.0,
    "subcutaneous_fat_scale": 1.0,
}
SETTINGS = ProbeSettings(image_size=32, epochs=3, folds=4, resamples=300)
SEED = 2022


def cohort_slices(folder: Path, knobs: dict[str, float]):
    """24 subjects per group (12 per sex) at 48 x 48 x 5, black with `knobs`, sliced for the
    probes; black drawn with white's demographic means."""
    spec = CohortSpec.from_mapping(
        {
            "subjects": {race: {"female": 12, "male": 12} for race in GROUPS},
            "matrix": 48,
            "pixel_mm": 3.0,
            "slices": 5,
            "slice_gap_mm": 14.0,
            "effects": {"white": NEUTRAL, "black": {**NEUTRAL, **knobs}},
        },
        seed=7,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(demographics.RACE_MEANS, "black", demographics.RACE_MEANS["white"])
        root = write_cohort(spec, folder / "cohort")
    subjects = pl.read_csv(root / "demographics.csv").select("subject_id", group="race")
    files = {
        f"{kind}_{phase}": pl.format(f"{root}/{{}}/{prefix}sa_{phase.upper()}.nii.gz", "subject_id")
        for phase in ("ed", "es")
        for kind, prefix in (("image", ""), ("label", "label_"))
    }
    manifest = subjects.with_columns(**files)
    return probe_slices(subjects, manifest, GROUPS, SETTINGS.image_size)


def probed(tmp_path_factory: pytest.TempPathFactory, knobs: dict[str, float]):
    slices = cohort_slices(tmp_path_factory.mktemp("probe_cohort"), knobs)
    rows, maps = image_and_mask_probes("race_black", slices, SETTINGS, SEED)
    return {row["probe"]: row for row in rows}, maps, slices


@pytest.fixture(scope="module")
def neutral(tmp_path_factory):
    return probed(tmp_path_factory, {})


@pytest.fixture(scope="module")
def fat_ring(tmp_path_factory):
    return probed(tmp_path_factory, {"subcutaneous_fat_scale": 2.5})


@pytest.fixture(scope="module")
def thick_wall(tmp_path_factory):
    return probed(tmp_path_factory, {"wall_thickness_scale": 1.6})


def at_chance(row: dict) -> bool:
    return row["auc_low"] <= 0.5 <= row["auc_high"] and not row["detected"]


def test_neutral_knobs_leave_both_probes_at_chance(neutral):
    rows, _, slices = neutral
    assert slices.labels.sum() == 24 and len(slices.labels) == 48
    assert at_chance(rows["images"]), rows["images"]
    assert at_chance(rows["masks"]), rows["masks"]


def test_fat_ring_is_seen_in_the_images_not_the_masks(fat_ring):
    rows, _, _ = fat_ring
    assert rows["images"]["auc_low"] > 0.5 and rows["images"]["balanced_accuracy_low"] > 0.5
    assert at_chance(rows["masks"]), rows["masks"]


def test_thicker_wall_is_seen_in_images_and_masks(thick_wall):
    rows, _, _ = thick_wall
    assert rows["images"]["detected"], rows["images"]
    assert rows["masks"]["detected"], rows["masks"]


def test_fat_ring_saliency_lies_mostly_outside_the_heart(fat_ring, thick_wall):
    _, maps, slices = fat_ring
    outside = share_outside_heart(maps, slices.masks, dilation_px=2)
    assert outside > 0.5
    # The wall probe's saliency is drawn toward the heart: the share tells the two apart.
    _, wall_maps, wall_slices = thick_wall
    assert share_outside_heart(wall_maps, wall_slices.masks, dilation_px=2) < outside


def test_slices_are_grouped_by_subject(fat_ring):
    _, maps, slices = fat_ring
    assert slices.images.shape == slices.masks.shape == maps.shape
    assert slices.images.shape[1:] == (32, 32)
    totals = maps.sum(axis=(1, 2))
    assert np.all(np.isclose(totals, 1.0, atol=1e-4) | (totals == 0)) and totals.mean() > 0.9
    assert set(np.unique(slices.subject_of_slice)) == set(range(48))


@pytest.mark.parametrize("folds", [2, 4, 5])
def test_subject_folds_are_stratified_and_seeded(folds):
    labels = np.array([1] * 11 + [0] * 13)
    assignment = subject_folds(labels, folds, seed=3)
    assert np.array_equal(assignment, subject_folds(labels, folds, seed=3))
    for label in (0, 1):
        counts = np.bincount(assignment[labels == label], minlength=folds)
        assert counts.max() - counts.min() <= 1


def test_metrics_and_bootstrap():
    labels = np.array([1, 1, 1, 0, 0, 0])
    perfect = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    assert roc_auc(labels, perfect) == 1.0 and balanced_accuracy(labels, perfect) == 1.0
    assert roc_auc(labels, np.full(6, 0.5)) == 0.5
    assert roc_auc(labels, 1 - perfect) == 0.0
    low, high = bootstrap_interval(labels, perfect, roc_auc, 200, seed=1)
    assert low == high == 1.0
    score = score_probe(labels, np.array([0.9, 0.2, 0.7, 0.6, 0.2, 0.1]), 200, seed=1)
    assert score.auc_low <= score.auc <= score.auc_high
    assert score == score_probe(labels, np.array([0.9, 0.2, 0.7, 0.6, 0.2, 0.1]), 200, seed=1)


def test_feature_probe_separates_shifted_features():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 20)
    shifted = rng.normal(size=(40, 6)) + labels[:, None] * np.array([3.0, 0, 0, 0, 0, 0])
    assert roc_auc(labels, feature_probe(shifted, labels, 5, SEED)) > 0.9
    noise = rng.normal(size=(40, 6))
    score = score_probe(labels, feature_probe(noise, labels, 5, SEED), 300, SEED)
    assert score.auc_low <= 0.5 <= score.auc_high
