"""Two-level uncertainty: every verdict of the study includes both sources of variation a
question about models involves, the training draw (the design's `repeats`) and the test subjects.

A contrast (a between-group gap, a share slope, a strategy effect) is computed once per repeat on
the experiment's one test set, `theta_r`; the estimate is their mean. Its variance has a
test-subject part U common to every repeat (the same subjects), a subject x repeat part E and the
model part M (each trained model's own noise): Var = Var(U) + (Var(E) + Var(M)) / R.
- A bootstrap over subjects (within strata, the same draw for every repeat, ratio and strategy, so
  pairings are kept) gives V_s = Var(U) + Var(E)/R from the repeat-mean of each draw.
- The repeats' sample variance s^2 of theta_r estimates Var(M) + Var(E) (U is common to all).
- Var = V_s + s^2 / R, which counts Var(E)/R twice: conservative by that much, and simpler than
  subtracting an estimate of it (which bought nothing in the calibration, docs/study.md).
- The reference is Student's t with Satterthwaite's degrees of freedom (R - 1 for the model part,
  subjects - 2 for the subject part), with the model part taken at least as large as the subject
  part when the degrees of freedom are computed: s^2 rests on R - 1 degrees of freedom and is often
  small by chance, and plain Satterthwaite then trusts it and rejected a true null in 6.5 % of
  simulated studies at R = 2, 3.0 % with the floor (bench/verdict_power.py, docs/study.md).
With one repeat the model part cannot be estimated: the interval covers test subjects only, and
every verdict says so (`ONE_DRAW`).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from cmrbias_dagster.lib.analysis.statistics import holm

ALPHA = 0.05
N_RESAMPLES = 2000
ESTABLISHED = "established"
NOT_ESTABLISHED = "not established"
ONE_DRAW = "one training draw: training noise not included"


@dataclass(frozen=True)
class TwoLevelEstimate:
    """A contrast's mean over repeats with its two-level standard error, t degrees of freedom,
    95 % CI and two-sided p-value; `repeats` is how many training draws it rests on, and the
    variance's subject and model parts (se^2 = subject_var + model_var) say which dominates."""

    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    repeats: int
    subject_var: float = math.nan
    model_var: float = 0.0


def subject_resamples(strata: Sequence[object], seed: int, n: int = N_RESAMPLES) -> np.ndarray:
    """(n, subjects) indices: each row resamples the subjects with replacement within each
    stratum, so position j always holds a subject of position j's stratum."""
    labels = np.asarray([str(s) for s in strata])
    rng = np.random.default_rng(seed)
    draws = np.empty((n, labels.size), dtype=np.intp)
    for stratum in np.unique(labels):
        members = np.flatnonzero(labels == stratum)
        draws[:, members] = members[rng.integers(0, members.size, size=(n, members.size))]
    return draws


def combine(
    observed: Sequence[float], resampled: np.ndarray, subject_df: float
) -> TwoLevelEstimate:
    """The two-level estimate from each repeat's contrast `observed` (R,) and its values on the
    subject resamples `resampled` (n, R) (module doc); NaN everywhere when a repeat has none."""
    theta = np.asarray(observed, dtype=float)
    boot = np.asarray(resampled, dtype=float).reshape(-1, theta.size)
    repeats = theta.size
    boot = boot[np.isfinite(boot).all(axis=1)]
    if repeats == 0 or not np.isfinite(theta).all() or boot.shape[0] < 2:
        return TwoLevelEstimate(*(math.nan,) * 6, repeats, math.nan, math.nan)
    subject_var = float(np.var(boot.mean(axis=1), ddof=1))
    subject_df = max(subject_df, 1.0)
    if repeats == 1:
        return t_estimate(float(theta.mean()), subject_var, 0.0, subject_df, repeats)
    model_var = float(np.var(theta, ddof=1)) / repeats
    df = satterthwaite_df(subject_var, subject_df, max(model_var, subject_var), repeats - 1.0)
    return t_estimate(float(theta.mean()), subject_var, model_var, df, repeats)


def satterthwaite_df(first: float, first_df: float, second: float, second_df: float) -> float:
    """Satterthwaite's degrees of freedom of a sum of two variance estimates."""
    denominator = first**2 / first_df + second**2 / second_df
    return (first + second) ** 2 / denominator if denominator > 0 else math.inf


def holm_adjusted(estimates: Sequence[TwoLevelEstimate]) -> list[float]:
    """Holm-adjusted p-values of a family of estimates, in input order."""
    return holm([e.p_value for e in estimates])


def verdict(estimate: TwoLevelEstimate, p_holm: float, margin: float) -> str:
    """`established` (Holm p <= 0.05: the adjusted test rejects 0), `equivalent within +-m
    points` (the 95 % CI lies inside +-margin), else `not established`; with one repeat the
    verdict says that training noise is not included."""
    if math.isnan(estimate.estimate):
        return NOT_ESTABLISHED
    if p_holm <= ALPHA:
        label = ESTABLISHED
    elif -margin < estimate.ci_low and estimate.ci_high < margin:
        label = equivalence_label(margin)
    else:
        label = NOT_ESTABLISHED
    return label if estimate.repeats >= 2 else f"{label} ({ONE_DRAW})"


def equivalence_label(margin: float) -> str:
    """The equivalence verdict's words for a margin given as a DSC fraction."""
    return f"equivalent within ±{100 * margin:g} points"


def is_established(verdict_text: str) -> bool:
    """Whether a verdict (with or without its one-draw caveat) is `established`."""
    return verdict_text.split(" (")[0] == ESTABLISHED


def t_estimate(
    estimate: float, subject_var: float, model_var: float, df: float, repeats: int
) -> TwoLevelEstimate:
    """The estimate with its t-based 95 % CI and two-sided p from the subject and model parts of
    its variance and the degrees of freedom `df`."""
    se = math.sqrt(subject_var + model_var)
    parts = (subject_var, model_var)
    if se == 0.0:
        p = 1.0 if estimate == 0.0 else 0.0
        return TwoLevelEstimate(estimate, 0.0, df, estimate, estimate, p, repeats, *parts)
    critical = float(stats.t.ppf(1 - ALPHA / 2, df))
    p = float(2 * stats.t.sf(abs(estimate) / se, df))
    low, high = estimate - critical * se, estimate + critical * se
    return TwoLevelEstimate(estimate, se, df, low, high, p, repeats, *parts)
