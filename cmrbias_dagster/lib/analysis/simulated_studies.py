"""Simulated studies with a known truth, for calibrating the two-level verdicts (tests and
bench/verdict_power.py): subject x repeat scores from subject difficulty, a model-noise term per
repeat and group, a subject x repeat residual and a planted gap or share trend.
"""

from dataclasses import dataclass

import numpy as np

from cmrbias_dagster.lib.analysis.contrasts import ScoreCube


@dataclass(frozen=True)
class NoiseModel:
    """Standard deviations in DSC units: each subject's difficulty, each trained model's shift
    per group (`model`), and the subject x model residual; `per_group` subjects in each group,
    half of each in either held stratum."""

    subject: float = 0.005
    model: float = 0.003
    residual: float = 0.003
    per_group: int = 24


def simulated_cube(
    rng: np.random.Generator,
    noise: NoiseModel,
    repeats: int,
    gap: float = 0.0,
    ratios: tuple[int, ...] = (0,),
    gap_slope: float = 0.0,
    difficulty: np.ndarray | None = None,
) -> ScoreCube:
    """One simulated experiment: the first group's DSC differs by `gap` plus `gap_slope` times
    the share (0..1), every ratio and repeat trained anew (its own model noise); `difficulty`
    gives the subjects of another cube (a strategy tested on its baseline's test set)."""
    n = noise.per_group
    first = np.r_[np.ones(n, dtype=bool), np.zeros(n, dtype=bool)]
    held = np.tile(np.repeat(np.array(["f", "m"]), [n // 2, n - n // 2]), 2)
    share = np.asarray(ratios, dtype=float)[:, None, None] / 100.0
    if difficulty is None:
        difficulty = rng.normal(0.0, noise.subject, 2 * n)
    models = rng.normal(0.0, noise.model, (len(ratios), repeats, 2))
    model_shift = np.where(first, models[..., :1], models[..., 1:])
    residual = rng.normal(0.0, noise.residual, (len(ratios), repeats, 2 * n))
    planted = np.where(first, gap + gap_slope * share, 0.0)
    dsc = 0.95 + difficulty + planted + model_shift + residual
    ids = tuple(f"s{j:03d}" for j in range(2 * n))
    return ScoreCube(tuple(ratios), ids, first, held, dsc)
