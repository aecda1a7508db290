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
TABLE_SCHEMA = {
    "measure": pl.String,
    "attribute": pl.String,
    "group": pl.String,
    "n": pl.Int64,
    "mean": pl.Float64,
    "sd": pl.Float64,
    "p_value": pl.Float64,
    "significant": pl.Boolean,
}


def group_test_p(inside: pl.Series, outside: pl.Series) -> float | None:
    """Two-tailed Welch t-test p-value of one group against the rest; None (no test) when either
    has fewer than two values or the test is undefined (no variance in either)."""
    if inside.len() < 2 or outside.len() < 2:
        return None
    p = float(stats.ttest_ind(inside.to_numpy(), outside.to_numpy(), equal_var=False).pvalue)
    return None if math.isnan(p) else p


def cohort_characteristics(manifest: pl.DataFrame) -> pl.DataFrame:
    """One row per measure and group: n, mean, SD and the p-value of that group vs the rest.

    For sex, male vs female; for race, each group against all other subjects (as Table 1 marks
    every race group). Where no test applies (the `overall` rows, a group too small) `p_value`
    and `significant` are null, empty cells in every export, not `nan` and False. Measures and
    groups a cohort lacks (ACDC has no sex, Sunnybrook no height) are left out.
    """
    rows = []
    for column, measure in present_measures(manifest).items():
        values = manifest[column].drop_nulls()
        rows.append(_row(measure, "all", "overall", values, None))
        for attribute, group in present_groups(manifest):
            mask = (manifest[attribute] == group).fill_null(False)
            inside = manifest.filter(mask)[column].drop_nulls()
            outside = manifest.filter(~mask)[column].drop_nulls()
            rows.append(_row(measure, attribute, group, inside, group_test_p(inside, outside)))
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)


def present_measures(manifest: pl.DataFrame) -> dict[str, str]:
    """The measures of MEASURES that the manifest has values of."""
    return {
        column: measure
        for column, measure in MEASURES.items()
        if column in manifest.columns and manifest[column].drop_nulls().len()
    }


def present_groups(manifest: pl.DataFrame) -> list[tuple[str, str]]:
    """(attribute, group) of GROUPINGS with at least one subject in the manifest."""
    return [
        (attribute, group)
        for attribute, groups in GROUPINGS
        if attribute in manifest.columns
        for group in groups
        if (manifest[attribute] == group).any()
    ]


def _row(measure: str, attribute: str, group: str, values: pl.Series, p: float | None) -> dict:
    return {
        "measure": measure,
        "attribute": attribute,
        "group": group,
        "n": values.len(),
        "mean": values.mean() if values.len() else math.nan,
        "sd": values.std() if values.len() > 1 else math.nan,
        "p_value": p,
        "significant": None if p is None else p <= SIGNIFICANCE,
    }


def characteristics_markdown(table: pl.DataFrame) -> str:
    """Table 1 as Markdown: measures as rows, groups as columns, `*` where p <= 0.05."""
    measures = table["measure"].unique(maintain_order=True).to_list()
    if not measures:
        return "No measure of Table 1 (age, weight, height, BMI) is known for this cohort."
    groups = table.filter(pl.col("measure") == measures[0])
    header = ["measure", *groups["group"].to_list()]
    counts = ["subjects", *[str(n) for n in groups["n"].to_list()]]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        "| " + " | ".join(counts) + " |",
    ]
    for measure in measures:
        cells = [
            f"{r['mean']:.1f} ({r['sd']:.1f}){'*' if r['significant'] else ''}"
            for r in table.filter(pl.col("measure") == measure).iter_rows(named=True)
        ]
        lines.append("| " + " | ".join([measure, *cells]) + " |")
    return "\n".join(lines)
