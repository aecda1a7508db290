"""Scoring a probe on held-out subjects: cross-validation folds grouped by subject (all phases and
slices of a subject in one fold), balanced accuracy and ROC AUC of the out-of-fold scores, and
seeded bootstrap CIs over subjects."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# fit_predict(train subjects, test subjects) -> each test subject's probability of label 1.
FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ProbeScore:
    """A probe's out-of-fold balanced accuracy and AUC, each with its 95 % bootstrap CI."""

    subjects: int
    balanced_accuracy: float
    balanced_accuracy_low: float
    balanced_accuracy_high: float
    auc: float
    auc_low: float
    auc_high: float

    @property
    def detected(self) -> bool:
        """The AUC's CI lies above chance: the probe tells the groups apart."""
        return self.auc_low > 0.5


def subject_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each subject's fold, 0..folds-1, stratified by label (seeded shuffle within each label);
    ValueError when a label has fewer subjects than folds."""
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=int)
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        if len(members) < folds:
            raise ValueError(f"label {label} has {len(members)} subjects, fewer than {folds} folds")
        assignment[rng.permutation(members)] = np.arange(len(members)) % folds
    return assignment


def out_of_fold_scores(fold_of_subject: np.ndarray, fit_predict: FitPredict) -> np.ndarray:
    """Each subject's score from the model trained on the other folds' subjects."""
    scores = np.full(len(fold_of_subject), np.nan)
    for fold in np.unique(fold_of_subject):
        held_out = np.flatnonzero(fold_of_subject == fold)
        scores[held_out] = fit_predict(np.flatnonzero(fold_of_subject != fold), held_out)
    return scores


def balanced_accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean of the two groups' accuracies, a score above 0.5 predicting label 1."""
    predicted = scores > 0.5
    return float((predicted[labels == 1].mean() + (~predicted[labels == 0]).mean()) / 2)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The probability that a label-1 subject scores above a label-0 one (ties count half)."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    above = (positive[:, None] > negative[None, :]).mean()
    tied = (positive[:, None] == negative[None, :]).mean()
    return float(above + tied / 2)


def bootstrap_interval(
    labels: np.ndarray,
    scores: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    resamples: int,
    seed: int,
) -> tuple[float, float]:
    """The 95 % percentile CI of `metric` over subjects resampled with replacement within each
    label (so every resample holds both groups at their sizes)."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(labels == label) for label in (0, 1)]
    values = np.empty(resamples)
    for draw in range(resamples):
        chosen = np.concatenate([rng.choice(group, len(group)) for group in members])
        values[draw] = metric(labels[chosen], scores[chosen])
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def score_probe(labels: np.ndarray, scores: np.ndarray, resamples: int, seed: int) -> ProbeScore:
    """Balanced accuracy and AUC of out-of-fold `scores`, with seeded bootstrap CIs."""
    accuracy = bootstrap_interval(labels, scores, balanced_accuracy, resamples, seed)
    auc = bootstrap_interval(labels, scores, roc_auc, resamples, seed)
    return ProbeScore(
        len(labels),
        balanced_accuracy(labels, scores),
        *accuracy,
        roc_auc(labels, scores),
        *auc,
    )
