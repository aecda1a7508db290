"""The confounder-adjusted gaps (lib/analysis/confounders.py): the CR1 sandwich matches a hand
computation, and on simulated studies a gap that BMI explains disappears once adjusted while a
real gap with an irrelevant BMI stays (no training)."""

import dataclasses
import math

import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.lib import report
from cmrbias_dagster.lib.analysis import confounders
from cmrbias_dagster.lib.analysis.two_level import ESTABLISHED, ONE_DRAW, is_established
from cmrbias_dagster.lib.design.study import parse_study_design
from cmrbias_dagster.lib.report import inputs as report_inputs
from cmrbias_dagster.lib.report import outline
from tests.test_repeats import RACE_BLACK, design_mapping

RATIOS = (0, 50, 100)


def test_the_sandwich_of_a_mean_matches_the_hand_computation() -> None:
    """Intercept only, three clusters of two: residual sums -14/3, 1/3, 13/3 around the mean
    23/6, so V = (122/3) / 6^2 x 3/2 x (5/5) = 61/36."""
    y = np.array([1.0, 2.0, 3.0, 5.0, 4.0, 8.0])
    beta, covariance = confounders.cluster_robust_ols(y, np.ones((6, 1)), list("aabbcc"))
    assert beta[0] == pytest.approx(23 / 6)
    assert covariance[0, 0] == pytest.approx(61 / 36)


def test_the_sandwich_of_a_slope_matches_the_hand_computation() -> None:
    """Two columns by the explicit formulas: (X'X)^-1 from the 2x2 inverse, the meat from each
    cluster's score vector, the CR1 factor G/(G-1) (N-1)/(N-K)."""
    x1 = [0.0, 1.0, 2.0, 0.5, 1.5, 3.0, 1.0]
    y = [1.0, 2.5, 2.9, 1.2, 2.0, 4.4, 1.1]
    clusters = ["a", "a", "b", "b", "c", "c", "c"]
    n, sx, sxx = len(x1), sum(x1), sum(v * v for v in x1)
    sy, sxy = sum(y), sum(a * b for a, b in zip(x1, y, strict=True))
    det = n * sxx - sx * sx
    inverse = [[sxx / det, -sx / det], [-sx / det, n / det]]
    slope = (n * sxy - sx * sy) / det
    intercept = (sy - slope * sx) / n
    meat = [[0.0, 0.0], [0.0, 0.0]]
    for cluster in "abc":
        members = [i for i, c in enumerate(clusters) if c == cluster]
        residuals = [y[i] - intercept - slope * x1[i] for i in members]
        score = [sum(residuals), sum(r * x1[i] for r, i in zip(residuals, members, strict=True))]
        for i in range(2):
            for j in range(2):
                meat[i][j] += score[i] * score[j]
    factor = 3 / 2 * (n - 1) / (n - 2)
    sandwich = [
        [
            factor
            * sum(inverse[i][a] * meat[a][b] * inverse[b][j] for a in range(2) for b in range(2))
            for j in range(2)
        ]
        for i in range(2)
    ]
    x = np.column_stack([np.ones(n), x1])
    beta, covariance = confounders.cluster_robust_ols(np.array(y), x, clusters)
    assert beta.tolist() == pytest.approx([intercept, slope])
    assert covariance.tolist()[0] == pytest.approx(sandwich[0])
    assert covariance.tolist()[1] == pytest.approx(sandwich[1])


def planted_study(
    repeats: int, gap: float, bmi_effect: float, per_group: int = 40, seed: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame, object]:
    """race_black's overall DSC at every ratio and repeat and its manifest: black subjects' BMI
    is 6 kg/m^2 higher on average; DSC falls by `bmi_effect` per kg/m^2 and by `gap` for black
    subjects; subject difficulty, model noise per repeat and group, and a residual."""
    design = parse_study_design(design_mapping(repeats, race_black=RACE_BLACK))
    rng = np.random.default_rng(seed)
    groups = ["black"] * per_group + ["white"] * per_group
    ids = [f"s{j:03d}" for j in range(2 * per_group)]
    black = np.array([g == "black" for g in groups])
    bmi = np.where(black, 31.0, 25.0) + rng.normal(0.0, 3.0, 2 * per_group)
    age = rng.normal(55.0, 8.0, 2 * per_group)
    subject = 0.9 - gap * black - bmi_effect * (bmi - 28.0) + rng.normal(0.0, 0.004, black.size)
    names = ["race_black", *(f"race_black_r{r}" for r in range(2, repeats + 1))]
    rows = []
    for name in names:
        for ratio in RATIOS:
            model = np.where(black, *rng.normal(0.0, 0.002, 2))
            dsc = subject + model + rng.normal(0.0, 0.003, black.size)
            for j, subject_id in enumerate(ids):
                held = "female" if j % 2 else "male"
                rows.append((name, ratio, subject_id, groups[j], held, "overall", dsc[j]))
    columns = ["experiment", "ratio", "subject_id", "group", "held", "class", "dsc"]
    scores = pl.DataFrame(rows, schema=columns, orient="row")
    manifest = pl.DataFrame({"subject_id": ids, "age": age, "bmi": bmi})
    return scores, manifest, design


def row_of(table: pl.DataFrame, ratio: str) -> dict:
    return table.filter(pl.col("ratio") == ratio).row(0, named=True)


@pytest.mark.parametrize("repeats", [1, 3])
def test_a_gap_bmi_explains_vanishes_once_adjusted(repeats: int) -> None:
    scores, manifest, design = planted_study(repeats, gap=0.0, bmi_effect=0.005)
    table = confounders.confounder_adjusted_gaps(scores, manifest, design)
    assert table["ratio"].to_list() == ["0", "50", "100", "pooled"]
    pooled = row_of(table, "pooled")
    assert pooled["covariates"] == "age, bmi" and pooled["repeats"] == repeats
    assert pooled["unadjusted_estimate"] < -0.02  # 6 kg/m^2 x 0.005
    assert is_established(pooled["unadjusted_verdict"])
    assert abs(pooled["adjusted_estimate"]) < 0.006
    if repeats > 1:  # one draw leaves the model noise out of the interval (ONE_DRAW)
        assert pooled["adjusted_ci_low"] < 0 < pooled["adjusted_ci_high"]
        assert not is_established(pooled["adjusted_verdict"]) and pooled["verdict_changes"]
    assert pooled["coef_bmi"] == pytest.approx(-0.005, abs=0.001)
    if repeats == 1:
        assert pooled["unadjusted_verdict"] == f"{ESTABLISHED} ({ONE_DRAW})"


@pytest.mark.parametrize("repeats", [1, 3])
def test_a_real_gap_stays_when_bmi_is_irrelevant(repeats: int) -> None:
    scores, manifest, design = planted_study(repeats, gap=0.02, bmi_effect=0.0)
    table = confounders.confounder_adjusted_gaps(scores, manifest, design)
    for row in table.iter_rows(named=True):
        assert is_established(row["unadjusted_verdict"]), row
        assert is_established(row["adjusted_verdict"]) and not row["verdict_changes"], row
        # BMI, irrelevant but different between the groups, hardly moves the estimate.
        assert row["adjusted_estimate"] == pytest.approx(row["unadjusted_estimate"], abs=0.003)
        assert row["coef_bmi"] == pytest.approx(0.0, abs=0.001)
    if repeats > 1:  # with repeats, the interval includes the model noise and covers the truth
        pooled = row_of(table, "pooled")
        assert pooled["adjusted_ci_low"] < -0.02 < pooled["adjusted_ci_high"]
    assert confounders.confounder_findings(table)[0].endswith("adjusting changes no verdict.")


def test_subjects_without_bmi_leave_both_fits_and_are_counted() -> None:
    scores, manifest, design = planted_study(1, gap=0.02, bmi_effect=0.0)
    manifest = manifest.with_columns(
        bmi=pl.when(pl.col("subject_id").is_in(["s000", "s001"])).then(None).otherwise("bmi")
    )
    row = row_of(confounders.confounder_adjusted_gaps(scores, manifest, design), "0")
    assert (row["n_subjects"], row["n_dropped"], row["n_rows"]) == (78, 2, 78)


def test_a_cohort_without_age_or_bmi_says_so() -> None:
    scores, manifest, design = planted_study(1, gap=0.02, bmi_effect=0.0)
    table = confounders.confounder_adjusted_gaps(scores, manifest.select("subject_id"), design)
    row = row_of(table, "pooled")
    assert row["covariates"] == "" and row["adjusted_verdict"] == confounders.NO_COVARIATE
    assert math.isnan(row["adjusted_estimate"]) and not row["verdict_changes"]
    assert is_established(row["unadjusted_verdict"])


def test_the_report_says_whether_adjusting_changes_the_verdict() -> None:
    scores, manifest, design = planted_study(3, gap=0.0, bmi_effect=0.005)
    table = confounders.confounder_adjusted_gaps(scores, manifest, design)
    empty = {f.name: pl.DataFrame() for f in dataclasses.fields(report.ReportTables)}
    tables = report.ReportTables(**{**empty, "confounder_adjusted_gaps": table})
    inputs = report.ReportInputs(tables, {}, design, "quick", None, ())
    section = outline.confounders_section(inputs)
    assert section is not None and section.tables[0][1].columns == list(confounders.SUMMARY)
    (bullet,) = report_inputs.extra_findings(tables)
    assert bullet.startswith("race_black, gap in mean DSC adjusted for age, bmi (pooled over")
    assert "adjusting changes the verdict at" in bullet and "pooled" in bullet.split("at")[-1]
    no_table = report.ReportInputs(report.ReportTables(**empty), {}, design, "quick", None, ())
    assert outline.confounders_section(no_table) is None
