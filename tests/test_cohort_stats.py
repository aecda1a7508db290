"""Table 1: group means, SDs and t-tests against scipy on constructed data."""

import numpy as np
import polars as pl
import pytest
from scipy import stats

from cmrbias_dagster.lib.cohort.characteristics import (
    characteristics_markdown,
    cohort_characteristics,
)
from cmrbias_dagster.lib.outputs import latex_table, markdown_table
from cmrbias_dagster.lib.report.html import html_table


@pytest.fixture
def manifest() -> pl.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for race, age_shift in (("white", 6.0), ("black", -4.0), ("asian", 0.0)):
        for sex, height in (("male", 176.0), ("female", 162.0)):
            for _ in range(30):
                weight = float(rng.normal(75, 5))
                height_cm = float(rng.normal(height, 4))
                rows.append(
                    {
                        "sex": sex,
                        "race": race,
                        "age": float(rng.normal(62 + age_shift, 3)),
                        "weight_kg": weight,
                        "height_cm": height_cm,
                        "bmi": weight / (height_cm / 100) ** 2,
                    }
                )
    return pl.DataFrame(rows)


def test_group_rows_match_numpy_and_scipy(manifest: pl.DataFrame) -> None:
    table = cohort_characteristics(manifest)
    row = table.filter((pl.col("measure") == "age (years)") & (pl.col("group") == "black")).row(
        0, named=True
    )
    black = manifest.filter(pl.col("race") == "black")["age"].to_numpy()
    rest = manifest.filter(pl.col("race") != "black")["age"].to_numpy()
    assert row["n"] == 60
    assert row["mean"] == pytest.approx(black.mean())
    assert row["sd"] == pytest.approx(black.std(ddof=1))
    assert row["p_value"] == pytest.approx(stats.ttest_ind(black, rest, equal_var=False).pvalue)
    assert row["significant"]


def test_sex_differs_in_height_not_age(manifest: pl.DataFrame) -> None:
    table = cohort_characteristics(manifest).filter(pl.col("group") == "male")
    by_measure = dict(zip(table["measure"], table["significant"], strict=True))
    assert by_measure["height (cm)"] is True
    assert by_measure["age (years)"] is False


def test_markdown_has_counts_and_stars(manifest: pl.DataFrame) -> None:
    markdown = characteristics_markdown(cohort_characteristics(manifest))
    lines = markdown.splitlines()
    assert lines[0] == "| measure | overall | male | female | white | black | asian |"
    assert lines[2] == "| subjects | 180 | 90 | 90 | 60 | 60 | 60 |"
    height = next(line for line in lines if line.startswith("| height"))
    assert height.count("*") == 2  # male and female differ; races were drawn alike


def test_overall_rows_leave_p_and_significance_empty(manifest: pl.DataFrame) -> None:
    """No test applies to the `overall` rows: null p and significance, shown as empty cells (not
    `nan`, `None` or `False`) in the Markdown, HTML and LaTeX exports."""
    table = cohort_characteristics(manifest)
    untested = table.filter(pl.col("group") == "overall")
    assert untested.height == 4
    assert untested["p_value"].null_count() == untested["significant"].null_count() == 4
    tested = table.filter(pl.col("group") != "overall")
    assert tested["p_value"].null_count() == tested["significant"].null_count() == 0
    age = table.filter(pl.col("measure") == "age (years)").select("group", "p_value", "significant")
    assert markdown_table(age).splitlines()[2] == "| overall |  |  |"
    assert "<td>overall</td><td></td><td></td>" in html_table(age)
    assert r"overall &  &  \\" in latex_table(age)


def test_a_group_of_one_subject_has_no_test() -> None:
    table = cohort_characteristics(
        pl.DataFrame({"sex": ["male", "female", "female"], "age": [60.0, 50.0, 52.0]})
    )
    male = table.filter(pl.col("group") == "male").row(0, named=True)
    assert male["n"] == 1 and male["p_value"] is None and male["significant"] is None
