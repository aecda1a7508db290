"""One experiment's probes: the image and mask CNNs and the logistic model on encoder features,
all scored on the same subject-grouped folds, with the image probe's held-out Grad-CAM maps."""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
import torch

from cmrbias_dagster.lib.design.settings import ProbeSettings

from .classifier import (
    fit_logistic,
    predict_logistic,
    slice_probabilities,
    subject_means,
    train_slice_net,
)
from .data import ProbeSlices
from .saliency import grad_cam
from .scoring import ProbeScore, out_of_fold_scores, score_probe, subject_folds

SCHEMA = {
    "experiment": pl.String,
    "probe": pl.String,
    "model_ratio": pl.Int64,
    "subjects": pl.Int64,
    "balanced_accuracy": pl.Float64,
    "balanced_accuracy_low": pl.Float64,
    "balanced_accuracy_high": pl.Float64,
    "auc": pl.Float64,
    "auc_low": pl.Float64,
    "auc_high": pl.Float64,
    "detected": pl.Boolean,
}


@dataclass(frozen=True)
class SliceProbe:
    """A slice probe's out-of-fold subject scores and, for the image probe, each slice's
    held-out Grad-CAM map."""

    scores: np.ndarray
    maps: np.ndarray | None


def slice_probe(
    slices: ProbeSlices,
    inputs: np.ndarray,
    settings: ProbeSettings,
    seed: int,
    with_saliency: bool = False,
) -> SliceProbe:
    """Cross-validate a SliceNet on `inputs` (one entry per slice of `slices`), folds grouped by
    subject: each subject's score is the mean slice probability of the fold that held it out."""
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    folds = subject_folds(slices.labels, settings.folds, seed)
    owners, slice_labels = slices.subject_of_slice, slices.slice_labels
    maps = np.zeros(slices.masks.shape, dtype=np.float32) if with_saliency else None

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        fitted, held = np.isin(owners, train), np.isin(owners, test)
        model = train_slice_net(
            inputs[fitted],
            slice_labels[fitted],
            settings.channels,
            settings.epochs,
            settings.batch_size,
            settings.learning_rate,
            seed,
        )
        if maps is not None:
            maps[held] = grad_cam(model, inputs[held], slice_labels[held])
        return subject_means(slice_probabilities(model, inputs[held]), owners[held], test)

    return SliceProbe(out_of_fold_scores(folds, fit_predict), maps)


def feature_probe(features: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold scores of a ridge logistic model on per-subject `features`, on the same
    subject folds as `slice_probe` for the same seed."""

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        weights = fit_logistic(features[train], labels[train])
        return predict_logistic(weights, features[test])

    return out_of_fold_scores(subject_folds(labels, folds, seed), fit_predict)


def encoder_ratios_in_design(
    wanted: Sequence[int], design_ratios: Sequence[int]
) -> tuple[list[int], list[int]]:
    """The profile's encoder-probe ratios that the design trains, and those it does not (a
    design with `ratios: [0, 25]` has no 100 % models to probe)."""
    return [r for r in wanted if r in design_ratios], [r for r in wanted if r not in design_ratios]


def probe_row(
    experiment: str, probe: str, score: ProbeScore, model_ratio: int | None = None
) -> dict:
    """One row of the probe table."""
    return {
        "experiment": experiment,
        "probe": probe,
        "model_ratio": model_ratio,
        **asdict(score),
        "detected": score.detected,
    }


def probe_table(rows: list[Mapping]) -> pl.DataFrame:
    """The rows as the probe table (SCHEMA), in the order given."""
    return pl.DataFrame(list(rows), schema=SCHEMA, orient="row")


def image_and_mask_probes(
    experiment: str, slices: ProbeSlices, settings: ProbeSettings, seed: int
) -> tuple[list[dict], np.ndarray]:
    """The image and mask probes' rows and the image probe's held-out Grad-CAM maps."""
    images = slice_probe(slices, slices.images[:, None], settings, seed, with_saliency=True)
    masks = slice_probe(slices, slices.one_hot_masks(), settings, seed)
    rows = [
        probe_row(experiment, probe, score_probe(slices.labels, s, settings.resamples, seed))
        for probe, s in (("images", images.scores), ("masks", masks.scores))
    ]
    return rows, images.maps
