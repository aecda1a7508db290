"""Fairness of per-subject scores (e.g. DSC) across demographic groups, for any number of groups."""

import math
from collections.abc import Mapping, Sequence

import numpy as np

BALANCED_RATIO = 50


def scores_by_group(scores: Sequence[float], groups: Sequence[str]) -> dict[str, np.ndarray]:
    """Scores split by group label, in first-seen order; subjects with a NaN score are dropped."""
    values = np.asarray(scores, dtype=float)
    if values.size != len(groups):
        raise ValueError(f"{values.size} scores but {len(groups)} group labels")
    labels = np.asarray(groups, dtype=object)
    keep = ~np.isnan(values)
    values, labels = values[keep], labels[keep]
    return {str(g): values[labels == g] for g in dict.fromkeys(labels.tolist())}


def group_means(scores: Sequence[float], groups: Sequence[str]) -> dict[str, float]:
    """Mean score of each group (NaN scores dropped)."""
    return {g: float(v.mean()) for g, v in scores_by_group(scores, groups).items()}


def group_medians(scores: Sequence[float], groups: Sequence[str]) -> dict[str, float]:
    """Median score of each group (NaN scores dropped)."""
    return {g: float(np.median(v)) for g, v in scores_by_group(scores, groups).items()}


def fairness_metrics(scores: Sequence[float], groups: Sequence[str]) -> dict[str, float]:
    """Group-fairness summary of scores in [0, 1] (higher is better).

    - sd_of_group_means: population SD (ddof=0) of the group means, the groups being the whole
      population of interest rather than a sample of groups.
    - skewed_error_ratio: max_g(1 - mean_g) / min_g(1 - mean_g); inf when the smallest error is 0
      and the largest is not, 1.0 when every group's error is 0.
    - es_dice: overall_mean / (1 + sum_g |mean_g - overall_mean|), overall mean over all subjects.
    - parity_gap: max_g median_g - min_g median_g.
    """
    by_group = scores_by_group(scores, groups)
    if not by_group:
        raise ValueError("no scores to compute fairness metrics from")
    means = np.array([v.mean() for v in by_group.values()])
    medians = np.array([np.median(v) for v in by_group.values()])
    overall = float(np.concatenate(list(by_group.values())).mean())
    return {
        "sd_of_group_means": float(np.std(means, ddof=0)),
        "skewed_error_ratio": _skewed_error_ratio(1.0 - means),
        "es_dice": overall / (1.0 + float(np.abs(means - overall).sum())),
        "parity_gap": float(medians.max() - medians.min()),
    }


def accuracy_parity_ratio(medians_by_ratio: Mapping[int, Mapping[str, float]]) -> int:
    """Training ratio whose group medians are closest (smallest max - min).

    Ties (within 1e-12) go to the ratio closest to 50, then to the smaller ratio.
    """
    if not medians_by_ratio:
        raise ValueError("no training ratios to compare")
    gaps = {
        ratio: max(medians.values()) - min(medians.values())
        for ratio, medians in medians_by_ratio.items()
    }
    smallest = min(gaps.values())
    tied = [ratio for ratio, gap in gaps.items() if gap - smallest <= 1e-12]
    return min(tied, key=lambda ratio: (abs(ratio - BALANCED_RATIO), ratio))


def _skewed_error_ratio(errors: np.ndarray) -> float:
    worst, best = float(errors.max()), float(errors.min())
    if best > 0:
        return worst / best
    return math.inf if worst > 0 else 1.0
