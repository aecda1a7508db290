"""Calibration and uncertainty of the ensemble's averaged softmax probabilities, per test case,
in a band around the heart (docs/study.md, "Calibration and uncertainty").

The band of a scope is every voxel within `BAND_MARGIN_MM` (Euclidean, in mm with the image's
own spacing) of the union of its true and its predicted foreground (argmax of the averaged
probabilities), the foreground included; without the band the background, confidently right
almost everywhere, would dominate every number. Scopes: `overall` (foreground = any heart class;
top-label calibration: confidence = the largest class probability, outcome = argmax right) and
each class k one-vs-rest (foreground = class k; confidence = p_k, outcome = truth is k). In each
scope's band: ECE over `N_BINS` equal-width bins, the Brier score (`overall`: sum over classes of
(p - one-hot)^2; class k: (p_k - [truth is k])^2), and the mean predictive entropy (nats, of the
full class distribution). Each record keeps its per-bin voxel counts and confidence and outcome
sums, so reliability diagrams and ECE pooled over cases come later without the volumes.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy import ndimage

from cmrbias_dagster.lib.cohort.clinical import CLASS_NAMES
from cmrbias_dagster.lib.outputs import write_atomically

N_BINS = 15
BAND_MARGIN_MM = 10.0
OVERALL = "overall"
# The per-case records, written by the ensemble beside its predictions.
CALIBRATION_FILE = "calibration.parquet"
SCHEMA = {
    "case_id": pl.String,
    "class": pl.String,
    "band_voxels": pl.Int64,
    "ece": pl.Float64,
    "brier": pl.Float64,
    "entropy": pl.Float64,
    "bin_count": pl.List(pl.Int64),
    "bin_confidence_sum": pl.List(pl.Float64),
    "bin_outcome_sum": pl.List(pl.Float64),
}


@dataclass(frozen=True)
class ReliabilityBins:
    """Per equal-width confidence bin: voxels, and the sums of their confidences and outcomes."""

    count: np.ndarray
    confidence_sum: np.ndarray
    outcome_sum: np.ndarray


@dataclass(frozen=True)
class CaseCalibration:
    """One scope (`overall` or a class) of one case, measured in the scope's band."""

    scope: str
    band_voxels: int
    ece: float
    brier: float
    entropy: float
    bins: ReliabilityBins


def band_mask(foreground: np.ndarray, spacing: Sequence[float], margin_mm: float) -> np.ndarray:
    """Voxels within `margin_mm` of a foreground voxel (foreground included), distances in mm
    with `spacing` per array axis; all False when there is no foreground."""
    if not foreground.any():
        return np.zeros(foreground.shape, dtype=bool)
    distance = ndimage.distance_transform_edt(~foreground, sampling=spacing)
    return distance <= margin_mm


def reliability_bins(
    confidence: np.ndarray, outcome: np.ndarray, n_bins: int = N_BINS
) -> ReliabilityBins:
    """Bin b holds confidences in [b/n_bins, (b+1)/n_bins), the last bin also 1."""
    index = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    return ReliabilityBins(
        np.bincount(index, minlength=n_bins),
        np.bincount(index, weights=confidence, minlength=n_bins),
        np.bincount(index, weights=outcome.astype(np.float64), minlength=n_bins),
    )


def expected_calibration_error(bins: ReliabilityBins) -> float:
    """Sum over bins of (bin's share of voxels) x |mean outcome - mean confidence|; NaN without
    voxels. Pooled bins (summed over cases) give the pooled ECE."""
    total = int(np.sum(bins.count))
    if total == 0:
        return float("nan")
    return float(np.sum(np.abs(bins.outcome_sum - bins.confidence_sum)) / total)


def brier_per_voxel(probabilities: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Sum over the class axis (0) of (p - one-hot)^2."""
    return np.sum((probabilities - onehot) ** 2, axis=0)


def predictive_entropy(probabilities: np.ndarray) -> np.ndarray:
    """-sum over the class axis (0) of p ln p, in nats (0 ln 0 = 0)."""
    logs = np.log(np.where(probabilities > 0, probabilities, 1.0))
    return -np.sum(probabilities * logs, axis=0)


def case_calibration(
    probabilities: np.ndarray,
    truth: np.ndarray,
    spacing: Sequence[float],
    margin_mm: float = BAND_MARGIN_MM,
    n_bins: int = N_BINS,
) -> list[CaseCalibration]:
    """The `overall` scope and each class's, for class probabilities (C, *volume) and the true
    labels (*volume), with `spacing` in mm per volume axis."""
    if probabilities.shape[1:] != truth.shape or probabilities.shape[0] != len(CLASS_NAMES) + 1:
        raise ValueError(
            f"probabilities of shape {probabilities.shape} do not fit labels of shape "
            f"{truth.shape} with {len(CLASS_NAMES)} classes and background"
        )
    predicted = np.argmax(probabilities, axis=0)
    onehot = truth[None] == np.arange(probabilities.shape[0]).reshape(-1, *[1] * truth.ndim)
    entropy = predictive_entropy(probabilities)
    band = band_mask((truth > 0) | (predicted > 0), spacing, margin_mm)
    records = [
        _scope(
            OVERALL,
            np.max(probabilities, axis=0)[band],
            (predicted == truth)[band],
            brier_per_voxel(probabilities, onehot)[band],
            entropy[band],
            n_bins,
        )
    ]
    for label, name in CLASS_NAMES.items():
        band = band_mask((truth == label) | (predicted == label), spacing, margin_mm)
        p, outcome = probabilities[label][band], onehot[label][band]
        records.append(_scope(name, p, outcome, (p - outcome) ** 2, entropy[band], n_bins))
    return records


def _scope(
    scope: str,
    confidence: np.ndarray,
    outcome: np.ndarray,
    brier: np.ndarray,
    entropy: np.ndarray,
    n_bins: int,
) -> CaseCalibration:
    bins = reliability_bins(confidence, outcome, n_bins)
    empty = confidence.size == 0
    return CaseCalibration(
        scope,
        int(confidence.size),
        expected_calibration_error(bins),
        float("nan") if empty else float(np.mean(brier)),
        float("nan") if empty else float(np.mean(entropy)),
        bins,
    )


def calibration_rows(case_id: str, records: Sequence[CaseCalibration]) -> list[dict]:
    """The case's records as rows of `SCHEMA`."""
    return [
        {
            "case_id": case_id,
            "class": r.scope,
            "band_voxels": r.band_voxels,
            "ece": r.ece,
            "brier": r.brier,
            "entropy": r.entropy,
            "bin_count": r.bins.count.tolist(),
            "bin_confidence_sum": r.bins.confidence_sum.tolist(),
            "bin_outcome_sum": r.bins.outcome_sum.tolist(),
        }
        for r in records
    ]


def write_calibration(rows: Sequence[dict], folder: Path) -> Path:
    """`CALIBRATION_FILE` in `folder`, written atomically."""
    buffer = io.BytesIO()
    pl.DataFrame(list(rows), schema=SCHEMA).write_parquet(buffer)
    return write_atomically(folder / CALIBRATION_FILE, buffer.getvalue())


def read_calibration(folder: Path) -> pl.DataFrame:
    """The records the ensemble wrote beside its predictions in `folder`; a folder without them
    (predicted before calibration was recorded) is refused, naming it."""
    path = folder / CALIBRATION_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: these predictions were written before the ensemble recorded "
            "calibration; re-materialise ensemble_prediction for this partition"
        )
    return pl.read_parquet(path)
