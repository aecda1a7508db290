"""Result tables, comparison families and fairness from constructed evaluation rows."""

from itertools import combinations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from cmrbias_dagster.lib.analysis import comparisons, result_tables
from cmrbias_dagster.lib.analysis.statistics import holm, significance_stars
from cmrbias_dagster.lib.evaluation.predictions import CLINICAL
from cmrbias_dagster.lib.outputs import export_table, latex_table

RATIOS = (0, 25, 50, 75, 100)
GROUPS = {"race_black": ("black", "white"), "sex": ("female", "male")}
PER_CELL = 8  # subjects per group x held value


def planted_metrics(seed: int = 0) -> pl.DataFrame:
    """Evaluation rows where the first group of `race_black` loses 0.1 DSC at 0 % and gains with
    its share; `sex` has no effect."""
    rng = np.random.default_rng(seed)
    rows = []
    for experiment, groups in GROUPS.items():
        for ratio in RATIOS:
            for g, group in enumerate(groups):
                for held in ("a", "b"):
                    for s in range(PER_CELL):
                        subject = f"{group}_{held}_{s}"
                        gap = (
                            0.1 * (1 - ratio / 100) if experiment == "race_black" and g == 0 else 0
                        )
                        for phase in ("ED", "ES"):
                            for name in ("LVBP", "LVM", "RVBP"):
                                dice = 0.9 - gap + rng.normal(0, 0.01)
                                rows.append(
                                    (experiment, ratio, subject, group, held, phase, name, dice)
                                )
    columns = ["experiment", "ratio", "subject_id", "group", "held", "phase", "class", "dice"]
    return pl.DataFrame(rows, schema=columns, orient="row")


@pytest.fixture(scope="module")
def metrics() -> pl.DataFrame:
    return planted_metrics()


@pytest.fixture(scope="module")
def scores(metrics: pl.DataFrame) -> pl.DataFrame:
    return result_tables.subject_scores(metrics)


def test_subject_scores_average_phases_and_classes(metrics, scores) -> None:
    one = metrics.filter((pl.col("experiment") == "sex") & (pl.col("ratio") == 50))
    subject = one.filter(pl.col("subject_id") == "male_b_3")
    row = scores.filter(
        (pl.col("experiment") == "sex")
        & (pl.col("ratio") == 50)
        & (pl.col("subject_id") == "male_b_3")
    )
    by_class = dict(zip(row["class"], row["dsc"], strict=True))
    assert by_class["overall"] == pytest.approx(subject["dice"].mean())
    assert by_class["LVM"] == pytest.approx(subject.filter(pl.col("class") == "LVM")["dice"].mean())
    assert scores.height == len(GROUPS) * len(RATIOS) * 2 * 2 * PER_CELL * 4


def test_table2_medians_with_bootstrap_intervals(scores) -> None:
    table = result_tables.median_dsc_table(scores, seed=1)
    cell = table.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 0)
        & (pl.col("class") == "overall")
    )
    black = cell.filter(pl.col("group") == "black").row(0, named=True)
    values = scores.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 0)
        & (pl.col("class") == "overall")
        & (pl.col("group") == "black")
    )["dsc"]
    assert black["median_dsc"] == pytest.approx(float(np.median(values)))
    assert black["ci_low"] <= black["median_dsc"] <= black["ci_high"] and black["n"] == 16
    assert cell.filter(pl.col("group") == "all")["n"].item() == 32
    assert result_tables.median_dsc_table(scores, seed=1).equals(table)  # seeded
    wide = result_tables.table2_wide(table, "race_black")
    assert wide.columns == ["ratio", "black", "white", "all"] and wide["ratio"].to_list() == [
        *RATIOS
    ]
    assert wide["black"][0] < wide["black"][4] - 0.05  # the planted effect survives the medians


def test_table3_tests_groups_within_each_held_value(scores) -> None:
    table = result_tables.intersectional_table(scores)
    cell = table.filter(
        (pl.col("experiment") == "race_black") & (pl.col("ratio") == 0) & (pl.col("held") == "a")
    )
    overall = scores.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 0)
        & (pl.col("held") == "a")
        & (pl.col("class") == "overall")
    )
    expected = stats.mannwhitneyu(
        overall.filter(pl.col("group") == "black")["dsc"],
        overall.filter(pl.col("group") == "white")["dsc"],
    ).pvalue
    assert cell["p_value"].unique().item() == pytest.approx(expected)
    assert cell["n"].to_list() == [PER_CELL] * 2


def test_table3_stars_come_from_holm_per_experiment(scores) -> None:
    """One family per experiment (every ratio and held value), as `group_comparisons`: the race
    gap at 0 % is *** on its raw p and ** once adjusted, and the raw p stays beside it."""
    table = result_tables.intersectional_table(scores)
    race = table.filter(pl.col("experiment") == "race_black").unique(
        ["ratio", "held"], maintain_order=True
    )
    assert race.height == len(RATIOS) * 2
    assert race["p_holm"].to_list() == pytest.approx(holm(race["p_value"].to_list()))
    assert race["stars"].to_list() == [significance_stars(p) for p in race["p_holm"]]
    cell = race.filter((pl.col("ratio") == 0) & (pl.col("held") == "a")).row(0, named=True)
    assert significance_stars(cell["p_value"]) == "***" and cell["stars"] == "**"


def test_group_comparisons_match_scipy_and_holm_per_experiment(scores) -> None:
    table = comparisons.group_comparisons(scores, GROUPS)
    assert table.height == len(GROUPS) * len(RATIOS) * 4
    race = table.filter(pl.col("experiment") == "race_black")
    assert race["p_holm"].to_list() == pytest.approx(holm(race["p_value"].to_list()))
    at_zero = race.filter((pl.col("ratio") == 0) & (pl.col("class") == "overall")).row(
        0, named=True
    )
    assert (at_zero["group_a"], at_zero["group_b"], at_zero["stars"]) == ("black", "white", "****")
    assert at_zero["effect_size"] == pytest.approx(-1.0)  # every black score below every white
    sex = table.filter((pl.col("experiment") == "sex") & (pl.col("class") == "overall"))
    assert (sex["stars"] == "ns").all()


def test_ratio_comparisons_are_paired_wilcoxon(scores) -> None:
    table = comparisons.ratio_comparisons(scores)
    assert table.height == len(GROUPS) * 2 * 4 * len(list(combinations(RATIOS, 2)))
    row = table.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("group") == "black")
        & (pl.col("class") == "overall")
        & (pl.col("ratio_a") == 0)
        & (pl.col("ratio_b") == 100)
    ).row(0, named=True)
    pick = scores.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("group") == "black")
        & (pl.col("class") == "overall")
    ).sort("subject_id")
    low, high = (pick.filter(pl.col("ratio") == r)["dsc"] for r in (0, 100))
    assert row["p_value"] == pytest.approx(stats.wilcoxon(low, high).pvalue)
    assert row["effect_size"] == pytest.approx(-1.0) and row["n_a"] == 16


def test_comparisons_of_a_single_ratio_are_an_empty_table(scores) -> None:
    one = comparisons.ratio_comparisons(scores.filter(pl.col("ratio") == 50))
    assert one.height == 0 and {"p_holm", "ratio_a", "stars"} <= set(one.columns)


def test_fairness_and_parity_ratio(scores) -> None:
    table = comparisons.fairness_table(scores)
    cell = scores.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 0)
        & (pl.col("class") == "overall")
    )
    means = cell.group_by("group").agg(pl.col("dsc").mean())["dsc"].to_numpy()
    overall = cell["dsc"].mean()
    row = table.filter((pl.col("experiment") == "race_black") & (pl.col("ratio") == 0))
    assert row["es_dice"].item() == pytest.approx(overall / (1 + np.abs(means - overall).sum()))
    assert row["skewed_error_ratio"].item() == pytest.approx((1 - means.min()) / (1 - means.max()))
    parity = dict(comparisons.parity_ratios(scores).iter_rows())
    assert parity["race_black"] == 100  # the planted gap closes only at 100 %


def test_clinical_differences_by_group() -> None:
    clinical = pl.DataFrame(
        {
            "experiment": ["sex"] * 6,
            "ratio": [50] * 6,
            "subject_id": [f"s{i}" for i in range(6)],
            "group": ["female"] * 3 + ["male"] * 3,
            **{f"{m}_diff": [1.0, 2.0, 3.0, -1.0, -2.0, -6.0] for m in result_tables.CLINICAL},
        }
    )
    table = result_tables.clinical_difference_table(clinical)
    lv = table.filter(pl.col("measure") == "lv_esv_ml")
    assert lv["median_diff"].to_list() == [2.0, -2.0] and lv["mean_diff"].to_list() == [2.0, -3.0]
    assert lv["p_value"][0] == pytest.approx(stats.mannwhitneyu([1, 2, 3], [-1, -2, -6]).pvalue)


def separated_clinical(experiment: str, ratios: list[int], separated: tuple[str, ...]) -> list:
    """Six subjects per group and ratio: the `separated` measures' differences do not overlap
    between the groups (exact p 2/924), every other measure's are the same in both groups."""
    rows = []
    for ratio in ratios:
        for g, group in enumerate(("female", "male")):
            for s in range(6):
                diffs = {f"{m}_diff": float(s + 10 * g if m in separated else s) for m in CLINICAL}
                rows.append(
                    {"experiment": experiment, "ratio": ratio, "subject_id": f"{group}{s}"}
                    | {"group": group, **diffs}
                )
    return rows


def test_clinical_stars_come_from_holm_per_experiment() -> None:
    """The family is the experiment's tests (every ratio and measure): lv_esv_ml's raw p (**)
    becomes * over the sex experiment's 14 tests; race_black's 7 do not enter that family."""
    clinical = pl.DataFrame(
        separated_clinical("sex", [0, 50], ("lv_esv_ml",))
        + separated_clinical("race_black", [0], CLINICAL)
    )
    table = result_tables.clinical_difference_table(clinical)
    sex = table.filter(pl.col("experiment") == "sex").unique(
        ["ratio", "measure"], maintain_order=True
    )
    assert sex.height == 2 * len(CLINICAL)
    assert sex["p_holm"].to_list() == pytest.approx(holm(sex["p_value"].to_list()))
    esv = sex.filter(pl.col("measure") == "lv_esv_ml")
    assert esv["p_value"].to_list() == pytest.approx([2 / 924] * 2)
    assert esv["p_holm"].to_list() == pytest.approx([14 * 2 / 924] * 2)
    assert significance_stars(esv["p_value"][0]) == "**" and esv["stars"].to_list() == ["*"] * 2
    assert set(sex.filter(pl.col("measure") != "lv_esv_ml")["stars"]) == {"ns"}


def test_clinical_ratio_with_one_group_has_no_test() -> None:
    clinical = pl.DataFrame(
        [r for r in separated_clinical("sex", [0], ()) if r["group"] == "female"]
    )
    table = result_tables.clinical_difference_table(clinical)
    assert table["p_value"].null_count() == table["p_holm"].null_count() == table.height
    assert set(table["stars"]) == {""}


def test_exports_write_csv_and_escaped_latex(tmp_path) -> None:
    table = pl.DataFrame({"group_a": ["black & white"], "p_value": [0.012345]})
    assert r"black \& white & 0.0123 \\" in latex_table(table)
    paths = export_table(table, tmp_path / "tables", "demo")
    assert pl.read_csv(paths["csv"]).equals(table)
    assert paths["latex"].read_text().startswith(r"\begin{tabular}{ll}")
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["demo.csv", "demo.tex"]
