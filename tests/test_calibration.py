"""Calibration and uncertainty: the per-case measures on hand-computed toys, and the group table
pooled from per-case bins with bootstrap CIs."""

import math

import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.lib.analysis.calibration import (
    GAP,
    calibration_by_group,
    calibration_gaps,
    reliability_curve,
)
from cmrbias_dagster.lib.evaluation.calibration import (
    SCHEMA,
    band_mask,
    brier_per_voxel,
    calibration_rows,
    case_calibration,
    expected_calibration_error,
    predictive_entropy,
    read_calibration,
    reliability_bins,
    write_calibration,
)


def ece(confidence: list[float], correct: list[int]) -> float:
    return expected_calibration_error(reliability_bins(np.array(confidence), np.array(correct)))


def test_a_perfectly_calibrated_toy_has_no_calibration_error() -> None:
    # 70 % confident and right 7 times in 10; 90 % and right 9 times in 10.
    confidence = [0.7] * 10 + [0.9] * 10
    correct = [1] * 7 + [0] * 3 + [1] * 9 + [0]
    assert ece(confidence, correct) == pytest.approx(0.0, abs=1e-12)


def test_an_over_confident_toy_has_the_gap_weighted_by_its_share() -> None:
    # 90 % confident but right 6 times in 10: gap 0.3 on half the voxels; the other half calibrated.
    assert ece([0.9] * 10, [1] * 6 + [0] * 4) == pytest.approx(0.3)
    mixed = ece([0.9] * 10 + [0.5] * 10, [1] * 6 + [0] * 4 + [1] * 5 + [0] * 5)
    assert mixed == pytest.approx(0.15)


def test_bins_are_equal_width_and_the_last_holds_one() -> None:
    bins = reliability_bins(np.array([0.0, 0.5, 0.99, 1.0]), np.array([0, 1, 1, 1]), n_bins=15)
    assert bins.count.tolist() == [1] + [0] * 6 + [1] + [0] * 6 + [2]
    assert bins.outcome_sum[14] == 2 and bins.confidence_sum[14] == pytest.approx(1.99)
    assert math.isnan(expected_calibration_error(reliability_bins(np.array([]), np.array([]))))


def test_brier_of_two_voxels() -> None:
    # Voxel 1: p = (0.7, 0.2, 0.1, 0), truth 0 -> 0.09 + 0.04 + 0.01 = 0.14.
    # Voxel 2: p = (0.5, 0.5, 0, 0), truth 2 -> 0.25 + 0.25 + 1 = 1.5.
    probabilities = np.array([[0.7, 0.5], [0.2, 0.5], [0.1, 0.0], [0.0, 0.0]])
    onehot = np.array([[1, 0], [0, 0], [0, 1], [0, 0]])
    brier = brier_per_voxel(probabilities, onehot)
    assert brier.tolist() == pytest.approx([0.14, 1.5])
    assert brier.mean() == pytest.approx(0.82)


def test_entropy_of_uniform_and_one_hot() -> None:
    probabilities = np.array([[0.25, 1.0], [0.25, 0.0], [0.25, 0.0], [0.25, 0.0]])
    assert predictive_entropy(probabilities).tolist() == pytest.approx([math.log(4), 0.0])


def test_the_band_follows_the_spacing_of_each_axis() -> None:
    # One foreground voxel; 5 mm between slices, 2 mm along x.
    foreground = np.zeros((3, 1, 7), dtype=bool)
    foreground[1, 0, 3] = True
    band = band_mask(foreground, (5.0, 1.0, 2.0), 4.5)
    expected = np.zeros_like(foreground)
    expected[1, 0, 1:6] = True  # |dx| <= 2 voxels = 4 mm; the next slice is 5 mm away
    assert np.array_equal(band, expected)
    wider = band_mask(foreground, (5.0, 1.0, 2.0), 5.0)
    expected[[0, 2], 0, 3] = True  # 5 mm straight up and down; diagonal sqrt(29) mm stays out
    assert np.array_equal(wider, expected)
    assert not band_mask(np.zeros((2, 2, 2), dtype=bool), (1.0, 1.0, 1.0), 10.0).any()


def toy_case() -> tuple[np.ndarray, np.ndarray]:
    """Four voxels in a row: background, LVBP right (0.8), LVBP missed (0.6 background),
    LVM taken for RVBP (0.7)."""
    truth = np.array([0, 1, 1, 2]).reshape(1, 1, 4)
    probabilities = np.array(
        [[0.9, 0.1, 0, 0], [0.2, 0.8, 0, 0], [0.6, 0.4, 0, 0], [0, 0, 0.3, 0.7]]
    ).T.reshape(4, 1, 1, 4)
    return probabilities, truth


def test_case_calibration_by_scope_on_a_hand_computed_case() -> None:
    probabilities, truth = toy_case()
    records = {r.scope: r for r in case_calibration(probabilities, truth, (1, 1, 1), 0.0)}
    assert list(records) == ["overall", "LVBP", "LVM", "RVBP"]
    overall = records["overall"]
    # Band: the three heart voxels (margin 0). Top-label confidences 0.8 (right), 0.6, 0.7 (wrong).
    assert overall.band_voxels == 3
    assert overall.ece == pytest.approx((0.2 + 0.6 + 0.7) / 3)
    assert overall.brier == pytest.approx((0.08 + 0.72 + 0.98) / 3)
    assert overall.bins.count.sum() == 3
    # LVBP one-vs-rest: p_LVBP 0.8 and 0.4 on two true LVBP voxels.
    assert records["LVBP"].band_voxels == 2
    assert records["LVBP"].ece == pytest.approx((0.2 + 0.6) / 2)
    assert records["LVBP"].brier == pytest.approx((0.04 + 0.36) / 2)
    # The band reaches the background voxel once the margin covers one voxel.
    assert case_calibration(probabilities, truth, (1, 1, 1), 1.0)[0].band_voxels == 4


def test_a_certain_right_prediction_is_calibrated_and_certain() -> None:
    truth = np.array([0, 1, 2, 3, 0]).reshape(1, 1, 5)
    probabilities = (truth[None] == np.arange(4).reshape(4, 1, 1, 1)).astype(float)
    for record in case_calibration(probabilities, truth, (1, 1, 1), 10.0):
        assert (record.ece, record.brier, record.entropy) == (0.0, 0.0, 0.0), record.scope


def test_a_case_without_heart_has_empty_bands() -> None:
    truth = np.zeros((1, 2, 2), dtype=np.uint8)
    probabilities = np.zeros((4, 1, 2, 2))
    probabilities[0] = 1.0
    record = case_calibration(probabilities, truth, (1, 1, 1))[0]
    assert record.band_voxels == 0 and math.isnan(record.ece) and math.isnan(record.brier)


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        case_calibration(np.zeros((4, 2, 2, 2)), np.zeros((2, 2, 3)), (1, 1, 1))


def test_records_round_trip_through_the_side_file(tmp_path) -> None:
    probabilities, truth = toy_case()
    rows = calibration_rows("S1_ED", case_calibration(probabilities, truth, (1, 1, 1), 0.0))
    path = write_calibration(rows, tmp_path)
    table = read_calibration(tmp_path)
    assert path.name == "calibration.parquet" and table.schema == pl.Schema(SCHEMA)
    assert table["class"].to_list() == ["overall", "LVBP", "LVM", "RVBP"]
    assert len(table["bin_count"][0]) == 15
    with pytest.raises(FileNotFoundError, match="re-materialise ensemble_prediction"):
        read_calibration(tmp_path / "elsewhere")


def case_row(subject: str, phase: str, group: str, confidence: float, right: int) -> dict:
    """One `overall` case row of ten band voxels, all at `confidence`, `right` of them right."""
    bins = reliability_bins(np.full(10, confidence), np.array([1] * right + [0] * (10 - right)))
    return {
        "experiment": "race_black",
        "ratio": 25,
        "subject_id": subject,
        "phase": phase,
        "group": group,
        "class": "overall",
        "band_voxels": 10,
        "ece": expected_calibration_error(bins),
        "brier": 0.1 if group == "black" else 0.3,
        "entropy": 0.2,
        "bin_count": bins.count.tolist(),
        "bin_confidence_sum": bins.confidence_sum.tolist(),
        "bin_outcome_sum": bins.outcome_sum.tolist(),
    }


def toy_cases() -> pl.DataFrame:
    # Black: calibrated (0.9, 9 of 10 right); white: over-confident (0.9, 6 of 10 right).
    rows = [
        case_row(f"{group[0]}{i}", phase, group, 0.9, right)
        for group, right in (("black", 9), ("white", 6))
        for i in range(4)
        for phase in ("ED", "ES")
    ]
    return pl.DataFrame(rows)


def test_group_table_pools_bins_and_takes_the_gap_first_minus_second() -> None:
    order = {"race_black": ("black", "white")}
    table = calibration_by_group(toy_cases(), order, seed=3, n_resamples=200)
    by_group = {row["group"]: row for row in table.iter_rows(named=True)}
    assert set(by_group) == {"black", "white", GAP}
    assert by_group["black"]["ece"] == pytest.approx(0.0, abs=1e-9)
    assert by_group["white"]["ece"] == pytest.approx(0.3)
    assert by_group["white"]["n_subjects"] == 4 and by_group["white"]["band_voxels"] == 80
    assert by_group[GAP]["ece"] == pytest.approx(-0.3)
    assert by_group[GAP]["brier"] == pytest.approx(-0.2)
    # Every subject alike within a group: the bootstrap cannot move the pooled values.
    assert by_group[GAP]["ece_ci_low"] == pytest.approx(-0.3)
    assert by_group[GAP]["ece_ci_high"] == pytest.approx(-0.3)
    again = calibration_by_group(toy_cases(), order, seed=3, n_resamples=200)
    assert table.equals(again)


def test_bootstrap_resamples_subjects_not_cases() -> None:
    cases = toy_cases().with_columns(
        brier=pl.when(pl.col("subject_id") == "b0").then(0.5).otherwise(pl.col("brier"))
    )
    table = calibration_by_group(cases, {"race_black": ("black", "white")}, 1, 500)
    black = table.filter(pl.col("group") == "black").row(0, named=True)
    assert black["brier"] == pytest.approx((0.5 * 20 + 0.1 * 60) / 80)
    assert black["brier_ci_low"] < black["brier"] < black["brier_ci_high"]
    # Two phases of b0 are drawn together: a resample holds b0 0..4 times, brier in steps of
    # 0.4 * 20 / 80 = 0.1 above 0.1.
    assert black["brier_ci_high"] <= 0.1 + 4 * 0.1 + 1e-9


def test_reliability_curve_and_report_gaps() -> None:
    cases = toy_cases()
    curve = reliability_curve(cases.filter(pl.col("group") == "white"))
    assert curve.rows() == [(13, 80, pytest.approx(0.9), pytest.approx(0.6))]
    table = calibration_by_group(cases, {"race_black": ("black", "white")}, 3, 100)
    dsc = pl.DataFrame(
        {
            "experiment": ["race_black"],
            "class": ["overall"],
            "ratio": [25],
            "estimate": [-0.02],
            "ci_low": [-0.05],
            "ci_high": [0.01],
        }
    )
    gaps = calibration_gaps(table, dsc)
    assert gaps.columns[:3] == ["experiment", "ratio", "ece_gap"]
    row = gaps.row(0, named=True)
    assert row["ece_gap"] == pytest.approx(-0.3) and row["dsc_gap"] == -0.02


def test_reliability_figure_has_a_panel_per_ratio_and_each_groups_pooled_ece() -> None:
    from cmrbias_dagster.lib.plots import reliability_figure

    cases = pl.concat([toy_cases(), toy_cases().with_columns(ratio=pl.lit(75, dtype=pl.Int64))])
    figure = reliability_figure(cases, ("black", "white"))
    axes = figure.get_axes()
    assert [axis.get_title() for axis in axes] == [
        "25 % black in training",
        "75 % black in training",
    ]
    labels = [text.get_text() for text in axes[0].get_legend().get_texts()]
    assert labels == ["black (ECE 0.000)", "white (ECE 0.300)"]
    white = axes[0].get_lines()[2]  # the diagonal, then black, then white
    assert white.get_xdata().tolist() == pytest.approx([0.9])
    assert white.get_ydata().tolist() == pytest.approx([0.6])
    with pytest.raises(ValueError, match="no calibration rows"):
        reliability_figure(cases.filter(pl.col("class") == "LVM"), ("black", "white"))


def test_the_cascades_box_probabilities_are_pasted_with_certain_background_outside() -> None:
    from cmrbias_dagster.lib.nnunet.cropping_cascade import _paste_probabilities
    from cmrbias_dagster.lib.nnunet.mitigation.cropping import HeartBox

    cropped = np.full((4, 2, 2, 3), 0.25)  # (class, slices, y, x) of a 3 x 2 box
    full = _paste_probabilities(cropped, (2, 5, 6), HeartBox((1, 4), (2, 4), (6, 5)))
    assert full.shape == (4, 2, 5, 6) and np.allclose(full.sum(axis=0), 1.0)
    assert np.array_equal(full[:, :, 2:4, 1:4], cropped)
    outside = np.ones((2, 5, 6), dtype=bool)
    outside[:, 2:4, 1:4] = False
    assert (full[0][outside] == 1.0).all() and (full[1:][:, outside] == 0.0).all()
