"""Is a between-group gap explained by age and BMI? The groups differ in them (Table 1), and so
may their segmentation difficulty. Per base experiment (its repeats pooled), at each ratio and
pooled over the ratios, the subject overall DSC is regressed on the first-group indicator (the
gap: first group's mean minus the second's, DSC), the ratio as categorical (pooled only) and,
for the adjusted gap, age and BMI; the unadjusted gap is the same regression without them, on
the same rows (subjects without age or BMI are left out of both).

Uncertainty as in two_level.py: the rows are subject x repeat (x ratio), clustered by subject
(every test subject is scored at every ratio and repeat), and the CR1 sandwich variance of the
pooled fit is the subject part; with repeats, the variance over repeats of each repeat's own
coefficient, divided by R, is the model part, with Satterthwaite's degrees of freedom (subjects
- 1 for the subject part, R - 1 for the model part, floored at the subject part as in
two_level.combine). Verdicts use the design's equivalence margin (DSC), Holm within the base
experiment, one family for the unadjusted gaps and one for the adjusted.
"""

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from cmrbias_dagster.lib.analysis.gaps import repeat_names
from cmrbias_dagster.lib.analysis.two_level import (
    TwoLevelEstimate,
    holm_adjusted,
    satterthwaite_df,
    t_estimate,
    verdict,
)
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.study import StudyDesign

COVARIATES = ("age", "bmi")
POOLED = "pooled"
NO_COVARIATE = "no covariate recorded"
FIT = ("estimate", "ci_low", "ci_high", "p_value", "p_holm", "verdict")
SCHEMA = {
    **dict.fromkeys(("experiment", "group_a", "group_b", "ratio", "covariates"), pl.Utf8),
    **dict.fromkeys(("repeats", "n_subjects", "n_rows", "n_dropped"), pl.Int64),
    **{
        f"{fit}_{key}": pl.Utf8 if key == "verdict" else pl.Float64
        for fit in ("unadjusted", "adjusted")
        for key in FIT
    },
    **{f"coef_{name}": pl.Float64 for name in COVARIATES},
    "verdict_changes": pl.Boolean,
}
SUMMARY = ("experiment", "ratio", "n_subjects", "covariates", "unadjusted_estimate")
SUMMARY += ("unadjusted_ci_low", "unadjusted_ci_high", "unadjusted_verdict", "adjusted_estimate")
SUMMARY += ("adjusted_ci_low", "adjusted_ci_high", "adjusted_verdict", "verdict_changes")


def cluster_robust_ols(
    y: np.ndarray, x: np.ndarray, clusters: Sequence[object]
) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients of y on the columns of x and their CR1 cluster-robust covariance:
    (X'X)^-1 (sum_g X_g' u_g u_g' X_g) (X'X)^-1 x G/(G-1) x (N-1)/(N-K); NaN without two
    clusters or with no residual degrees of freedom."""
    n, k = x.shape
    labels, index = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    g = labels.size
    bread = np.linalg.pinv(x.T @ x)
    beta = bread @ x.T @ y
    if g < 2 or n <= k:
        return beta, np.full((k, k), np.nan)
    residual = y - x @ beta
    scores = np.zeros((g, k))
    np.add.at(scores, index, x * residual[:, None])
    correction = g / (g - 1) * (n - 1) / (n - k)
    return beta, correction * bread @ (scores.T @ scores) @ bread


def design_matrix(rows: pl.DataFrame, covariates: Sequence[str]) -> np.ndarray:
    """Intercept, first-group indicator (column 1), one indicator per ratio but the lowest when
    more than one ratio is present, and the covariates."""
    columns = [np.ones(rows.height), rows["first"].cast(pl.Float64).to_numpy()]
    ratios = sorted(rows["ratio"].unique().to_list())
    columns += [(rows["ratio"] == r).cast(pl.Float64).to_numpy() for r in ratios[1:]]
    columns += [rows[name].cast(pl.Float64).to_numpy() for name in covariates]
    return np.column_stack(columns)


def group_gap(rows: pl.DataFrame, covariates: Sequence[str]) -> tuple[TwoLevelEstimate, dict]:
    """The first group's coefficient with two-level uncertainty (module doc), and the
    covariates' coefficients (per year, per kg/m^2)."""
    x = design_matrix(rows, covariates)
    beta, covariance = cluster_robust_ols(rows["dsc"].to_numpy(), x, rows["subject_id"])
    subject_var = float(covariance[1, 1])
    subject_df = max(rows["subject_id"].n_unique() - 1.0, 1.0)
    per_repeat = []
    for (_,), part in rows.group_by("experiment", maintain_order=True):
        repeat_beta, _ = cluster_robust_ols(
            part["dsc"].to_numpy(), design_matrix(part, covariates), part["subject_id"]
        )
        per_repeat.append(float(repeat_beta[1]))
    repeats = len(per_repeat)
    tail = beta[x.shape[1] - len(covariates) :].tolist()
    coefficients = dict(zip(covariates, tail, strict=True))
    if not math.isfinite(subject_var):
        return TwoLevelEstimate(*(math.nan,) * 6, repeats), coefficients
    model_var = float(np.var(per_repeat, ddof=1)) / repeats if repeats > 1 else 0.0
    df = subject_df
    if repeats > 1:
        df = satterthwaite_df(subject_var, subject_df, max(model_var, subject_var), repeats - 1.0)
    estimate = t_estimate(float(beta[1]), subject_var, model_var, df, repeats)
    return estimate, coefficients


def regression_rows(
    scores: pl.DataFrame, manifest: pl.DataFrame, experiments: Sequence[str], first_group: str
) -> pl.DataFrame:
    """The overall DSC rows of the experiments (a base and its repeats) with each subject's age
    and BMI and the first-group indicator."""
    present = [c for c in COVARIATES if c in manifest.columns]
    people = manifest.select("subject_id", *present)
    rows = scores.filter(
        (pl.col("class") == "overall") & pl.col("experiment").is_in(list(experiments))
    ).join(people, on="subject_id", how="left")
    missing = [c for c in COVARIATES if c not in present]
    rows = rows.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
    return rows.with_columns(first=pl.col("group") == first_group)


def usable_covariates(rows: pl.DataFrame) -> list[str]:
    """The covariates with a value for some subject and more than one value among them."""
    return [c for c in COVARIATES if rows[c].drop_nulls().n_unique() > 1]


def confounder_adjusted_gaps(
    scores: pl.DataFrame, manifest: pl.DataFrame, design: StudyDesign
) -> pl.DataFrame:
    """Per base experiment, each evaluated ratio and the ratios pooled: the gap in mean overall
    DSC (first group minus second) unadjusted and adjusted for age and BMI, with two-level CIs,
    Holm p, verdicts and whether adjusting changes the verdict."""
    rows = []
    for runs in repeat_names(design).values():
        experiment = runs[0]
        all_rows = regression_rows(scores, manifest, [e.name for e in runs], experiment.groups[0])
        if all_rows.is_empty():
            continue
        covariates = usable_covariates(all_rows)
        complete = all_rows.drop_nulls(covariates)
        ratios = sorted(complete["ratio"].unique().to_list())
        scopes = [(str(r), complete.filter(pl.col("ratio") == r)) for r in ratios]
        if len(ratios) > 1:
            scopes.append((POOLED, complete))
        fits = []
        for scope, part in scopes:
            plain, _ = group_gap(part, [])
            adjusted, coefficients = group_gap(part, covariates) if covariates else (None, {})
            fits.append((scope, part, plain, adjusted, coefficients))
        rows += _family_rows(experiment, fits, covariates, all_rows, design.equivalence_margin)
    return pl.DataFrame(rows, schema=SCHEMA)


Fit = tuple[str, pl.DataFrame, TwoLevelEstimate, TwoLevelEstimate | None, dict]


def _family_rows(
    experiment: Experiment,
    fits: list[Fit],
    covariates: list[str],
    all_rows: pl.DataFrame,
    margin: float,
) -> list[dict]:
    """One row per scope of a base experiment, Holm within its unadjusted and adjusted gaps."""
    plain_holm = holm_adjusted([plain for _, _, plain, _, _ in fits])
    adjusted = [a for *_, a, _ in fits if a is not None]
    adjusted_holm = iter(holm_adjusted(adjusted))
    rows = []
    for (scope, part, plain, fit, coefficients), p_plain in zip(fits, plain_holm, strict=True):
        said_plain = verdict(plain, p_plain, margin)
        p_fit = next(adjusted_holm) if fit is not None else math.nan
        said_fit = verdict(fit, p_fit, margin) if fit is not None else NO_COVARIATE
        in_scope = all_rows if scope == POOLED else all_rows.filter(pl.col("ratio") == int(scope))
        rows.append(
            {
                "experiment": experiment.base,
                "group_a": experiment.groups[0],
                "group_b": experiment.groups[1],
                "ratio": scope,
                "covariates": ", ".join(covariates),
                "repeats": plain.repeats,
                "n_subjects": part["subject_id"].n_unique(),
                "n_rows": part.height,
                "n_dropped": in_scope["subject_id"].n_unique() - part["subject_id"].n_unique(),
                **_fit_columns("unadjusted", plain, p_plain, said_plain),
                **_fit_columns("adjusted", fit, p_fit, said_fit),
                **{f"coef_{c}": coefficients.get(c) for c in COVARIATES},
                "verdict_changes": fit is not None and said_fit != said_plain,
            }
        )
    return rows


def _fit_columns(
    fit: str, estimate: TwoLevelEstimate | None, p_holm: float, said: str
) -> dict[str, object]:
    values = {key: getattr(estimate, key, math.nan) for key in FIT[:4]}
    values |= {"p_holm": p_holm, "verdict": said}
    return {f"{fit}_{key}": value for key, value in values.items()}


def confounder_findings(table: pl.DataFrame) -> list[str]:
    """One bullet per base experiment: the pooled (or only) gap before and after adjusting for
    age and BMI, and whether any verdict changes."""
    bullets = []
    for (experiment,), part in table.group_by("experiment", maintain_order=True):
        pooled = part.filter(pl.col("ratio") == POOLED)
        row = (pooled if not pooled.is_empty() else part).row(0, named=True)
        where = "pooled over ratios" if row["ratio"] == POOLED else f"at {row['ratio']} %"
        changed = part.filter(pl.col("verdict_changes"))["ratio"].to_list()
        change = (
            f"adjusting changes the verdict at {', '.join(changed)}"
            if changed
            else "adjusting changes no verdict"
        )
        bullets.append(
            f"{experiment}, gap in mean DSC adjusted for {row['covariates'] or 'nothing'} "
            f"({where}): {_gap_words(row, 'unadjusted')} unadjusted, "
            f"{_gap_words(row, 'adjusted')} adjusted; {change}."
        )
    return bullets


def _gap_words(row: dict, fit: str) -> str:
    if row[f"{fit}_estimate"] is None or math.isnan(row[f"{fit}_estimate"]):
        return row[f"{fit}_verdict"]
    low, high = row[f"{fit}_ci_low"], row[f"{fit}_ci_high"]
    return (
        f"{100 * row[f'{fit}_estimate']:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}] "
        f"{row[f'{fit}_verdict']}"
    )
