"""Cohort characteristics (the paper's Table 1): mean (SD) per group with two-tailed t-tests."""

import math

import polars as pl
from scipy import stats

MEASURES = {
    "age": "age (years)",
    "weight_kg": "weight (kg)",
    "height_cm": "height (cm)",
    "bmi": "BMI",
}
GROUPINGS = (("sex", ("male", "female")), ("race", ("white", "black", "asian")))
SIGNIFICANCE = 0.05


def group_test_p(inside: pl.Series, outside: pl.Series) -> float:
    """Two-tailed Welch t-test p-value of one group against the rest (NaN if either is tiny)."""
    if inside.len() < 2 or outside.len() < 2:
        return math.nan
    return float(stats.ttest_ind(inside.to_numpy(), outside.to_numpy(), equal_var=False).pvalue)


def cohort_characteristics(manifest: pl.DataFrame) -> pl.DataFrame:
    """One row per measure and group: n, mean, SD and the p-value of that group vs the rest.

    For sex, male vs female; for race, each group against all other subjects (as Table 1 marks
    every race group). The `overall` rows carry no test.
    """
    rows = []
    for column, measure in MEASURES.items():
        values = manifest[column].drop_nulls()
        rows.append(_row(measure, "all", "overall", values, math.nan))
        for attribute, groups in GROUPINGS:
            for group in groups:
                mask = manifest[attribute] == group
                inside, outside = manifest.filter(mask)[column], manifest.filter(~mask)[column]
                rows.append(_row(measure, attribute, group, inside, group_test_p(inside, outside)))
    return pl.DataFrame(rows)


def _row(measure: str, attribute: str, group: str, values: pl.Series, p: float) -> dict:
    return {
        "measure": measure,
        "attribute": attribute,
        "group": group,
        "n": values.len(),
        "mean": values.mean() if values.len() else math.nan,
        "sd": values.std() if values.len() > 1 else math.nan,
        "p_value": p,
        "significant": bool(p <= SIGNIFICANCE),
    }


def characteristics_markdown(table: pl.DataFrame) -> str:
    """Table 1 as Markdown: measures as rows, groups as columns, `*` where p <= 0.05."""
    groups = table.filter(pl.col("measure") == next(iter(MEASURES.values())))
    header = ["measure", *groups["group"].to_list()]
    counts = ["subjects", *[str(n) for n in groups["n"].to_list()]]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        "| " + " | ".join(counts) + " |",
    ]
    for measure in MEASURES.values():
        cells = [
            f"{r['mean']:.1f} ({r['sd']:.1f}){'*' if r['significant'] else ''}"
            for r in table.filter(pl.col("measure") == measure).iter_rows(named=True)
        ]
        lines.append("| " + " | ".join([measure, *cells]) + " |")
    return "\n".join(lines)
