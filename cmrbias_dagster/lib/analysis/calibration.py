"""Calibration and uncertainty by group: per experiment, ratio, class and group, the ECE, Brier
score and predictive entropy pooled over the group's test cases, with seeded bootstrap CIs over
subjects, and the gap between the two groups (docs/study.md, "Calibration and uncertainty").

`cases` rows come from the `case_calibration` asset: one per experiment, ratio, test case and
class (`overall` and each structure), each with its band's voxel count, ECE, Brier score, mean
entropy and per-bin voxel counts and confidence and outcome sums.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

# The band and bins the per-case measures were taken with, re-exported for the report.
from cmrbias_dagster.lib.evaluation.calibration import BAND_MARGIN_MM as BAND_MARGIN_MM
from cmrbias_dagster.lib.evaluation.calibration import N_BINS as N_BINS
from cmrbias_dagster.lib.evaluation.calibration import OVERALL

KEYS = ["experiment", "ratio", "class"]
METRICS = ("ece", "brier", "entropy")
GAP = "gap"
SCHEMA = {
    "experiment": pl.String,
    "ratio": pl.Int64,
    "class": pl.String,
    "group": pl.String,
    "n_subjects": pl.Int64,
    "band_voxels": pl.Int64,
    **{
        f"{metric}{suffix}": pl.Float64
        for metric in METRICS
        for suffix in ("", "_ci_low", "_ci_high")
    },
}


@dataclass(frozen=True)
class SubjectSums:
    """Per subject (rows), both phases summed: band voxels, per-bin counts and confidence and
    outcome sums, and the sums of the Brier score and entropy over the band's voxels."""

    voxels: np.ndarray
    bin_count: np.ndarray
    bin_confidence: np.ndarray
    bin_outcome: np.ndarray
    brier: np.ndarray
    entropy: np.ndarray

    def pooled(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """ECE, Brier and entropy pooled over the voxels of `rows` (subject indices, last axis:
        one pooled value per leading index)."""
        voxels = self.voxels[rows].sum(axis=-1)
        gaps = np.abs(self.bin_outcome[rows].sum(axis=-2) - self.bin_confidence[rows].sum(axis=-2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "ece": gaps.sum(axis=-1) / voxels,
                "brier": self.brier[rows].sum(axis=-1) / voxels,
                "entropy": self.entropy[rows].sum(axis=-1) / voxels,
            }


def subject_sums(cases: pl.DataFrame) -> SubjectSums:
    """The sums of one cell's cases (one experiment, ratio, class and group) per subject."""
    voxels = pl.col("band_voxels")
    per_case = cases.with_columns(
        brier_sum=pl.when(voxels > 0).then(pl.col("brier") * voxels).otherwise(0.0),
        entropy_sum=pl.when(voxels > 0).then(pl.col("entropy") * voxels).otherwise(0.0),
    ).sort("subject_id")
    by_subject = per_case.group_by("subject_id", maintain_order=True)

    def summed(column: str) -> np.ndarray:
        lists = by_subject.agg(pl.col(column))[column].to_list()
        return np.array([np.sum(np.array(values, dtype=float), axis=0) for values in lists])

    return SubjectSums(
        summed("band_voxels"),
        summed("bin_count"),
        summed("bin_confidence_sum"),
        summed("bin_outcome_sum"),
        summed("brier_sum"),
        summed("entropy_sum"),
    )


def bootstrap_pooled(
    sums: SubjectSums, rng: np.random.Generator, n_resamples: int
) -> dict[str, np.ndarray]:
    """The pooled metrics of `n_resamples` resamples of the subjects, with replacement."""
    n = sums.voxels.shape[0]
    return sums.pooled(rng.integers(0, n, size=(n_resamples, n)))


def percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of the finite values; (NaN, NaN) when none is."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def calibration_by_group(
    cases: pl.DataFrame,
    group_order: Mapping[str, Sequence[str]],
    seed: int,
    n_resamples: int = 2000,
    level: float = 0.95,
) -> pl.DataFrame:
    """Per experiment, ratio, class and group, the metrics pooled over the group's cases with a
    percentile bootstrap CI over subjects (both phases of a subject resampled together); and a
    `gap` row: the first group (design order) minus the second, each group resampled on its
    own. Every cell's bootstrap draws from a generator seeded with `seed`."""
    rows = []
    for (experiment, ratio, name), cell in cases.group_by(KEYS, maintain_order=True):
        groups = group_order.get(experiment) or sorted(cell["group"].unique())
        rng = np.random.default_rng(seed)
        resampled = {}
        for group in groups:
            part = cell.filter(pl.col("group") == group)
            if part.is_empty():
                continue
            sums = subject_sums(part)
            estimate = sums.pooled(np.arange(sums.voxels.shape[0]))
            resampled[group] = (estimate, bootstrap_pooled(sums, rng, n_resamples))
            rows.append(
                _row(experiment, ratio, name, group, len(sums.voxels), int(sums.voxels.sum()))
                | _metrics(estimate, resampled[group][1], level)
            )
        if len(groups) == 2 and all(g in resampled for g in groups):
            (a, draws_a), (b, draws_b) = (resampled[g] for g in groups)
            n = cell["subject_id"].n_unique()
            rows.append(
                _row(experiment, ratio, name, GAP, n, None)
                | _metrics(
                    {m: a[m] - b[m] for m in METRICS},
                    {m: draws_a[m] - draws_b[m] for m in METRICS},
                    level,
                )
            )
    return pl.DataFrame(rows, schema=SCHEMA).sort(*KEYS, "group")


def _row(
    experiment: str, ratio: int, name: str, group: str, subjects: int, voxels: int | None
) -> dict:
    return {
        "experiment": experiment,
        "ratio": ratio,
        "class": name,
        "group": group,
        "n_subjects": subjects,
        "band_voxels": voxels,
    }


def _metrics(
    estimate: Mapping[str, np.ndarray], draws: Mapping[str, np.ndarray], level: float
) -> dict[str, float]:
    columns = {}
    for metric in METRICS:
        low, high = percentile_ci(draws[metric], level)
        columns |= {metric: float(estimate[metric]), f"{metric}_ci_low": low}
        columns[f"{metric}_ci_high"] = high
    return columns


def reliability_curve(cases: pl.DataFrame) -> pl.DataFrame:
    """Per bin with voxels, pooled over `cases`: the bin, its voxels, mean confidence and mean
    outcome (the points of a reliability diagram)."""
    count, confidence, outcome = (
        np.sum(np.array(cases[column].to_list(), dtype=float), axis=0)
        for column in ("bin_count", "bin_confidence_sum", "bin_outcome_sum")
    )
    filled = count > 0
    return pl.DataFrame(
        {
            "bin": np.flatnonzero(filled),
            "voxels": count[filled].astype(np.int64),
            "confidence": confidence[filled] / count[filled],
            "outcome": outcome[filled] / count[filled],
        }
    )


def calibration_gaps(calibration: pl.DataFrame, dsc_gaps: pl.DataFrame) -> pl.DataFrame:
    """The report's view: per experiment and ratio (class `overall`), each metric's gap with its
    CI beside the DSC gap of `gap_verdicts` (repeat 1's experiment; null for other repeats)."""
    gaps = calibration.filter((pl.col("class") == OVERALL) & (pl.col("group") == GAP))
    dsc = dsc_gaps.filter(pl.col("class") == OVERALL).select(
        "experiment",
        "ratio",
        dsc_gap="estimate",
        dsc_ci_low="ci_low",
        dsc_ci_high="ci_high",
    )
    columns = [f"{m}_gap{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high")]
    renamed = gaps.rename(
        {f"{m}{s}": f"{m}_gap{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high")}
    )
    return (
        renamed.select("experiment", "ratio", *columns)
        .join(dsc, on=["experiment", "ratio"], how="left")
        .sort("experiment", "ratio")
    )
