"""Mitigated experiments beside their baselines, from constructed evaluation rows."""

import io

import numpy as np
import polars as pl
import pytest
from PIL import Image

from cmrbias_dagster.lib.analysis import comparisons, mitigation, result_tables
from cmrbias_dagster.lib.analysis.fairness import fairness_metrics
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.plots import figure_png, mitigation_figure

RATIOS = (0, 25, 50, 75, 100)
RACE = {"attribute": "race", "groups": ("black", "white")}
RACE_HELD = {**RACE, "held_attribute": "sex", "held_values": ("female", "male")}
SEX = Experiment("sex", "sex", ("female", "male"), "race", ("black", "white"))
BASELINE = Experiment("race_black", **RACE_HELD)
OVERSAMPLED = Experiment(
    "race_black_oversampled",
    **RACE_HELD,
    mitigation=Mitigation("oversampling"),
    varies="race_black",
)
DRO = Experiment(
    "race_black_dro", **RACE_HELD, mitigation=Mitigation("group_dro"), varies="race_black"
)
# The DSC the first group loses at 0 % of the training set (the loss shrinks with its share).
PLANTED_LOSS = {
    "sex": 0.0,
    "race_black": 0.1,
    "race_black_oversampled": 0.0,
    "race_black_dro": 0.05,
}
PER_CELL = 8  # test subjects per group x held value


def study_design(*experiments: Experiment) -> StudyDesign:
    return StudyDesign(seed=2022, ratios=RATIOS, experiments=experiments, profiles=())


def planted_metrics(experiments: tuple[Experiment, ...], seed: int = 0) -> pl.DataFrame:
    """Evaluation rows of the same test subjects for every experiment: the first group loses
    PLANTED_LOSS x (1 - ratio) DSC, and every subject has its own difficulty."""
    rng = np.random.default_rng(seed)
    rows = []
    for experiment in experiments:
        for ratio in RATIOS:
            for g, group in enumerate(experiment.groups):
                for held in experiment.held_values or (None,):
                    for s in range(PER_CELL):
                        loss = PLANTED_LOSS[experiment.name] * (1 - ratio / 100) * (g == 0)
                        for phase in ("ED", "ES"):
                            for name in ("LVBP", "LVM", "RVBP"):
                                dice = 0.9 - loss + rng.normal(0, 0.01)
                                subject = f"{group}_{held}_{s}"
                                rows.append(
                                    (experiment.name, ratio, subject, group, held, phase, name)
                                    + (dice,)
                                )
    columns = ["experiment", "ratio", "subject_id", "group", "held", "phase", "class", "dice"]
    return pl.DataFrame(rows, schema=columns, orient="row")


@pytest.fixture(scope="module")
def scores() -> pl.DataFrame:
    return result_tables.subject_scores(planted_metrics((SEX, BASELINE, OVERSAMPLED, DRO)))


@pytest.fixture(scope="module")
def table(scores: pl.DataFrame) -> pl.DataFrame:
    return mitigation.mitigation_comparison(scores, study_design(SEX, BASELINE, OVERSAMPLED, DRO))


def at(table: pl.DataFrame, experiment: str, ratio: int) -> dict:
    return table.filter((pl.col("experiment") == experiment) & (pl.col("ratio") == ratio)).row(
        0, named=True
    )


def test_baseline_rows_come_first_and_unvaried_experiments_are_left_out(table) -> None:
    assert table.columns == list(mitigation.SCHEMA)
    order = table.select("experiment", "varies", "strategy").unique(maintain_order=True).rows()
    assert order == [
        ("race_black", None, "none"),
        ("race_black_oversampled", "race_black", "oversampling"),
        ("race_black_dro", "race_black", "group_dro"),
    ]
    assert table.height == 3 * len(RATIOS)
    assert table.filter(pl.col("experiment") == "race_black")["ratio"].to_list() == list(RATIOS)
    baseline = table.filter(pl.col("varies").is_null())
    assert baseline["gap_closed"].to_list() == [0.0] * len(RATIOS)


def test_a_strategy_that_closes_the_planted_gap_shows_a_smaller_gap(table) -> None:
    names = ("race_black", "race_black_oversampled", "race_black_dro")
    base, fixed, partial = (at(table, name, 0) for name in names)
    assert base["gap"] == pytest.approx(-0.1, abs=0.01)
    assert abs(fixed["gap"]) < 0.01 < abs(partial["gap"]) < abs(base["gap"])
    assert base["stars"] == "****" and fixed["stars"] == "ns"
    assert abs(fixed["skewed_error_ratio"] - 1) < abs(partial["skewed_error_ratio"] - 1)
    assert abs(partial["skewed_error_ratio"] - 1) < abs(base["skewed_error_ratio"] - 1)
    assert fixed["es_dice"] > partial["es_dice"] > base["es_dice"]
    assert fixed["gap_closed"] == pytest.approx(abs(base["gap"]) - abs(fixed["gap"]))
    # Closing the gap by lifting the first group raises the mean DSC: no accuracy cost here.
    assert fixed["dsc_change"] == pytest.approx(fixed["mean_dsc"] - base["mean_dsc"])
    assert fixed["dsc_change"] > 0.04


def test_numbers_are_those_of_the_projects_tests_and_fairness_metrics(scores, table) -> None:
    dro = scores.filter(pl.col("experiment") == "race_black_dro")
    tests = comparisons.group_comparisons(dro, {"race_black_dro": ("black", "white")})
    for ratio in RATIOS:
        row = at(table, "race_black_dro", ratio)
        test = tests.filter((pl.col("class") == "overall") & (pl.col("ratio") == ratio)).row(
            0, named=True
        )
        assert (row["p_value"], row["p_holm"], row["stars"]) == (
            test["p_value"],
            test["p_holm"],
            test["stars"],
        )
        cell = scores.filter(
            (pl.col("experiment") == "race_black_dro")
            & (pl.col("ratio") == ratio)
            & (pl.col("class") == "overall")
        )
        black = cell.filter(pl.col("group") == "black")["dsc"].to_numpy()
        white = cell.filter(pl.col("group") == "white")["dsc"].to_numpy()
        assert row["gap"] == pytest.approx(np.median(black) - np.median(white))
        assert (row["n_a"], row["n_b"]) == (black.size, white.size)
        assert row["mean_dsc"] == pytest.approx(cell["dsc"].mean())
        fairness = fairness_metrics(cell["dsc"].to_list(), cell["group"].to_list())
        assert row["es_dice"] == pytest.approx(fairness["es_dice"])
        assert row["sd_of_group_means"] == pytest.approx(fairness["sd_of_group_means"])


def test_a_ratio_the_baseline_lacks_has_no_change(scores) -> None:
    partial = scores.filter(~((pl.col("experiment") == "race_black") & (pl.col("ratio") == 100)))
    table = mitigation.mitigation_comparison(partial, study_design(BASELINE, OVERSAMPLED))
    assert 100 not in table.filter(pl.col("varies").is_null())["ratio"]
    row = at(table, "race_black_oversampled", 100)
    assert row["gap_closed"] is None and row["dsc_change"] is None
    assert at(table, "race_black_oversampled", 75)["gap_closed"] is not None


@pytest.mark.parametrize(
    "experiments",
    [(SEX, BASELINE), (SEX, BASELINE, Experiment("race_plain", **RACE_HELD, varies="race_black"))],
    ids=["no_variant", "variant_without_mitigation"],
)
def test_a_design_without_mitigated_experiments_gives_an_empty_table(scores, experiments) -> None:
    table = mitigation.mitigation_comparison(scores, study_design(*experiments))
    assert table.is_empty()
    assert table.schema == pl.Schema(mitigation.SCHEMA)


def test_side_by_side_puts_the_baseline_first(table) -> None:
    wide = mitigation.side_by_side(table, "race_black")
    assert wide.columns == [
        "ratio",
        "race_black (none)",
        "race_black_oversampled (oversampling)",
        "race_black_dro (group_dro)",
    ]
    assert wide["ratio"].to_list() == list(RATIOS)
    assert wide["race_black (none)"][0] == at(table, "race_black", 0)["gap"]


def test_mitigation_figure_draws_each_experiment_of_a_family(table) -> None:
    figure = mitigation_figure(table)
    gap_axis, ser_axis, trade_axis = figure.axes
    labels = [text.get_text() for text in gap_axis.get_legend().get_texts()]
    assert labels == [
        "race_black (none, baseline)",
        "race_black_oversampled (oversampling)",
        "race_black_dro (group_dro)",
    ]
    baseline = gap_axis.get_lines()[0]
    assert baseline.get_linestyle() == "--"
    np.testing.assert_allclose(
        baseline.get_ydata(), table.filter(pl.col("varies").is_null())["gap"].to_numpy()
    )
    assert len(trade_axis.texts) == 3 * len(RATIOS)  # every point labelled with its ratio
    png = figure_png(figure, dpi=40)
    assert Image.open(io.BytesIO(png)).size[0] > 300
